"""``translate`` as a user runs it: encodings, what goes to stdout and stderr, exit statuses."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from datamigrate_agent.__main__ import main
from datamigrate_agent.errors import EXIT_OK, EXIT_PERMANENT

#: argparse's exit status for a bad command line.
EXIT_USAGE = 2

SCRIPT = "-- Café\r\nSELECT N'Crème brûlée' AS d\r\n"


def _translate(path: Path, target: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main(["translate", "--to", target, str(path)])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _translate_process(*args: str) -> subprocess.CompletedProcess[str]:
    """The agent's translate as its own process, as the `datamigrate translate` wrapper runs it."""
    command = [sys.executable, "-m", "datamigrate_agent", "translate", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def test_an_unknown_target_prints_usage_naming_the_command_the_user_typed(
    tmp_path: Path,
) -> None:
    path = tmp_path / "in.sql"
    path.write_text("SELECT 1 AS a\n", encoding="utf-8")
    done = _translate_process("--to", "oracle", str(path))
    assert (done.returncode, done.stdout) == (EXIT_USAGE, "")
    usage, error = done.stderr.splitlines()
    assert usage == "usage: datamigrate translate [-h] [--from {tsql}] --to TARGET FILE"
    assert error == (
        "datamigrate translate: error: argument --to: unknown target 'oracle'; valid targets: "
        "bigquery, databricks, duckdb, postgres, redshift, snowflake"
    )


UNREADABLE: list[tuple[str, Callable[[Path], object], str]] = [
    ("missing.sql", lambda path: None, os.strerror(errno.ENOENT)),
    ("a-folder.sql", Path.mkdir, os.strerror(errno.EISDIR)),
    ("broken.sql.gz", lambda path: path.write_bytes(b"not gzip"), "Not a gzipped file (b'no')"),
]


@pytest.mark.parametrize(("name", "make", "reason"), UNREADABLE, ids=["missing", "folder", "gzip"])
def test_an_unreadable_file_is_one_plain_line_naming_it_and_the_reason_with_status_65(
    tmp_path: Path, name: str, make: Callable[[Path], object], reason: str
) -> None:
    path = tmp_path / name
    make(path)
    done = _translate_process("--to", "duckdb", str(path))
    assert (done.returncode, done.stdout) == (EXIT_PERMANENT, "")
    assert done.stderr == f"datamigrate translate: cannot read {path}: {reason}\n"


@pytest.mark.parametrize("encoding", ["utf-16", "utf-8-sig", "cp1252"])
def test_a_script_saved_as_utf16_or_latin1_is_translated_like_extract_reads_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], encoding: str
) -> None:
    # "utf-16" writes a BOM, as SSMS does; cp1252 is latin-1 for these characters.
    path = tmp_path / "in.sql"
    path.write_bytes(SCRIPT.encode(encoding))
    assert _translate(path, "duckdb", capsys) == (EXIT_OK, "SELECT 'Crème brûlée' AS d;\n", "")


