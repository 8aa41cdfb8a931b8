"""report: results.json lists every object with its status; report.md draws the lineage."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

from test_graph import run_until_test
from test_graph_fixtures import write_tiny_workspace

from datamigrate_agent.nodes.report import mermaid_lineage, write_report


def test_report_writes_results_and_a_mermaid_lineage(tmp_path: Path) -> None:
    write_tiny_workspace(tmp_path)
    state, ctx = run_until_test(tmp_path)
    state["outcomes"]["dbo.customers"] = {"status": "verified", "reason": "3 rows match",
                                          "checks": {"modelRows": 3}}  # fmt: skip
    write_report(state, SimpleNamespace(context=ctx))
    results = json.loads((tmp_path / "results.json").read_text())
    by_name = {o["object"]: o for o in results["objects"]}
    assert set(by_name) == {"dbo.Customers", "dbo.Order Details", "dbo.Customer Totals",
                            "dbo.Big Orders", "dbo.Top Two"}  # fmt: skip
    assert by_name["dbo.Customers"]["checks"] == {"modelRows": 3}
    assert by_name["dbo.Top Two"]["status"] == "flagged"
    assert results["counts"]["verified"] == 1
    report = (tmp_path / "report.md").read_text()
    assert "```mermaid\nflowchart LR" in report
    assert "| dbo.Top Two | procedure | tiny__top_two | flagged | SET ROWCOUNT" in report
    assert (tmp_path / "project" / "results.json").is_file()
    # Writing the report outside a run must not leave an engine path for later processes.
    assert "DATAMIGRATE_DUCKDB_PATH" not in os.environ


def test_lineage_draws_refs_and_sources_and_marks_flagged_models(tmp_path: Path) -> None:
    write_tiny_workspace(tmp_path)
    state, _ = run_until_test(tmp_path)
    state["outcomes"]["dbo.customer totals"] = {"status": "flagged", "reason": "x"}
    diagram = mermaid_lineage(state)
    assert "stg_tiny__customers --> tiny__customer_totals" in diagram
    assert 'src_tiny__order_details[("tiny.order_details")] --> stg_tiny__order_details' in diagram
    assert "class tiny__customer_totals flagged" in diagram
