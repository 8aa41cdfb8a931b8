"""The extract subcommand: workspace files, outcome rules, logging."""

from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path

import pytest

from datamigrate_agent.errors import EXIT_OK, PermanentError
from datamigrate_agent.extract import cli
from datamigrate_agent.log import setup_logging
from datamigrate_agent.metadata import iter_sample_rows, load_metadata

SAMPLES = Path(__file__).resolve().parents[4] / "shared" / "data" / "sqlserver-samples"


def _run(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    return cli.run(parser.parse_args(list(argv)))


def test_script_extract_writes_a_valid_document_and_sample_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    setup_logging()
    packed = tmp_path / "instnwnd.sql.gz"
    packed.write_bytes(gzip.compress((SAMPLES / "instnwnd.sql").read_bytes()))
    workspace = tmp_path / "ws"
    assert _run("--workspace", str(workspace), "--script", str(packed)) == EXIT_OK
    doc = load_metadata(workspace / "metadata.json")
    assert len(doc.tables) == 13 and doc.problems == []
    total = 0
    for table in doc.tables:
        assert table.sample_data is not None and table.sample_data.complete
        rows = list(iter_sample_rows(workspace, table))
        assert len(rows) == table.row_count == table.sample_data.row_count
        total += len(rows)
    assert total == 3308
    assert (workspace / "sampledata" / "dbo.Order Details.jsonl").exists()
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    summary = next(line for line in lines if line["msg"] == "Extracted metadata")
    assert (summary["tables"], summary["views"], summary["sampleRows"]) == (13, 16, 3308)


def test_include_glob_limits_the_workspace_to_selected_tables(tmp_path: Path) -> None:
    _run("--workspace", str(tmp_path), "--script", str(SAMPLES / "instpubs.sql"),
         "--include", "dbo.title*", "--exclude", "*view")  # fmt: skip
    doc = load_metadata(tmp_path / "metadata.json")
    assert [t.name for t in doc.tables] == ["titles", "titleauthor"]
    assert doc.views == []
    assert sorted(p.name for p in (tmp_path / "sampledata").iterdir()) == [
        "dbo.titleauthor.jsonl",
        "dbo.titles.jsonl",
    ]


def test_unreadable_statements_are_listed_and_the_step_still_succeeds(tmp_path: Path) -> None:
    script = tmp_path / "s.sql"
    script.write_text(
        "CREATE TABLE t (a int)\nGO\nINSERT t VALUES (nosuchfunc(1))\nGO\n"
        "INSERT t VALUES (2)\nGO\nCREATE VIEW v AS SELECT a FROM t\nGO\n"
    )
    assert _run("--workspace", str(tmp_path / "ws"), "--script", str(script)) == EXIT_OK
    doc = load_metadata(tmp_path / "ws" / "metadata.json")
    assert [(p.batch, p.line) for p in doc.problems] == [(1, 3)]
    assert doc.tables[0].row_count == 1 and len(doc.views) == 1


def test_unreadable_create_table_fails_permanently_and_keeps_no_stale_metadata(
    tmp_path: Path,
) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "metadata.json").write_text("{}")  # from an earlier attempt
    script = tmp_path / "s.sql"
    script.write_text(
        "CREATE TABLE ok (a int)\nGO\n\nCREATE TABLE bad (a int PRIMARY KEY (nope))\nGO\n"
    )
    with pytest.raises(PermanentError) as err:
        _run("--workspace", str(workspace), "--script", str(script))
    assert "CREATE TABLE in batch 1 at line 4" in str(err.value)
    assert "nope" in str(err.value)
    assert not (workspace / "metadata.json").exists()
    failed = json.loads((workspace / "metadata.failed.json").read_text())
    assert [t["name"] for t in failed["tables"]] == ["ok"]
    assert failed["problems"][0]["line"] == 4


def test_a_script_with_nothing_readable_fails_permanently(tmp_path: Path) -> None:
    script = tmp_path / "s.sql"
    script.write_text("SET NOCOUNT ON\nGO\nPRINT 'hello'\nGO\n")
    with pytest.raises(PermanentError, match="nothing could be read"):
        _run("--workspace", str(tmp_path / "ws"), "--script", str(script))


def test_missing_or_corrupt_script_is_a_permanent_error(tmp_path: Path) -> None:
    with pytest.raises(PermanentError, match="cannot read script"):
        _run("--workspace", str(tmp_path), "--script", str(tmp_path / "absent.sql"))
    broken = tmp_path / "x.sql.gz"
    broken.write_bytes(b"not gzip at all")
    with pytest.raises(PermanentError, match="cannot read script"):
        _run("--workspace", str(tmp_path), "--script", str(broken))


def test_a_script_with_a_nul_is_refused_with_its_line_and_writes_no_metadata(
    tmp_path: Path,
) -> None:
    script = tmp_path / "x.sql"
    script.write_bytes(b"CREATE TABLE t (a int)\nGO\nINSERT t VALUES (1)\nSELECT 1 AS a\x00b\n")
    workspace = tmp_path / "ws"
    with pytest.raises(PermanentError, match=r"script x\.sql line 4: a NUL character") as err:
        _run("--workspace", str(workspace), "--script", str(script))
    assert err.value.exit_code == 65
    assert not (workspace / "metadata.json").exists()