def test_go_lines_with_windows_line_ends_separate_batches(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "in.sql"
    script = "CREATE TABLE dbo.t (a INT)\r\nGO\r\nINSERT dbo.t VALUES (1)\r\nGO -- done\r\n"
    path.write_bytes(script.encode("utf-16"))
    status, out, err = _translate(path, "duckdb", capsys)
    assert (status, err) == (EXIT_OK, "")
    assert out == "CREATE TABLE t (a INT);\nINSERT INTO t VALUES (1);\n"
    con = duckdb.connect()
    for statement in out.split(";\n")[:-1]:
        con.execute(statement)
    assert con.execute("SELECT a FROM t").fetchall() == [(1,)]


def test_a_binary_file_is_refused_as_unreadable_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "in.sql"
    path.write_bytes(b"\x00\x01\x02\xff\xfe\x00garbage")
    status, out, err = _translate(path, "duckdb", capsys)
    assert (status, out, err) == (
        EXIT_PERMANENT,
        "",
        f"datamigrate translate: script {path} is not text\n",
    )


@pytest.mark.parametrize(
    ("text", "encoding", "line", "column"),
    [
        ("SELECT 1 AS a\x00b FROM dbo.T\n", "utf-8", 1, 14),  # would read as two names
        ("SELECT 1\nGO\nSELECT 'x\x00y' AS s\n", "utf-8", 3, 10),  # inside a string
        ("SELECT 1\r\nSELECT 2 AS a\x00\r\n", "utf-16", 2, 14),  # U+0000 in a BOM file
        # not UTF-8, and past the first 4 KiB, where a NUL makes the file "not text"
        ("-- caf\xe9\n" + "SELECT 1\n" * 600 + "SELECT \x00 1\n", "cp1252", 602, 8),
    ],
    ids=["utf-8-name", "utf-8-string", "utf-16-bom", "cp1252"],
)
def test_a_nul_in_the_script_is_refused_with_its_line_and_nothing_is_printed(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    text: str,
    encoding: str,
    line: int,
    column: int,
) -> None:
    path = tmp_path / "in.sql"
    path.write_bytes(text.encode(encoding))
    status, out, err = _translate(path, "duckdb", capsys)
    assert (status, out) == (EXIT_PERMANENT, "")
    assert err.startswith(
        f"datamigrate translate: script {path} line {line}: a NUL character at column {column}"
    )
    assert err.count("\n") == 1


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


PROCEDURAL = [
    ("WAITFOR DELAY '00:00:01'", "WAITFOR pauses the T-SQL batch; duckdb has no such statement"),
    ("PRINT 'loaded'", "PRINT sends a message to the client; duckdb has no such statement"),
    ("RAISERROR('x', 16, 1)", "RAISERROR raises a T-SQL error or message; duckdb has no such"),
    ("THROW 50000, 'x', 1", "THROW raises a T-SQL error; duckdb has no such statement"),
    ("RETURN", "RETURN (leaving the batch or procedure) is T-SQL control flow"),
    ("BEGIN SELECT 3 END", "a BEGIN ... END block groups T-SQL control flow"),
    (
        "BEGIN TRY\n  SELECT 1/0;\nEND TRY\nBEGIN CATCH\n  SELECT 2;\nEND CATCH",
        "BEGIN TRY ... END CATCH is T-SQL error handling; duckdb has no such statement",
    ),
    (
        "IF 1 = 1 BEGIN\n  SELECT 1;\nEND\nELSE BEGIN SELECT 3 END",
        "IF/WHILE control flow only exist inside SQL Server batches",
    ),
    ("SELECT ERROR_MESSAGE() AS m", "ERROR_MESSAGE() reads the error a T-SQL CATCH block caught"),
    ("SELECT 1 AS a WHERE ERROR_NUMBER() = 1205", "ERROR_NUMBER() reads the error a T-SQL CATCH"),
    ("INSERT INTO log VALUES (ERROR_LINE())", "ERROR_LINE() reads the error a T-SQL CATCH block"),
    ("SAVE TRANSACTION before_load", "SAVE TRANSACTION sets a T-SQL savepoint"),
    ("SAVE TRAN sp1", "SAVE TRANSACTION sets a T-SQL savepoint"),
    ("UPDATE TOP (5) dbo.t SET a = 1", "UPDATE TOP (n) changes n arbitrary rows; duckdb has no"),
    ("DELETE TOP (5) dbo.t WHERE a = 1", "DELETE TOP (n) changes n arbitrary rows; duckdb has no"),
    ("/* batch */ UPDATE TOP(10) PERCENT t SET a = 0", "UPDATE TOP (n) changes n arbitrary rows"),
]


@pytest.mark.parametrize(("statement", "reason"), PROCEDURAL)
def test_procedural_statements_are_reported_with_their_line_and_the_rest_translated(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], statement: str, reason: str
) -> None:
    path = tmp_path / "in.sql"
    path.write_text(f"SELECT 1 AS a\n{statement}\nSELECT 2 AS b\n", encoding="utf-8")
    status, out, err = _translate(path, "duckdb", capsys)
    assert (status, out) == (EXIT_PERMANENT, "SELECT 1 AS a;\nSELECT 2 AS b;\n")
    assert err.startswith(f"line 2: not translated: {reason}")
    assert err.count("\n") == 1, err


def test_top_in_a_string_or_a_bracketed_name_is_not_a_dml_limit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "in.sql"
    path.write_text("SELECT 'UPDATE TOP (1) x' AS [delete top (2)]\n", encoding="utf-8")
    status, out, err = _translate(path, "duckdb", capsys)
    assert (status, err) == (EXIT_OK, "")
    assert out == "SELECT 'UPDATE TOP (1) x' AS \"delete top (2)\";\n"


