"""evaluate: every object ends verified or flagged, with the figures that say why.

A table's staging model is compared with the raw table it reads (row count, and per column a
non-null count and an order-independent hash sum computed on both sides in the engine), and the
raw table's row count with the source's (the script's data or the catalogue's sample). A view or
procedure model can only be compared with the original where SQL Server can run it, which this
step cannot (it has no source credentials): it ends ``verified-by-build`` (it builds and its
tests pass) and says so.
"""

from __future__ import annotations

import logging
from typing import Any

from langgraph.runtime import Runtime

from datamigrate_agent.config import RUNNABLE_TARGETS
from datamigrate_agent.metadata import Table
from datamigrate_agent.nodes._context import Context
from datamigrate_agent.nodes._engine import checksum_sql, connect
from datamigrate_agent.nodes._names import object_key, quote
from datamigrate_agent.nodes._project import raw_schema
from datamigrate_agent.nodes._sql import unmapped_type
from datamigrate_agent.nodes.test import settled_so_far
from datamigrate_agent.state import ObjectInfo, Outcome, State

__all__ = ["evaluate_results", "compare_table"]

log = logging.getLogger(__name__)


def _failed_tests(tests: list[dict[str, Any]]) -> list[str]:
    bad = []
    for t in tests:
        if t["status"] in {"fail", "error"} or (t["status"] == "warn" and t.get("failures")):
            detail = f"{t['failures']} rows" if t.get("failures") else (t.get("message") or "")
            bad.append(f"{t['test']} ({detail[:200]})")
    return bad


def _fetch(con: Any, sql: str) -> tuple[Any, ...]:
    cur = con.cursor()
    try:
        cur.execute(sql)
        return tuple(cur.fetchone())
    finally:
        cur.close()


