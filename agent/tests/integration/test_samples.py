"""Northwind and pubs end to end (extract -> migrate) on real DuckDB and PostgreSQL."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import pytest
from conftest import agent, extracted

from datamigrate_agent.metadata import load_metadata

pytestmark = pytest.mark.slow

CASES = [("instnwnd.sql", "northwind"), ("instpubs.sql", "pubs")]
#: Objects that must build, not merely be flagged (pubs' reports use GROUP BY ... WITH ROLLUP).
MUST_BUILD = {"pubs": {"dbo.reptq1", "dbo.reptq2", "dbo.reptq3"}}


def _migrate(ws: Path, target: str, name: str, env: dict[str, str] | None = None) -> dict:
    started = time.monotonic()
    run = agent("migrate", "--workspace", str(ws), "--target", target, "--project-name", name,
                "--schema", f"dm_{name}", env=env)  # fmt: skip
    assert run.code == 0, run.text[-3000:]
    results = json.loads((ws / "results.json").read_text())
    results["_seconds"] = round(time.monotonic() - started, 1)
    return results


def _rebuild(ws: Path, env: dict[str, str]) -> None:
    # The final project, as it will be published, must build on its own.
    from dbt.cli.main import dbtRunner

    project = ws / "project"
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        res = dbtRunner().invoke(["build", "--quiet", "--project-dir", str(project),
                                  "--profiles-dir", str(project)])  # fmt: skip
    finally:
        for k, v in old.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    assert res.success, res.exception
    statuses = {r.status for r in res.result.results}
    assert statuses <= {"success", "pass"}, statuses


def _check(ws: Path, results: dict, name: str) -> None:
    doc = load_metadata(ws / "metadata.json")
    entries = {e["object"]: e for e in results["objects"]}
    for obj in MUST_BUILD.get(name, set()):
        assert entries[obj]["status"] == "verified-by-build", entries[obj]
    for table in doc.tables:
        e = entries[table.qualified_name]
        assert e["model"].startswith("stg_") and (ws / "project" / e["path"]).is_file()
        assert e["status"] in {"verified", "verified-by-build"}, e
        expected = table.sample_data.row_count if table.sample_data else 0
        assert e["checks"]["modelRows"] == e["checks"]["rawRows"] == expected, e
        assert e["checks"]["mismatchedColumns"] == []
    for view in doc.views:
        e = entries[view.qualified_name]
        assert e["model"] and (ws / "project" / e["path"]).is_file(), e
        assert e["status"] in {"verified-by-build", "flagged"} and e["reason"], e
    for routine in doc.procedures:
        e = entries[routine.qualified_name]
        assert e["status"] in {"verified-by-build", "flagged"} and e["reason"], e
        text = (ws / "project" / e["path"]).read_text()
        # A flagged procedure is a disabled draft for a person to finish (README, statuses).
        assert text.startswith("{{ config(enabled=false) }}") == (e["status"] == "flagged"), e
    assert "```mermaid" in (ws / "report.md").read_text()
    counts = results["counts"]
    logging.getLogger(__name__).warning(
        "%s: %d tables, %d views, %d procedures -> %s in %s s",
        doc.source.name,
        len(doc.tables),
        len(doc.views),
        len(doc.procedures),
        counts,
        results["_seconds"],
    )


@pytest.mark.parametrize(("script", "name"), CASES)
def test_sample_migrates_on_duckdb(tmp_path: Path, script: str, name: str) -> None:
    ws = extracted(tmp_path, script)
    results = _migrate(ws, "duckdb", name)
    _check(ws, results, name)
    _rebuild(ws, {"DATAMIGRATE_DUCKDB_PATH": str(ws / "warehouse.duckdb")})


@pytest.mark.postgres
@pytest.mark.parametrize(("script", "name"), CASES)
def test_sample_migrates_on_postgres(tmp_path: Path, pg_dsn: str, script: str,
                                     name: str) -> None:  # fmt: skip
    ws = extracted(tmp_path, script)
    env = {"DATAMIGRATE_PG_DSN": pg_dsn}
    results = _migrate(ws, "postgres", name, env)
    _check(ws, results, name)
    from datamigrate_agent.nodes._engine import export_pg_env

    os.environ["DATAMIGRATE_PG_DSN"] = pg_dsn
    params = export_pg_env()
    _rebuild(ws, {f"DATAMIGRATE_PG_{k.upper()}": v for k, v in params.items()})