def test_the_savepoint_reason_names_postgres_savepoints_and_duckdb_gets_none(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "in.sql"
    path.write_text("SAVE TRANSACTION sp1\n", encoding="utf-8")
    assert "ROLLBACK TO SAVEPOINT <name>" in _translate(path, "postgres", capsys)[2]
    assert "SAVEPOINT <name>" not in _translate(path, "duckdb", capsys)[2]


def test_begin_transaction_is_still_translated(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "in.sql"
    path.write_text("BEGIN TRANSACTION\nSELECT 1 AS a\nCOMMIT\n", encoding="utf-8")
    assert _translate(path, "duckdb", capsys) == (EXIT_OK, "BEGIN;\nSELECT 1 AS a;\nCOMMIT;\n", "")


DML = """CREATE TABLE dbo.Customers (id INT, v INT)
CREATE TABLE dbo.Staging (id INT, v INT)
INSERT dbo.Customers VALUES (1, 0) INSERT dbo.Customers VALUES (2, 0)
INSERT dbo.Customers VALUES (3, 0)
INSERT dbo.Staging VALUES (1, 10) INSERT dbo.Staging VALUES (4, 40)
UPDATE t SET t.v = 1 FROM dbo.Customers AS t JOIN dbo.Staging s ON s.id = t.id
DELETE c FROM dbo.Customers c WHERE c.id = 3
MERGE dbo.Customers AS tgt USING dbo.Staging AS src ON tgt.id = src.id
  WHEN MATCHED THEN UPDATE SET tgt.v = src.v OUTPUT $action, inserted.*;
INSERT INTO dbo.Customers (id, v) OUTPUT inserted.id VALUES (9, 9)
DELETE TOP (1) FROM dbo.Customers
MERGE dbo.Customers AS tgt USING dbo.Staging AS src ON tgt.id = src.id
  WHEN MATCHED THEN UPDATE SET tgt.v = src.v
  WHEN NOT MATCHED THEN INSERT (id, v) VALUES (src.id, src.v);
UPDATE dbo.Customers SET Customers.v = s.v + 1 FROM dbo.Staging s WHERE s.id = Customers.id
  AND s.id = 4
"""


def test_tsql_only_dml_is_reported_and_the_dml_printed_runs_on_duckdb(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "in.sql"
    path.write_text(DML, encoding="utf-8")
    status, out, err = _translate(path, "duckdb", capsys)
    assert status == EXIT_PERMANENT
    reported = [line.split(": not translated: ") for line in err.splitlines()]
    assert [(where, why.split(" (")[0].split(";")[0]) for where, why in reported] == [
        ("line 6", "UPDATE t ... FROM names the updated table in FROM"),
        ("line 7", "DELETE <alias> FROM <tables>"),
        ("line 8", "MERGE ... OUTPUT returns rows of T-SQL's inserted/deleted pseudo-tables"),
        ("line 10", "INSERT ... OUTPUT returns rows of T-SQL's inserted/deleted pseudo-tables"),
        ("line 11", "DELETE TOP"),
    ]
    con = duckdb.connect()
    for statement in out.split(";\n")[:-1]:
        con.execute(statement)
    # What SQL Server holds after the two statements that were translated.
    rows = con.execute("SELECT id, v FROM Customers ORDER BY id").fetchall()
    assert rows == [(1, 10), (2, 0), (3, 0), (4, 41)]


@pytest.mark.postgres
def test_the_dml_printed_for_postgres_runs_there_with_sql_servers_result(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dsn = os.environ.get("DATAMIGRATE_PG_DSN")
    if not dsn:
        if os.environ.get("CI") == "true":
            pytest.fail("DATAMIGRATE_PG_DSN is not set (run scripts/postgres)")
        pytest.skip("DATAMIGRATE_PG_DSN is not set (run scripts/postgres)")
    import psycopg2

    path = tmp_path / "in.sql"
    path.write_text(DML, encoding="utf-8")
    status, out, _ = _translate(path, "postgres", capsys)
    assert status == EXIT_PERMANENT
    connection = psycopg2.connect(dsn)
    connection.autocommit = True
    cursor = connection.cursor()
    schema = f"s_{uuid.uuid4().hex[:12]}"
    cursor.execute(f"CREATE SCHEMA {schema}")
    try:
        cursor.execute(f"SET search_path TO {schema}")
        for statement in out.split(";\n")[:-1]:
            cursor.execute(statement)
        cursor.execute('SELECT "id", "v" FROM "Customers" ORDER BY "id"')
        assert cursor.fetchall() == [(1, 10), (2, 0), (3, 0), (4, 41)]
    finally:
        cursor.execute(f"DROP SCHEMA {schema} CASCADE")
        connection.close()


BY_SOURCE = """CREATE TABLE dbo.Customers (id INT, v INT)
CREATE TABLE dbo.Staging (id INT, v INT)
INSERT dbo.Customers VALUES (1, 0) INSERT dbo.Customers VALUES (2, 0)
INSERT dbo.Staging VALUES (1, 10) INSERT dbo.Staging VALUES (3, 30)
MERGE dbo.Customers AS tgt USING dbo.Staging AS src ON tgt.id = src.id
  WHEN MATCHED THEN UPDATE SET tgt.v = src.v
  WHEN NOT MATCHED BY TARGET THEN INSERT (id, v) VALUES (src.id, src.v)
  WHEN NOT MATCHED BY SOURCE THEN DELETE;
"""


def test_merge_by_source_is_refused_for_postgres_with_the_release_it_needs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "in.sql"
    path.write_text(BY_SOURCE, encoding="utf-8")
    status, out, err = _translate(path, "postgres", capsys)
    assert status == EXIT_PERMANENT
    assert "MERGE" not in out
    assert err.startswith("line 5: not translated: MERGE ... WHEN NOT MATCHED BY SOURCE needs "
                          "PostgreSQL 17 or later")  # fmt: skip
    assert err.count("\n") == 1, err


def test_merge_by_source_is_translated_for_duckdb_with_sql_servers_result(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "in.sql"
    path.write_text(BY_SOURCE, encoding="utf-8")
    status, out, err = _translate(path, "duckdb", capsys)
    assert (status, err) == (EXIT_OK, "")
    con = duckdb.connect()
    for statement in out.split(";\n")[:-1]:
        con.execute(statement)
    # SQL Server: 1 updated from the source, 2 deleted (no source row), 3 inserted.
    assert con.execute("SELECT id, v FROM Customers ORDER BY id").fetchall() == [(1, 10), (3, 30)]


@pytest.mark.postgres
def test_the_tests_postgres_refuses_merge_by_source_as_the_reason_says() -> None:
    dsn = os.environ.get("DATAMIGRATE_PG_DSN")
    if not dsn:
        if os.environ.get("CI") == "true":
            pytest.fail("DATAMIGRATE_PG_DSN is not set (run scripts/postgres)")
        pytest.skip("DATAMIGRATE_PG_DSN is not set (run scripts/postgres)")
    import psycopg2

    connection = psycopg2.connect(dsn)
    try:
        cursor = connection.cursor()
        cursor.execute("SHOW server_version_num")
        version = int(cursor.fetchone()[0])
        if version >= 170000:
            pytest.skip(f"server {version} runs BY SOURCE; the refusal is for older servers")
        cursor.execute("CREATE TEMP TABLE t (id int, v int)")
        with pytest.raises(psycopg2.errors.SyntaxError):
            cursor.execute("MERGE INTO t USING t AS s ON t.id = s.id "
                           "WHEN NOT MATCHED BY SOURCE THEN DELETE")  # fmt: skip
    finally:
        connection.close()


README = Path(__file__).resolve().parents[3] / "README.md"


def _between(text: str, start: str, end: str) -> str:
    head = text.index(start) + len(start)
    return text[head : text.index(end, head)]


def test_the_readme_translate_example_prints_what_the_readme_shows_with_sql_servers_result(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    readme = README.read_text(encoding="utf-8")
    script = _between(readme, "cat > /tmp/q.sql <<'SQL'\n", "\nSQL\n")
    shown = _between(readme, "prints (real output):\n\n```\n", "```")
    path = tmp_path / "q.sql"
    path.write_text(script, encoding="utf-8")
    status, out, err = _translate(path, "duckdb", capsys)
    assert (status, out, err) == (EXIT_OK, shown, "")
    con = duckdb.connect()
    create, select = out.split(";\n")[:-1]
    con.execute(create)
    rows = [
        ("Ann", "Oslo", 7, 9),
        ("Bob", None, 9, 8),
        ("Cy", "Rome", 10, 8),
        ("Di", "Bonn", 3, 8),
        ("Ed", "Lima", 5, 1),
    ]
    con.executemany("INSERT INTO T VALUES (?, ?, ?, ?)", rows)
    # SQL Server: the top 3 by Score and the rows tied with the third (in any order among
    # themselves), NULL from + with a NULL, and integer division.
    result = con.execute(select).fetchall()
    assert result[0] == ("Ann Oslo", 1)
    assert set(result[1:]) == {(None, 2), ("Cy Rome", 2), ("Di Bonn", 0)}
    assert len(result) == 4
