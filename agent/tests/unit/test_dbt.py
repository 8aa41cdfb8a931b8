"""dbt runner: results come from the build's in-memory run results, failures are data."""

from __future__ import annotations

from pathlib import Path

import pytest

from datamigrate_agent.dbt import run_dbt

pytestmark = pytest.mark.slow


def _project(root: Path, model_sql: str, yml: str = "") -> Path:
    (root / "models").mkdir(parents=True)
    (root / "dbt_project.yml").write_text("name: p\nversion: '1.0'\nprofile: p\n")
    (root / "profiles.yml").write_text(
        f"p:\n  target: d\n  outputs:\n    d:\n      type: duckdb\n"
        f"      path: {root / 'w.duckdb'}\n      schema: main\n"
    )
    (root / "models" / "good.sql").write_text('select 1 as "Order ID"')
    (root / "models" / "bad.sql").write_text(model_sql)
    if yml:
        (root / "models" / "_m.yml").write_text(yml)
    return root


def test_a_failing_model_is_reported_per_node_from_the_run_results(tmp_path: Path) -> None:
    yml = ("version: 2\nmodels:\n  - name: good\n    columns:\n      - name: Order ID\n"
           "        quote: true\n        data_tests: [not_null]\n")  # fmt: skip
    project = _project(tmp_path, "select * from no_such_table", yml)
    run = run_dbt(project, project, build=True, vars_={})
    by_id = {r.unique_id: r for r in run.results}
    assert run.parsed
    assert by_id["model.p.good"].status == "success"
    assert by_id["model.p.bad"].status == "error"
    assert "no_such_table" in (by_id["model.p.bad"].message or "")
    test = next(r for r in run.results if r.unique_id.startswith("test."))
    assert test.model == "good" and test.status == "pass"


def test_a_parse_error_is_returned_not_raised(tmp_path: Path) -> None:
    project = _project(tmp_path, "select {{ ref('missing_model') }}")
    run = run_dbt(project, project, build=True, vars_={})
    assert not run.parsed
    assert "missing_model" in (run.parse_error or "")


def test_each_node_is_heard_of_as_it_finishes(tmp_path: Path) -> None:
    yml = ("version: 2\nmodels:\n  - name: good\n    columns:\n      - name: Order ID\n"
           "        quote: true\n        data_tests: [not_null]\n")  # fmt: skip
    project = _project(tmp_path, "select * from no_such_table", yml)
    heard: list[tuple[str, str]] = []

    def on_finished(unique_id: str, status: str) -> None:
        heard.append((unique_id, status))
        if unique_id == "model.p.good":
            raise RuntimeError("a broken progress reporter must not fail the node")

    run = run_dbt(project, project, build=True, vars_={}, on_finished=on_finished)
    assert sorted(heard) == sorted((r.unique_id, r.status) for r in run.results)
    assert ("model.p.good", "success") in heard and ("model.p.bad", "error") in heard
