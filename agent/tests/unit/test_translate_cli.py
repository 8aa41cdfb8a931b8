"""``translate`` as a user runs it: encodings, what goes to stdout and stderr, exit statuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from datamigrate_agent.__main__ import main
from datamigrate_agent.errors import EXIT_OK, EXIT_PERMANENT

SCRIPT = "-- Café\r\nSELECT N'Crème brûlée' AS d\r\n"


def _translate(path: Path, target: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main(["translate", "--to", target, str(path)])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.mark.parametrize("encoding", ["utf-16", "utf-8-sig", "cp1252"])
def test_a_script_saved_as_utf16_or_latin1_is_translated_like_extract_reads_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], encoding: str
) -> None:
    # "utf-16" writes a BOM, as SSMS does; cp1252 is latin-1 for these characters.
    path = tmp_path / "in.sql"
    path.write_bytes(SCRIPT.encode(encoding))
    assert _translate(path, "duckdb", capsys) == (EXIT_OK, "SELECT 'Crème brûlée' AS d;\n", "")


def test_a_binary_file_is_refused_as_unreadable_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "in.sql"
    path.write_bytes(b"\x00\x01\x02\xff\xfe\x00garbage")
    status, out, err = _translate(path, "duckdb", capsys)
    assert (status, out) == (EXIT_PERMANENT, "")
    assert "SourceUnreadable" in err and "is not text" in err


def test_log_lines_go_to_stderr_so_stdout_is_only_sql(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Nesting this deep crashes the translator on that statement, which logs a warning.
    deep = "(" * 3000 + "1" + ")" * 3000
    path = tmp_path / "in.sql"
    path.write_text(f"SELECT 1 AS a;\nSELECT {deep} AS x;\nSELECT 2 AS b;\n", encoding="utf-8")
    status, out, err = _translate(path, "duckdb", capsys)
    assert (status, out) == (EXIT_PERMANENT, "SELECT 1 AS a;\nSELECT 2 AS b;\n")
    assert '"msg": "Translation crashed"' in err
    assert "line 2: not translated: translator failure (RecursionError" in err
