"""The migrate graph's wiring (nodes live in ``nodes/``).

assess -> plan -> generate -> test -> (repair -> test)* -> evaluate -> report, checkpointed in
SQLite after every node under the thread id of the migration's name.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from datamigrate_agent.nodes import (
    assess_objects,
    evaluate_results,
    generate_project,
    plan_models,
    repair_models,
    route_after_repair,
    route_after_test,
    test_project,
    write_report,
)
from datamigrate_agent.nodes._context import Context
from datamigrate_agent.state import InputState, State

__all__ = ["build_graph", "open_checkpointer"]


def open_checkpointer(path: Path) -> SqliteSaver:
    """A SQLite checkpointer on ``path`` (created with its folder)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return SqliteSaver(sqlite3.connect(str(path), check_same_thread=False))


def build_graph(
    checkpointer: SqliteSaver | None = None, *, interrupt_before: list[str] | None = None
) -> CompiledStateGraph:
    """The compiled migrate graph (``interrupt_before`` stops ahead of those nodes)."""
    g = StateGraph(State, context_schema=Context, input_schema=InputState)
    g.add_node("assess", assess_objects)
    g.add_node("plan", plan_models)
    g.add_node("generate", generate_project)
    g.add_node("test", test_project)
    g.add_node("repair", repair_models)
    g.add_node("evaluate", evaluate_results)
    g.add_node("report", write_report)
    g.add_edge(START, "assess")
    g.add_edge("assess", "plan")
    g.add_edge("plan", "generate")
    g.add_edge("generate", "test")
    g.add_conditional_edges("test", route_after_test, ["repair", "evaluate"])
    g.add_conditional_edges("repair", route_after_repair, ["test", "evaluate"])
    g.add_edge("evaluate", "report")
    g.add_edge("report", END)
    return g.compile(checkpointer=checkpointer, interrupt_before=interrupt_before)
