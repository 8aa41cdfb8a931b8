"""The semantics vectors, translated for PostgreSQL, return SQL Server's rows on a real server.

Needs the PostgreSQL that ``scripts/postgres`` starts (env ``DATAMIGRATE_PG_DSN``). Without it
the tests skip, except under ``CI=true``, where a missing server is a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from test_translate_cases import CASES, Case, normalise, same_rows

from datamigrate_agent.translate import translate_script

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def pg_connection() -> Iterator[object]:
    dsn = os.environ.get("DATAMIGRATE_PG_DSN")
    if not dsn:
        if os.environ.get("CI") == "true":
            pytest.fail("DATAMIGRATE_PG_DSN is not set (run scripts/postgres)")
        pytest.skip("DATAMIGRATE_PG_DSN is not set (run scripts/postgres)")
    import psycopg2

    connection = psycopg2.connect(dsn)
    connection.autocommit = True
    yield connection
    connection.close()


def run_on_postgres(connection: object, case: Case) -> list[list[object]]:
    """Run the translated case in a schema of its own, dropped afterwards."""
    results = translate_script(case.tsql, "postgres")
    errors = [(r.line, r.error) for r in results if r.error]
    assert not errors, errors
    schema = f"t_{uuid.uuid4().hex[:12]}"
    cursor = connection.cursor()  # type: ignore[attr-defined]
    cursor.execute(f"CREATE SCHEMA {schema}")
    rows: list[tuple[object, ...]] = []
    try:
        cursor.execute(f"SET search_path TO {schema}")
        for result in results:
            for statement in result.statements:
                cursor.execute(statement)
                rows = cursor.fetchall() if cursor.description else rows
    finally:
        cursor.execute("SET search_path TO public")
        cursor.execute(f"DROP SCHEMA {schema} CASCADE")
    return normalise(rows)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_translated_case_returns_sql_server_rows_on_postgres(
    pg_connection: object, case: Case
) -> None:
    got = run_on_postgres(pg_connection, case)
    assert same_rows(got, case.expected, case.as_set), (got, case.expected)
