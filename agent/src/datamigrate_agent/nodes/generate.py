"""generate: the dbt project, with views and single-SELECT procedures translated to models."""

from __future__ import annotations

import logging
from typing import Any

from langgraph.runtime import Runtime

from datamigrate_agent.metadata import MetadataDocument, Routine, View
from datamigrate_agent.nodes._context import Context
from datamigrate_agent.nodes._names import object_key
from datamigrate_agent.nodes._project import ProjectInputs, write_project
from datamigrate_agent.nodes._sql import TranslationFailed, translate_select, type_schema
from datamigrate_agent.nodes._tsql import procedure_shape, view_select
from datamigrate_agent.state import Outcome, PlannedModel, State

__all__ = ["generate_project", "body_of", "project_inputs"]

log = logging.getLogger(__name__)


def body_of(obj: View | Routine) -> str:
    """The T-SQL SELECT of a view or of a one-result-set procedure.

    Raises:
        TranslationFailed: with the precise reason the object is no single SELECT.
    """
    if isinstance(obj, View):
        try:
            return view_select(obj.definition)
        except ValueError as e:
            raise TranslationFailed(str(e)) from e
    params = [p.name for p in obj.parameters or []]
    shape = procedure_shape(obj.definition, params)
    if shape.select is None:
        raise TranslationFailed("; ".join(shape.reasons))
    return shape.select


def _translate(
    obj: View | Routine,
    plan: dict[str, PlannedModel],
    blocked: dict[str, str],
    target: str,
    types: dict[str, dict[str, str]],
) -> str:
    missing: list[str] = []

    def resolve(schema: str | None, name: str) -> str | None:
        key = object_key(schema or obj.schema_, name)
        if key in blocked:
            missing.append(f"depends on {plan[key]['model'] if key in plan else key}, flagged")
        if key in plan:
            return "{{ ref('" + plan[key]["model"] + "') }}"
        missing.append(f"references {schema + '.' if schema else ''}{name}, not in the metadata")
        return None

    sql = translate_select(body_of(obj), target, resolve, types)
    if missing:
        raise TranslationFailed("; ".join(dict.fromkeys(missing)))
    return sql


def _routines(doc: MetadataDocument) -> dict[str, View | Routine]:
    return {object_key(o.schema_, o.name): o for o in [*doc.views, *doc.procedures]}


def project_inputs(state: State, ctx: Context) -> ProjectInputs:
    """The writer's inputs from the state (used by generate and repair)."""
    plan, sql = state["plan"], state.get("sql", {})
    disabled = {
        k: o.get("reason") or "flagged"
        for k, o in state.get("outcomes", {}).items()
        if o.get("status") == "flagged" and k in plan
        and (k in sql or plan[k]["layer"] == "staging")
    }  # fmt: skip
    return ProjectInputs(
        doc=ctx.metadata, config=ctx.config, plan=plan, sources=state["sources"], sql=sql,
        safe_casts=set(state.get("safe_casts", [])), disabled=disabled,
    )  # fmt: skip


def generate_project(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Translate views and procedures, then write the project."""
    ctx = runtime.context
    ctx.executed.append("generate")
    target, plan = ctx.config.target, state["plan"]
    objects = _routines(ctx.metadata)
    types = type_schema(ctx.metadata)
    outcomes: dict[str, Outcome] = dict(state.get("outcomes", {}))
    blocked = {k: o["reason"] or "" for k, o in outcomes.items() if o.get("status") == "flagged"}
    sql: dict[str, str] = {}
    for info in state["objects"]:
        key = info["key"]
        if key not in plan or info["kind"] == "table":
            continue
        ctx.progress.update(current=plan[key]["model"])
        try:
            sql[key] = _translate(objects[key], plan, blocked, target, types)
        except TranslationFailed as e:
            blocked[key] = str(e)
            outcomes[key] = {"status": "flagged", "reason": str(e), "attempts": 0}
    update: State = {**state, "sql": sql, "outcomes": outcomes}  # type: ignore[typeddict-item]
    files = write_project(project_inputs(update, ctx))
    flagged = sum(1 for o in outcomes.values() if o.get("status") == "flagged")
    log.info("Generated project", extra={"fields": {"node": "generate", "models": len(files),
                                                    "flagged": flagged}})  # fmt: skip
    return {"sql": sql, "outcomes": outcomes, "safe_casts": []}
