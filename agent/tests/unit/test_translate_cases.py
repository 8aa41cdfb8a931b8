"""Every semantics case, translated by translate_script, returns SQL Server's rows on DuckDB.

Shared vectors come from ../shared/data/tsql-cases (each stands for its whole kind); more
vectors per kind live in tests/fixtures/translate/, each with the documented T-SQL rule that
gives its expected rows.

Case files hold one-line fields in comments (``-- expected-json: [...]``) and, after a
``-- ====`` line, the T-SQL input. ``-- compare: set`` (or the phrase "compare as a set")
compares rows without order.
"""

from __future__ import annotations

import datetime
import decimal
import json
import re
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from datamigrate_agent.translate import translate_script

#: The repository sits beside ../shared (read-only inputs of this project).
SHARED_CASES = Path(__file__).resolve().parents[4] / "shared" / "data" / "tsql-cases"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "translate"


@dataclass(frozen=True)
class Case:
    """One test vector."""

    name: str
    tsql: str
    expected: list[list[object]]
    as_set: bool
    fields: dict[str, str]


def load(path: Path) -> Case:
    """Parse a case file."""
    text = path.read_text(encoding="utf-8")
    head, _, body = re.split(r"^(-- =+.*)$", text, maxsplit=1, flags=re.M)
    fields = dict(re.findall(r"^-- ([\w-]+): ?(.*)$", head, flags=re.M))
    as_set = fields.get("compare") == "set" or "compare as a set" in head
    return Case(path.stem, body.strip() + "\n", json.loads(fields["expected-json"]), as_set, fields)


def all_cases() -> list[Case]:
    """Shared cases first, then the fixtures."""
    files = sorted(SHARED_CASES.glob("*.sql")) + sorted(FIXTURES.glob("*.sql"))
    return [load(p) for p in files]


def normalise(rows: list[tuple[object, ...]] | list[list[object]]) -> list[list[object]]:
    """Rows as JSON-like values: decimals and floats compared as floats, booleans as 0/1."""
    out = []
    for row in rows:
        values: list[object] = []
        for value in row:
            if isinstance(value, bool):
                values.append(int(value))
            elif isinstance(value, (decimal.Decimal, float)):
                values.append(round(float(value), 6))
            elif isinstance(value, (datetime.date, datetime.time)):
                values.append(str(value))
            else:
                values.append(value)
        out.append(values)
    return out


def same_rows(got: list[list[object]], expected: list[list[object]], as_set: bool) -> bool:
    """Compare normalised rows, in order unless ``as_set``."""
    want = normalise(expected)
    if as_set:
        return sorted(map(repr, got)) == sorted(map(repr, want))
    return got == want


CASES = all_cases()


def run_on_duckdb(case: Case) -> list[list[object]]:
    """Translate the case's script for DuckDB, run every statement, return the last rows."""
    results = translate_script(case.tsql, "duckdb")
    errors = [(r.line, r.error) for r in results if r.error]
    assert not errors, errors
    con = duckdb.connect()
    rows: list[tuple[object, ...]] = []
    for result in results:
        for statement in result.statements:
            cursor = con.execute(statement)
            rows = cursor.fetchall() if cursor.description else rows
    return normalise(rows)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_translated_case_returns_sql_server_rows_on_duckdb(case: Case) -> None:
    got = run_on_duckdb(case)
    assert same_rows(got, case.expected, case.as_set), (got, case.expected)


def test_case_vectors_cover_every_shared_case_and_more_per_kind() -> None:
    shared = [c for c in CASES if c.name[:2].isdigit()]
    assert len(shared) >= 12
    assert len(CASES) > len(shared) + 20


#: Targets that are not run here: every vector's translation must at least parse there.
COMPILED_ONLY = ["snowflake", "bigquery", "databricks", "redshift"]
#: Kinds a target cannot express, and the reason translate gives (flagged, never wrong SQL).
REFUSED = {"bigquery": ("LATERAL join", "has ROLLUP but no CUBE"), "redshift": ("LATERAL join",)}


@pytest.mark.parametrize("target", COMPILED_ONLY)
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_translated_case_parses_in_every_compiled_only_target(case: Case, target: str) -> None:
    import sqlglot

    for result in translate_script(case.tsql, target):
        if result.error:
            assert any(why in result.error for why in REFUSED.get(target, ())), result.error
        for statement in result.statements:
            sqlglot.parse_one(statement, read=target)
