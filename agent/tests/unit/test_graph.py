"""The migrate graph: its wiring, assess/plan decisions, and generation up to the test node."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_graph_fixtures import write_tiny_workspace

from datamigrate_agent.config import MigrateConfig
from datamigrate_agent.graph import build_graph, open_checkpointer
from datamigrate_agent.nodes._context import Context
from datamigrate_agent.nodes.assess import dependency_order
from datamigrate_agent.progress import Progress


def test_graph_has_the_repair_loop_as_conditional_edges() -> None:
    graph = build_graph().get_graph()
    edges = {(e.source, e.target, e.conditional) for e in graph.edges}
    assert ("generate", "test", False) in edges
    assert ("test", "repair", True) in edges
    assert ("test", "evaluate", True) in edges
    assert ("repair", "test", True) in edges
    assert ("evaluate", "report", False) in edges


def test_dependency_order_is_topological_and_cycles_are_reported_last() -> None:
    graph = {"v3": ["v2"], "v2": ["t1"], "t1": [], "a": ["b"], "b": ["a"]}
    order, cycles = dependency_order(graph)
    assert order.index("t1") < order.index("v2") < order.index("v3")
    assert cycles == [["a", "b"]]
    assert set(order[-2:]) == {"a", "b"}


def run_until_test(ws: Path, **cfg: object) -> tuple[dict, Context]:
    """Run assess, plan and generate for the tiny workspace; returns the state and context."""
    config = MigrateConfig(workspace=ws, project_name="tiny", **cfg)  # type: ignore[arg-type]
    ctx = Context(config=config, progress=Progress())
    saver = open_checkpointer(config.checkpoint_path)
    graph = build_graph(saver, interrupt_before=["test"])
    run_cfg = {"configurable": {"thread_id": "t"}}
    graph.invoke({"config": config.to_state(), "fingerprint": "x"}, run_cfg, context=ctx)
    state = graph.get_state(run_cfg).values
    saver.conn.close()
    return state, ctx


def test_assess_and_plan_name_layer_and_order_every_object(tmp_path: Path) -> None:
    write_tiny_workspace(tmp_path)
    state, ctx = run_until_test(tmp_path)
    assert ctx.executed == ["assess", "plan", "generate"]
    plan = state["plan"]
    assert plan["dbo.customers"]["model"] == "stg_tiny__customers"
    assert plan["dbo.order details"]["model"] == "stg_tiny__order_details"
    assert plan["dbo.order details"]["sources"] == ["tiny.order_details"]
    assert plan["dbo.customer totals"]["layer"] == "marts"
    assert sorted(plan["dbo.customer totals"]["refs"]) == [
        "stg_tiny__customers", "stg_tiny__order_details"]  # fmt: skip
    order = [o["key"] for o in state["objects"]]
    assert order.index("dbo.customers") < order.index("dbo.customer totals")


def test_procedures_are_converted_or_flagged_with_the_reason(tmp_path: Path) -> None:
    write_tiny_workspace(tmp_path)
    state, _ = run_until_test(tmp_path)
    assert "dbo.big orders" in state["sql"]
    top_two = state["outcomes"]["dbo.top two"]
    assert top_two["status"] == "flagged"
    assert "SET ROWCOUNT" in top_two["reason"]


@pytest.mark.parametrize("target", ["duckdb", "postgres", "snowflake", "bigquery",
                                    "databricks", "redshift"])  # fmt: skip
def test_profiles_keep_secrets_in_env_var_calls(tmp_path: Path, target: str) -> None:
    write_tiny_workspace(tmp_path)
    run_until_test(tmp_path, target=target)
    profiles = (tmp_path / "project" / "profiles.yml").read_text()
    assert f"type: {target}" in profiles
    for line in profiles.splitlines():
        if any(k in line for k in ("password:", "token:", "keyfile:")):
            assert "env_var(" in line, line
