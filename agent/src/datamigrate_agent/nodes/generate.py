"""generate: the dbt project, with views and single-SELECT procedures translated to models."""

from __future__ import annotations

import logging
import re
from typing import Any

from langgraph.runtime import Runtime

from datamigrate_agent.metadata import Column, MetadataDocument, Routine, View
from datamigrate_agent.nodes._context import Context
from datamigrate_agent.nodes._names import object_key, snake
from datamigrate_agent.nodes._project import ProjectInputs, write_project
from datamigrate_agent.nodes._sql import (
    TranslationFailed,
    column_type,
    translate_select,
    type_schema,
)
from datamigrate_agent.nodes._tsql import procedure_shape, view_select
from datamigrate_agent.state import Outcome, PlannedModel, State

__all__ = ["generate_project", "body_of", "project_inputs"]

log = logging.getLogger(__name__)


_PARAM_MARK = re.compile(r"[\"`\[]?\b__param_([A-Za-z0-9_]+)\b[\"`\]]?", re.IGNORECASE)


def body_of(obj: View | Routine) -> str:
    """The T-SQL SELECT of a view or of a one-result-set procedure.

    A procedure's ``@param`` becomes the column-like marker ``__param_<name>`` so the
    translator passes it through; ``_bind_params`` turns the markers into dbt vars.

    Raises:
        TranslationFailed: with the precise reason the object is no single SELECT.
    """
    if isinstance(obj, View):
        try:
            return view_select(obj.definition)
        except ValueError as e:
            raise TranslationFailed(str(e)) from e
    if obj.parameters is None:
        raise TranslationFailed("the parameter list could not be read by extract")
    outputs = [p.name for p in obj.parameters if p.output]
    if outputs:
        raise TranslationFailed(f"returns OUTPUT parameters ({', '.join(outputs)})")
    shape = procedure_shape(obj.definition, [p.name for p in obj.parameters])
    if shape.select is None:
        raise TranslationFailed("; ".join(shape.reasons))
    sql = shape.select
    for p in sorted(obj.parameters, key=lambda p: -len(p.name)):
        name = p.name.lstrip("@")
        sql = re.sub(rf"@{re.escape(name)}\b", f"__param_{name}", sql, flags=re.IGNORECASE)
    return sql


def param_var(model: str, param: str) -> str:
    """The dbt var that stands for a procedure parameter."""
    return f"{model}__{snake(param.lstrip('@'))}"


def _bind_params(sql: str, obj: Routine, model: str, target: str) -> str:
    params = {p.name.lstrip("@").lower(): p for p in obj.parameters or []}

    def bind(m: re.Match[str]) -> str:
        p = params.get(m.group(1).lower())
        if p is None:
            return m.group(0)
        kind = column_type(Column(name=p.name, ordinal=1, data_type=p.data_type,
                                  max_length=p.max_length, precision=p.precision,
                                  scale=p.scale), target)  # fmt: skip
        return "{{ datamigrate_param('" + param_var(model, p.name) + "', '" + kind + "') }}"

    return _PARAM_MARK.sub(bind, sql)


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
    if isinstance(obj, Routine) and obj.parameters:
        sql = _bind_params(sql, obj, plan[object_key(obj.schema_, obj.name)]["model"], target)
    if missing:
        raise TranslationFailed("; ".join(dict.fromkeys(missing)), draft=sql)
    return sql


def _params_note(obj: View | Routine, model: str) -> str | None:
    if not isinstance(obj, Routine) or not obj.parameters:
        return None
    names = ", ".join(f"{p.name} -> var('{param_var(model, p.name)}')" for p in obj.parameters)
    return f"parameters became dbt vars ({names}), NULL until set: built with no rows selected"


def _routines(doc: MetadataDocument) -> dict[str, View | Routine]:
    return {object_key(o.schema_, o.name): o for o in [*doc.views, *doc.procedures]}


def project_inputs(state: State, ctx: Context) -> ProjectInputs:
    """The writer's inputs from the state (used by generate and repair)."""
    plan, sql = state["plan"], state.get("sql", {})
    # Every flagged model is written disabled: its translation, or else the original T-SQL
    # in a comment, so that a person can finish it while the rest builds.
    disabled = {
        k: o.get("reason") or "flagged"
        for k, o in state.get("outcomes", {}).items()
        if o.get("status") == "flagged" and k in plan
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
        ctx.progress.update(total=len(state["objects"]), current=plan[key]["model"])
        try:
            sql[key] = _translate(objects[key], plan, blocked, target, types)
            note = _params_note(objects[key], plan[key]["model"])
            if note:
                outcomes[key] = {**outcomes.get(key, {"attempts": 0}), "note": note}
        except TranslationFailed as e:
            blocked[key] = str(e)
            outcomes[key] = {"status": "flagged", "reason": str(e), "attempts": 0}
            if e.draft is not None:
                sql[key] = e.draft
    update: State = {**state, "sql": sql, "outcomes": outcomes}  # type: ignore[typeddict-item]
    files = write_project(project_inputs(update, ctx))
    flagged = sum(1 for o in outcomes.values() if o.get("status") == "flagged")
    log.info("Generated project", extra={"fields": {"node": "generate", "models": len(files),
                                                    "flagged": flagged}})  # fmt: skip
    return {"sql": sql, "outcomes": outcomes, "safe_casts": []}
