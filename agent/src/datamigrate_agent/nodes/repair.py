"""repair: bounded attempts per failing model, with an LLM when configured, else fixed rules.

Without an LLM the rules are: a staging model falls back to safe casts (``try_cast``, or text
where the target has none); a view or procedure model gets every identifier quoted. Past the
attempt limit, or when no rule applies, the object is flagged with dbt's message, written
disabled, and so is everything built on it.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Literal

import sqlglot
from langgraph.runtime import Runtime

from datamigrate_agent.llm import Budget, ask_repair, sqlglot_dialect
from datamigrate_agent.nodes._context import Context
from datamigrate_agent.nodes._names import object_key
from datamigrate_agent.nodes._project import ref_placeholders, restore_refs, write_project
from datamigrate_agent.nodes._tsql import strip_comments
from datamigrate_agent.nodes.generate import project_inputs
from datamigrate_agent.nodes.test import failing_models
from datamigrate_agent.state import Outcome, State

__all__ = ["repair_models", "route_after_repair"]

log = logging.getLogger(__name__)

QUOTED_FIX = "quoted every identifier"
SAFE_CAST_FIX = "switched to safe casts"
#: Errors that quoting can fix: an identifier folded to another case or not found.
_IDENTIFIER_ERROR = re.compile(
    r"column .{0,80}(does not exist|not found)|Referenced column|Binder Error|"
    r"syntax error at or near|Parser Error",
    re.IGNORECASE,
)


def _quote_all(sql: str, target: str) -> str:
    dialect = sqlglot_dialect(target)
    tree = sqlglot.parse_one(ref_placeholders(sql), read=dialect)
    return restore_refs(tree.sql(dialect=dialect, identify=True, pretty=True))


def _definition(ctx: Context, key: str) -> tuple[str, str]:
    for kind, objs in (("view", ctx.metadata.views), ("procedure", ctx.metadata.procedures)):
        for o in objs:
            if object_key(o.schema_, o.name) == key:
                return kind, strip_comments(o.definition)
    return "object", ""


def _ask_llm(
    ctx: Context, key: str, sql: str, message: str, budget: Budget, refs: list[str]
) -> tuple[str | None, str | None]:
    kind, original = _definition(ctx, key)
    payload = {"object": key, "kind": kind, "original_tsql": original,
               "current_sql": ref_placeholders(sql), "error": message,
               "available_refs": [f"__ref_{r}" for r in refs]}  # fmt: skip
    answer = ask_repair(ctx.chat, budget, ctx.config.target, payload)
    if answer.sql is None:
        return None, answer.reason
    fixed = restore_refs(answer.sql)
    unknown = [r for r in _refs_in(fixed) if r not in refs]
    if unknown:
        return None, f"LLM answer rejected: refers to unknown models {unknown}"
    return fixed, None


def _refs_in(sql: str) -> list[str]:
    return re.findall(r"ref\('([A-Za-z0-9_]+)'\)", sql)


def _fix(
    ctx: Context, state: State, key: str, message: str, work: dict[str, Any]
) -> tuple[str | None, str | None]:
    """Apply one fix to ``key``; returns (what was done, None) or (None, why not)."""
    pm, out = state["plan"][key], work["outcomes"][key]
    if pm["layer"] == "staging":
        if key in work["safe"]:
            return None, f"dbt build failed even with safe casts: {message}"
        work["safe"].add(key)
        return SAFE_CAST_FIX, None
    sql = work["sql"][key]
    if ctx.chat is not None:
        fixed, reason = _ask_llm(ctx, key, sql, message, work["budget"], pm["refs"])
        if fixed is None:
            return None, f"{reason}; dbt said: {message}"
        work["sql"][key] = fixed
        return f"LLM repair {out['attempts']}", None
    if QUOTED_FIX in out.get("fixes", []):
        return None, f"dbt build failed after quoting every identifier: {message}"
    if not _IDENTIFIER_ERROR.search(message):
        return None, f"dbt build failed (no rule applies): {message}"
    try:
        work["sql"][key] = _quote_all(sql, ctx.config.target)
    except sqlglot.errors.SqlglotError:
        return None, f"dbt build failed and the SQL could not be re-quoted: {message}"
    return QUOTED_FIX, None


def _cascade(state: State, outcomes: dict[str, Outcome]) -> None:
    # Whatever selects from a flagged (disabled) model cannot build: flag it too, with why.
    plan = state["plan"]
    model_key = {pm["model"]: k for k, pm in plan.items()}
    changed = True
    while changed:
        changed = False
        for key, pm in plan.items():
            if outcomes.get(key, {}).get("status") == "flagged":
                continue
            bad = [
                r
                for r in pm["refs"]
                if outcomes.get(model_key.get(r, ""), {}).get("status") == "flagged"
            ]
            if bad:
                outcomes[key] = {**outcomes.get(key, {"attempts": 0}), "status": "flagged",
                                 "reason": f"depends on flagged model {bad[0]}"}  # fmt: skip
                changed = True


def repair_models(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """One repair attempt for every model that failed the last build."""
    ctx = runtime.context
    ctx.executed.append("repair")
    cfg, build = ctx.config, state["build"]
    by_model = {pm["model"]: k for k, pm in state["plan"].items()}
    budget = Budget(**(state.get("llm_budget") or
                       {"calls": cfg.llm_call_budget, "tokens": cfg.llm_token_budget}))  # fmt: skip
    work: dict[str, Any] = {
        "outcomes": {k: dict(v) for k, v in state.get("outcomes", {}).items()},
        "sql": dict(state.get("sql", {})), "safe": set(state.get("safe_casts", [])),
        "budget": budget,
    }  # fmt: skip
    repaired: list[str] = []
    for model in failing_models(build):
        key = by_model.get(model)
        if key is None or work["outcomes"].get(key, {}).get("status") == "flagged":
            continue
        out = work["outcomes"].setdefault(key, {"attempts": 0, "fixes": []})
        message = build["models"][model]["message"] or "dbt reported an error"
        if out.get("attempts", 0) >= cfg.max_repair_attempts:
            out.update(status="flagged", reason=f"dbt build failed: {message}")
            continue
        out["attempts"] = out.get("attempts", 0) + 1
        done, why = _fix(ctx, state, key, message, work)
        if done:
            out["fixes"] = [*out.get("fixes", []), done]
            out["status"] = "generated"
            repaired.append(key)
        else:
            out.update(status="flagged", reason=why)
        log.info(
            "Repaired model",
            extra={
                "fields": {
                    "node": "repair",
                    "object": key,
                    "model": model,
                    "attempt": out["attempts"],
                    "fix": done,
                    "flag": why,
                }
            },
        )
    _cascade(state, work["outcomes"])
    update: dict[str, Any] = {"outcomes": work["outcomes"], "sql": work["sql"],
                              "safe_casts": sorted(work["safe"]),
                              "llm_budget": {"calls": budget.calls, "tokens": budget.tokens},
                              "repaired": repaired}  # fmt: skip
    write_project(project_inputs({**state, **update}, ctx))  # type: ignore[typeddict-item]
    return update


def route_after_repair(state: State) -> Literal["test", "evaluate"]:
    """Build again when a model was changed; the attempt counters bound the loop.

    When this round only flagged models (written disabled, with everything that reads them),
    the last build's results for every other model still hold: no rebuild is needed.
    """
    return "test" if state.get("repaired") else "evaluate"
