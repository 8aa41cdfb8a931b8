"""plan: model names, layers, materialisations and the ref()/source() edges of every object."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from langgraph.runtime import Runtime

from datamigrate_agent.nodes._context import Context
from datamigrate_agent.nodes._names import snake, source_name
from datamigrate_agent.state import ObjectInfo, PlannedModel, State

__all__ = ["plan_models"]

log = logging.getLogger(__name__)


def _unique(name: str, taken: set[str]) -> str:
    # "Order Details" and "OrderDetails" both snake to order_details: number the later one.
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name}_{n}", n + 1
    taken.add(candidate)
    return candidate


def _model_name(o: ObjectInfo, source: str, used_by_models: set[str]) -> tuple[str, str]:
    table = snake(o["name"].split(".", 1)[1])
    if o["kind"] == "table":
        return f"stg_{source}__{table}", "staging"
    if o["kind"] == "view" and o["key"] in used_by_models:
        return f"int_{source}__{table}", "intermediate"
    return f"{source}__{table}", "marts"


def plan_models(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Decide one model per table, view and procedure; functions get no model."""
    ctx = runtime.context
    ctx.executed.append("plan")
    doc, cfg = ctx.metadata, ctx.config
    # The database name when the source tells it, else the project's name, else the file's.
    fallback = cfg.project_name or Path(doc.source.name).stem.split(".")[0]
    objects = state["objects"]
    used = {d for o in objects if o["kind"] != "table" for d in o["depends_on"]}
    taken: set[str] = set()
    sources: dict[str, str] = {}
    plan: dict[str, PlannedModel] = {}
    outcomes = dict(state.get("outcomes", {}))
    for o in objects:
        schema = o["name"].split(".", 1)[0]
        source = source_name(doc.source.database, fallback, schema)
        sources[source] = schema
        if o["kind"] == "function":
            outcomes[o["key"]] = {
                "status": "flagged",
                "attempts": 0,
                "reason": ("a function has no dbt model equivalent; write it as a macro by hand"),
            }
            continue
        name, layer = _model_name(o, source, used)
        name = _unique(name, taken)
        plan[o["key"]] = PlannedModel(
            model=name, layer=layer, source=source, materialized=cfg.materialization,
            path=f"models/{layer}/{source}/{name}.sql", refs=[],
            sources=[f"{source}.{name.removeprefix(f'stg_{source}__')}"]
            if layer == "staging" else [],
        )  # fmt: skip
    for o in objects:
        if o["key"] in plan and o["kind"] != "table":
            plan[o["key"]]["refs"] = [plan[d]["model"] for d in o["depends_on"] if d in plan]
    log.info("Planned models", extra={"fields": {"node": "plan", "models": len(plan)}})
    return {"plan": plan, "sources": sources, "outcomes": outcomes}
