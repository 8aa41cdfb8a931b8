"""Running dbt in-process (``dbtRunner``) and reading its results, never its log text.

One ``parse`` and one ``build`` per round: the build reuses the parse's manifest, so dbt's
start-up (3-5 s) is paid once. Results come from the build's ``RunExecutionResult`` in memory
(the objects ``run_results.json`` is written from), so dbt writes no JSON artifacts: on a
catalogue of thousands of nodes, serialising the manifest twice and reading it back cost about
a tenth of the round and held a second copy of it in memory.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["DbtRun", "NodeResult", "run_dbt", "OnFinished"]

log = logging.getLogger(__name__)

#: Called from dbt's worker threads with a node's unique id and status as each node finishes.
OnFinished = Callable[[str, str], None]

#: stdout stays JSON lines; dbt logs warnings and errors to the project's ``logs/`` (info-level
#: file logging costs about a third of a large build). No JSON artifacts (see above), and no
#: anonymous usage events: a step pod's egress is closed, and each event costs time per node.
_QUIET = ["--quiet", "--log-level", "none", "--log-level-file", "warn", "--no-use-colors",
          "--no-write-json", "--no-send-anonymous-usage-stats"]  # fmt: skip


@dataclass
class NodeResult:
    """One model's or test's result from the build."""

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


def _node_finished(on_finished: OnFinished) -> Callable[[Any], None]:
    # dbt calls its callbacks with every event, whatever the log level, inside the node's
    # runner: an exception here would turn the node into an error, so none may escape.
    def callback(msg: Any) -> None:
        if msg.info.name != "NodeFinished":
            return
        try:
            on_finished(msg.data.node_info.unique_id, msg.data.run_result.status)
        except Exception as e:  # noqa: BLE001 - progress must never fail a node
            log.warning("Node progress failed",
                        extra={"fields": {"error": f"{type(e).__name__}: {e}"}})  # fmt: skip

    return callback


def run_dbt(
    project: Path,
    profiles: Path,
    *,
    build: bool,
    vars_: dict[str, Any],
    on_finished: OnFinished | None = None,
) -> DbtRun:
    """``dbt parse``, then (when ``build``) ``dbt build`` with the parsed manifest.

    ``on_finished`` hears of every node of the build as it finishes (dbt's ``NodeFinished``).
    """
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
    callbacks = [_node_finished(on_finished)] if on_finished else []
    runner = dbtRunner(manifest=res.result, callbacks=callbacks)
    res = runner.invoke(_args("build", project, profiles, extra))
    out.seconds["build"] = round(time.monotonic() - started, 2)
    out.results = [_node_result(r) for r in getattr(res.result, "results", None) or []]
    if not out.results and res.exception is not None:
        # The build failed before running anything (e.g. the engine is unreachable).
        out.parse_error = _error_text(res)
    return out


def _node_result(r: Any) -> NodeResult:
    node = r.node
    uid = node.unique_id
    model = uid if uid.startswith("model.") else getattr(node, "attached_node", None)
    if model is None and uid.startswith("test."):
        deps = [d for d in node.depends_on.nodes if d.startswith("model.")]
        model = deps[0] if deps else None
    return NodeResult(
        unique_id=uid,
        status=str(r.status),
        message=" ".join(str(r.message).split())[:2000] if r.message else None,
        failures=r.failures,
        model=model.split(".")[-1] if model else None,
    )