def compare_table(con: Any, target: str, raw: str, model: str, t: Table) -> dict[str, Any]:
    """Row counts and per-column checksums of the raw table and of its staging model."""
    names = [c.name for c in t.columns]
    # Both sides in one statement: a round trip per table, not two.
    both = _fetch(con, f"select * from ({checksum_sql(raw, names, target)}) as raw_side cross "
                       f"join ({checksum_sql(model, names, target)}) as model_side")  # fmt: skip
    left, right = both[: len(both) // 2], both[len(both) // 2 :]
    mismatched = [n for i, n in enumerate(names)
                  if left[1 + 2 * i : 3 + 2 * i] != right[1 + 2 * i : 3 + 2 * i]]  # fmt: skip
    return {"rawRows": int(left[0]), "modelRows": int(right[0]),
            "columnsCompared": len(names), "mismatchedColumns": mismatched}  # fmt: skip


def _table_verdict(ctx: Context, con: Any, t: Table, model: str, source: str) -> Outcome:
    cfg = ctx.config
    raw = f"{quote(raw_schema(source), cfg.target)}.{quote(t.name, cfg.target)}"
    rel = f"{quote(cfg.schema, cfg.target)}.{quote(model, cfg.target)}"
    checks = compare_table(con, cfg.target, raw, rel, t)
    expected = t.sample_data.row_count if t.sample_data else 0
    checks["sourceRows"] = expected
    if checks["rawRows"] != expected:
        why = f"loaded {checks['rawRows']} rows, the source has {expected}"
        return {"status": "flagged", "reason": why, "checks": checks}
    if checks["modelRows"] != checks["rawRows"] or checks["mismatchedColumns"]:
        why = (f"model has {checks['modelRows']} rows for {checks['rawRows']}; columns differing: "
               f"{', '.join(checks['mismatchedColumns']) or 'none'}")  # fmt: skip
        return {"status": "flagged", "reason": why, "checks": checks}
    if t.sample_data is None or expected == 0:
        why = "builds and its tests pass, but the source had no rows to compare"
        return {"status": "verified-by-build", "reason": why, "checks": checks}
    sample = "" if t.sample_data.complete else f" (a sample of {expected} rows)"
    why = f"{expected} rows and {len(t.columns)} column checksums match the source{sample}"
    return {"status": "verified", "reason": why, "checks": checks}


def _not_built(ctx: Context, state: State, model: str) -> str | None:
    cfg, build = ctx.config, state.get("build", {})
    if not cfg.validate:
        return "not validated (--no-validate): generated only"
    if build.get("parse_error") and not build.get("blamed"):
        return f"dbt parse failed: {build['parse_error'][:500]}"
    result = build.get("models", {}).get(model)
    if result is None:
        return "dbt did not report this model"
    if result["status"] == "error":
        return f"dbt build failed: {result['message']}"
    if cfg.target not in RUNNABLE_TARGETS:
        return (
            f"no {cfg.target} engine here: checked by dbt parse and by sqlglot's "
            f"{cfg.target} parser only, not built"
        )
    if result["status"] != "success":
        return f"not built ({result['status']}): an upstream model failed"
    return None


def _verdict(
    ctx: Context, state: State, con: Any, o: ObjectInfo, tables: dict[str, Table]
) -> Outcome:
    pm = state["plan"][o["key"]]
    reason = _not_built(ctx, state, pm["model"])
    if reason:
        return {"status": "flagged", "reason": reason}
    load = state.get("load", {}).get(o["key"])
    if isinstance(load, dict) and "error" in load:
        return {"status": "flagged", "reason": f"raw table could not be loaded: {load['error']}"}
    bad = _failed_tests(state.get("build", {}).get("tests", {}).get(pm["model"], []))
    if bad:
        return {"status": "flagged", "reason": "tests failed: " + "; ".join(bad)}
    if o["kind"] == "table":
        t = tables[o["key"]]
        unmapped = [r for c in t.columns if (r := unmapped_type(c, ctx.config.target))]
        if unmapped:
            return {"status": "flagged", "reason": "; ".join(unmapped) + ": kept as text"}
        return _table_verdict(ctx, con, t, pm["model"], pm["source"])
    source_kind = ctx.metadata.source.kind
    why = (
        "the source is a T-SQL script, so no SQL Server can run the original to compare"
        if source_kind == "script"
        else "the migrate step has no SQL Server login to run the original and compare"
    )
    return {"status": "verified-by-build", "reason": f"builds and its tests pass; {why}"}


def evaluate_results(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Decide every object's final status."""
    ctx = runtime.context
    ctx.executed.append("evaluate")
    outcomes = {k: dict(v) for k, v in state.get("outcomes", {}).items()}
    runnable = ctx.config.target in RUNNABLE_TARGETS and ctx.config.validate
    tables = {object_key(t.schema_, t.name): t for t in ctx.metadata.tables}
    # A resumed pod starts from what the last build settled: the counts never go down.
    ctx.progress.settle(settled_so_far(state), phase="Validating", total=len(state["objects"]))
    with _maybe_connect(ctx, runnable) as con:
        for o in state["objects"]:
            prior = outcomes.get(o["key"], {})
            if prior.get("status") != "flagged" and o["key"] in state["plan"]:
                try:
                    prior.update(_verdict(ctx, state, con, o, tables))
                    if prior.get("note"):
                        prior["reason"] = f"{prior.get('reason')}; {prior['note']}"
                except Exception as e:  # noqa: BLE001 - one object's check must not stop others
                    prior.update(status="failed", reason=f"evaluation failed: {e}"[:500])
            outcomes[o["key"]] = prior
            ctx.progress.settle({o["key"]: _category(prior.get("status"))},
                                current=state["plan"].get(o["key"], {}).get("model"))  # fmt: skip
    ctx.progress.update(current=None)
    return {"outcomes": outcomes}


def _category(status: str | None) -> str:
    # Flagged objects need a person but are not failures: they count as skipped (and so does
    # an object without a status, which results.json lists as flagged).
    if status == "failed":
        return "failed"
    return "skipped" if status in {"flagged", None} else "completed"


class _NoEngine:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _maybe_connect(ctx: Context, runnable: bool) -> Any:
    return connect(ctx.config) if runnable else _NoEngine()
