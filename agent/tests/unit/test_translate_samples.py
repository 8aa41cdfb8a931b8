"""The public sample scripts (Northwind, pubs) through ``translate``: every translated
statement runs on DuckDB and on PostgreSQL, and every table holds the rows the script inserts.
"""

from __future__ import annotations

import os
import re
import uuid
from collections import Counter
from pathlib import Path

import duckdb
import pytest

from datamigrate_agent.translate import translate_script

SAMPLES = Path(__file__).resolve().parents[4] / "shared" / "data" / "sqlserver-samples"
SCRIPTS = ["instnwnd.sql", "instpubs.sql"]
_INSERT = re.compile(
    r"^\s*insert\s+(?:into\s+)?(?:\[?dbo\]?\.)?[\[\"]?([\w ]+?)[\]\"]?\s*(?:\(|values)", re.I | re.M
)


def _script(name: str) -> str:
    return (SAMPLES / name).read_text(encoding="utf-8-sig")


def _inserted_rows(text: str) -> Counter[str]:
    """Rows per table the script inserts (one VALUES row per INSERT in these scripts)."""
    return Counter(m.group(1).lower() for m in _INSERT.finditer(text))


@pytest.mark.parametrize("name", SCRIPTS)
def test_sample_script_runs_on_duckdb_with_every_row(name: str) -> None:
    text = _script(name)
    con = duckdb.connect()
    results = translate_script(text, "duckdb")
    for result in results:
        for statement in result.statements:
            con.execute(statement)
    errors = [r.error for r in results if r.error]
    assert errors and all(_expected_flag(e) for e in errors), errors
    for table, rows in _inserted_rows(text).items():
        assert con.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone() == (rows,), table


def _expected_flag(reason: str) -> bool:
    # pubs reports its progress with RAISERROR, which no target can send.
    return reason.startswith(("CREATE PROCEDURE", "CREATE TRIGGER", "T-SQL variables", "RAISERROR"))


def test_northwind_counts_are_the_known_ones() -> None:
    counts = _inserted_rows(_script("instnwnd.sql"))
    assert (counts["orders"], counts["order details"], counts["customers"]) == (830, 2155, 91)


@pytest.mark.postgres
@pytest.mark.parametrize("name", SCRIPTS)
def test_sample_script_runs_on_postgres_with_every_row(name: str) -> None:
    dsn = os.environ.get("DATAMIGRATE_PG_DSN")
    if not dsn:
        if os.environ.get("CI") == "true":
            pytest.fail("DATAMIGRATE_PG_DSN is not set (run scripts/postgres)")
        pytest.skip("DATAMIGRATE_PG_DSN is not set (run scripts/postgres)")
    import psycopg2

    text = _script(name)
    connection = psycopg2.connect(dsn)
    connection.autocommit = True
    cursor = connection.cursor()
    schema = f"s_{uuid.uuid4().hex[:12]}"
    cursor.execute(f"CREATE SCHEMA {schema}")
    try:
        cursor.execute(f"SET search_path TO {schema}")
        for result in translate_script(text, "postgres"):
            for statement in result.statements:
                cursor.execute(statement)
        names = {n.lower(): n for n in _table_names(cursor, schema)}
        for table, rows in _inserted_rows(text).items():
            cursor.execute(f'SELECT COUNT(*) FROM "{names[table]}"')
            assert cursor.fetchone() == (rows,), table
    finally:
        cursor.execute(f"DROP SCHEMA {schema} CASCADE")
        connection.close()


def _table_names(cursor: object, schema: str) -> list[str]:
    cursor.execute(  # type: ignore[attr-defined]
        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,)
    )
    return [row[0] for row in cursor.fetchall()]  # type: ignore[attr-defined]
