"""Running dbt in-process (``dbtRunner``) and reading its artifacts, never its log text.

One ``parse`` and one ``build`` per round: the build reuses the parse's manifest, so dbt's
start-up (3-5 s) is paid once. Results come from ``target/run_results.json`` and
``target/manifest.json``.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["DbtRun", "NodeResult", "run_dbt"]

log = logging.getLogger(__name__)

#: stdout stays JSON lines; dbt logs warnings and errors to the project's ``logs/`` (info-level
#: file logging costs about a third of a large build).
_QUIET = ["--quiet", "--log-level", "none", "--log-level-file", "warn", "--no-use-colors"]


@dataclass
class NodeResult:
    """One model's or test's result from ``run_results.json``."""

    unique_id: str
    status: str
    message: str | None
    failures: int | None
    #: The model a test belongs to (``attached_node``), or the node itself for a model.
    model: str | None


@dataclass
class DbtRun:
    """The outcome of one parse (+ build) round."""

    parsed: bool
    parse_error: str | None = None
    results: list[NodeResult] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


def _args(command: str, project: Path, profiles: Path, extra: list[str]) -> list[str]:
    return [
        command,
        *_QUIET,
        "--project-dir",
        str(project),
        "--profiles-dir",
        str(profiles),
        *extra,
    ]


def _error_text(res: Any) -> str:
    exc = res.exception
    if exc is None:
        return "dbt parse failed without an exception"
    return " ".join(str(exc).split())[:2000]


def run_dbt(project: Path, profiles: Path, *, build: bool, vars_: dict[str, Any]) -> DbtRun:
    """``dbt parse``, then (when ``build``) ``dbt build`` with the parsed manifest."""
    from dbt.cli.main import dbtRunner

    out = DbtRun(parsed=False)
    extra = ["--vars", json.dumps(vars_)] if vars_ else []
    started = time.monotonic()
    res = dbtRunner().invoke(_args("parse", project, profiles, extra))
    out.seconds["parse"] = round(time.monotonic() - started, 2)
    if not res.success:
        out.parse_error = _error_text(res)
        return out
    out.parsed = True
    if not build:
        return out
    started = time.monotonic()
    runner = dbtRunner(manifest=res.result)
    res = runner.invoke(_args("build", project, profiles, extra))
    out.seconds["build"] = round(time.monotonic() - started, 2)
    out.results = read_results(project)
    if not out.results and res.exception is not None:
        # The build failed before running anything (e.g. the engine is unreachable).
        out.parse_error = _error_text(res)
    return out


def read_results(project: Path) -> list[NodeResult]:
    """Node results of the last run, with each test tied to the model it tests."""
    target = project / "target"
    try:
        run = json.loads((target / "run_results.json").read_text(encoding="utf-8"))
        manifest = json.loads((target / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        log.warning("dbt artifacts unreadable", extra={"fields": {"error": str(e)}})
        return []
    nodes = manifest.get("nodes", {})
    return [_node_result(r, nodes) for r in run.get("results", [])]


def _node_result(r: dict[str, Any], nodes: dict[str, Any]) -> NodeResult:
    uid = r["unique_id"]
    node = nodes.get(uid, {})
    model = uid if uid.startswith("model.") else node.get("attached_node")
    if model is None and uid.startswith("test."):
        deps = [d for d in node.get("depends_on", {}).get("nodes", []) if d.startswith("model.")]
        model = deps[0] if deps else None
    message = r.get("message")
    return NodeResult(
        unique_id=uid,
        status=r.get("status", "unknown"),
        message=" ".join(str(message).split())[:2000] if message else None,
        failures=r.get("failures"),
        model=model.split(".")[-1] if model else None,
    )
