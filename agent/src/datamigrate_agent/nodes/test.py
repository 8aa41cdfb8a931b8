"""test: load the raw tables, then ``dbt parse`` and ``dbt build`` on the target engine."""

from __future__ import annotations

import logging
import re
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import yaml
from langgraph.runtime import Runtime

from datamigrate_agent.config import RUNNABLE_TARGETS
from datamigrate_agent.dbt import DbtRun, run_dbt
from datamigrate_agent.nodes._context import Context
from datamigrate_agent.nodes._engine import duckdb_path, export_pg_env, load_sources
from datamigrate_agent.nodes._profiles import profile_for
from datamigrate_agent.nodes._project import SEVERITY_VAR, raw_schema
from datamigrate_agent.progress import MIN_PATCH_INTERVAL, Progress
from datamigrate_agent.state import PlannedModel, State

__all__ = ["test_project", "route_after_test", "failing_models", "settled_so_far",
           "BuildProgress"]  # fmt: skip

log = logging.getLogger(__name__)


def _raw_schemas(state: State) -> dict[str, str]:
    return {schema.lower(): raw_schema(src) for src, schema in state["sources"].items()}


def _stand_in_profiles(ctx: Context, tmp: Path) -> Path:
    # A target with no engine here (Snowflake, ...) is checked by `dbt parse` under a DuckDB
    # stand-in profile of the same name: refs, sources, tests and YAML are dbt's to judge.
    name = yaml.safe_load((ctx.config.project_dir / "dbt_project.yml").read_text())["profile"]
    doc = profile_for(name, "duckdb", ctx.config.schema, str(tmp / "stand-in.duckdb"))
    (tmp / "profiles.yml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    return tmp


def _blame(message: str, models: list[str]) -> list[str]:
    # A parse error names the file or node; find which of our models it is about.
    return [m for m in models if re.search(rf"\b{re.escape(m)}\b", message)]


def _category(model_status: str) -> str:
    # A model that did not build is flagged unless a repair fixes it: skipped, for now.
    return "completed" if model_status == "success" else "skipped"


def settled_so_far(state: State) -> dict[str, str]:
    """Progress categories known before a build: flagged objects are skipped, and the
    models of the last build count by its result (a resumed pod starts from these)."""
    plan, outcomes = state["plan"], state.get("outcomes", {})
    models = state.get("build", {}).get("models", {})
    out: dict[str, str] = {}
    for o in state["objects"]:
        key = o["key"]
        if outcomes.get(key, {}).get("status") == "flagged":
            out[key] = "skipped"
        elif key in plan and plan[key]["model"] in models:
            out[key] = _category(models[plan[key]["model"]]["status"])
    return out


class BuildProgress:
    """Settles each object as dbt finishes its model; reports at most every half second.

    dbt calls it from its worker threads, once per node: on a catalogue of 1,000 tables (and
    their tests) a report per node would be thousands of log lines and ConfigMap patches.
    """

    def __init__(
        self,
        progress: Progress,
        plan: dict[str, PlannedModel],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._progress = progress
        self._keys = {pm["model"]: key for key, pm in plan.items()}
        self._clock = clock
        self._last = clock()
        self._pending: dict[str, str] = {}
        self._lock = threading.Lock()

    def __call__(self, unique_id: str, status: str) -> None:
        """``dbt.OnFinished``: one node finished with ``status``."""
        key = self._keys.get(unique_id.split(".")[-1]) if unique_id.startswith("model.") else None
        if key is None:
            return
        with self._lock:
            self._pending[key] = _category(status)
            if self._clock() - self._last >= MIN_PATCH_INTERVAL:
                self._progress.settle(self._pending, current=unique_id.split(".")[-1])
                self._pending, self._last = {}, self._clock()


def _summarise(run: DbtRun, state: State, round_no: int) -> dict[str, Any]:
    models: dict[str, Any] = {}
    tests: dict[str, list[dict[str, Any]]] = {}
    for r in run.results:
        if r.unique_id.startswith("model."):
            models[r.unique_id.split(".")[-1]] = {"status": r.status, "message": r.message}
        elif r.model:
            tests.setdefault(r.model, []).append(
                {"test": r.unique_id.split(".")[2], "status": r.status,
                 "failures": r.failures, "message": r.message})  # fmt: skip
    blamed: list[str] = []
    if run.parse_error:
        names = [pm["model"] for pm in state["plan"].values()]
        blamed = _blame(run.parse_error, names)
        for m in blamed:
            models[m] = {"status": "error", "message": f"dbt parse: {run.parse_error}"}
    return {"round": round_no, "parsed": run.parsed, "parse_error": run.parse_error,
            "blamed": blamed, "models": models, "tests": tests, "seconds": run.seconds}  # fmt: skip


def test_project(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Build the project once (parse, then build with the parsed manifest)."""
    ctx = runtime.context
    ctx.executed.append("test")
    cfg = ctx.config
    ctx.progress.settle(settled_so_far(state), phase="Validating", total=len(state["objects"]),
                        current=None)  # fmt: skip
    runnable = cfg.target in RUNNABLE_TARGETS and cfg.validate
    update: dict[str, Any] = {}
    if runnable:
        # A resumed pod has lost a scratch copy of the engine: load again.
        present = cfg.target == "postgres" or Path(duckdb_path(cfg)).exists()
        if cfg.target == "postgres":
            export_pg_env()
        if not state.get("loaded") or not present:
            started = time.monotonic()
            update["load"] = load_sources(cfg, ctx.metadata, _raw_schemas(state))
            update["loaded"] = True
            log.info(
                "Loaded raw tables",
                extra={
                    "fields": {
                        "node": "test",
                        "tables": len(update["load"]),
                        "seconds": round(time.monotonic() - started, 2),
                    }
                },
            )
    round_no = state.get("build", {}).get("round", 0) + 1
    vars_ = {SEVERITY_VAR: "warn"}
    if runnable:
        run = run_dbt(cfg.project_dir, cfg.project_dir, build=True, vars_=vars_,
                      on_finished=BuildProgress(ctx.progress, state["plan"]))  # fmt: skip
    else:
        with tempfile.TemporaryDirectory(prefix="datamigrate-profile-") as tmp:
            run = run_dbt(cfg.project_dir, _stand_in_profiles(ctx, Path(tmp)), build=False,
                          vars_=vars_)  # fmt: skip
    update["build"] = _summarise(run, state, round_no)
    if not runnable and run.parsed and cfg.validate:
        update["build"]["models"] = _dialect_check(cfg.project_dir, state, cfg.target)
    # The whole round's results, including what the throttle held back.
    ctx.progress.settle(settled_so_far({**state, "build": update["build"]}), current=None)
    log.info("Built project", extra={"fields": {"node": "test", "round": round_no,
             "parsed": run.parsed, "seconds": run.seconds,
             "failing": len(failing_models(update["build"]))}})  # fmt: skip
    return update


_JINJA_REF = re.compile(r"\{\{\s*ref\('([A-Za-z0-9_]+)'\)\s*\}\}")
_JINJA_SOURCE = re.compile(r"\{\{\s*source\('([A-Za-z0-9_]+)',\s*'([A-Za-z0-9_]+)'\)\s*\}\}")
_JINJA_CONFIG = re.compile(r"\{\{\s*config\(.*?\)\s*\}\}")


def _dialect_check(project: Path, state: State, target: str) -> dict[str, Any]:
    # Without the target engine, every model's SQL must at least parse in its dialect.
    import sqlglot

    from datamigrate_agent.llm import sqlglot_dialect

    models: dict[str, Any] = {}
    outcomes = state.get("outcomes", {})
    for key, pm in state["plan"].items():
        path = project / pm["path"]
        # A flagged model is a disabled draft (maybe T-SQL in a comment): dbt skips it too.
        if outcomes.get(key, {}).get("status") == "flagged" or not path.is_file():
            continue
        sql = _JINJA_CONFIG.sub("", path.read_text(encoding="utf-8"))
        sql = _JINJA_SOURCE.sub(lambda m: f"{m.group(1)}.{m.group(2)}", _JINJA_REF.sub(
            lambda m: m.group(1), sql))  # fmt: skip
        try:
            sqlglot.parse_one(sql, read=sqlglot_dialect(target))
            models[pm["model"]] = {"status": "success", "message": None}
        except sqlglot.errors.SqlglotError as e:
            message = f"does not parse as {target} SQL: {str(e).splitlines()[0][:300]}"
            models[pm["model"]] = {"status": "error", "message": message}
    return models


def failing_models(build: dict[str, Any]) -> list[str]:
    """Models whose build errored in the last round."""
    return [m for m, r in build.get("models", {}).items() if r["status"] == "error"]


def route_after_test(state: State, runtime: Runtime[Context]) -> Literal["repair", "evaluate"]:
    """Repair while models fail and the bounded rounds are not used up."""
    build = state.get("build", {})
    limit = runtime.context.config.max_repair_attempts + 2
    unexplained_parse_error = build.get("parse_error") and not build.get("blamed")
    if build.get("round", 0) >= limit or unexplained_parse_error:
        return "evaluate"
    return "repair" if failing_models(build) else "evaluate"
