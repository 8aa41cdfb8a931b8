"""migrate: turn /workspace/metadata.json into a checked dbt project (the LangGraph agent).

Resumable: the graph is checkpointed after every node under the migration's name, so a pod
restarted with the same inputs continues after the last finished node.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import re
import signal
from pathlib import Path
from typing import Any

from datamigrate_agent.config import PROVIDERS, TARGETS, MigrateConfig
from datamigrate_agent.errors import EXIT_OK, PermanentError
from datamigrate_agent.graph import build_graph, open_checkpointer
from datamigrate_agent.llm import build_chat_model
from datamigrate_agent.metadata import load_metadata
from datamigrate_agent.nodes._context import Context
from datamigrate_agent.nodes._engine import discard_scratch
from datamigrate_agent.nodes._profiles import DUCKDB_PATH_ENV
from datamigrate_agent.progress import Progress

__all__ = ["add_arguments", "run", "migrate"]

log = logging.getLogger(__name__)

#: What ``--schema`` (``spec.target.schema``) may be: a plain identifier on every target.
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
#: Supersteps the graph may take; the repair loop is bounded well below this.
RECURSION_LIMIT = 100


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``migrate`` options (docs/architecture.md)."""
    parser.add_argument("--workspace", required=True, type=Path)
    parser.add_argument("--target", required=True, choices=TARGETS)
    parser.add_argument("--project-name", required=True)
    parser.add_argument("--schema", default="analytics")
    parser.add_argument("--materialization", choices=("view", "table"), default="view")
    parser.add_argument("--no-validate", dest="validate", action="store_false")
    parser.add_argument("--model-provider", choices=PROVIDERS, default="none")
    parser.add_argument("--model")
    parser.add_argument("--base-url")
    parser.add_argument("--max-repair-attempts", type=int, default=2)


def config_from_args(args: argparse.Namespace) -> MigrateConfig:
    """The run's settings; bad values are permanent errors."""
    if args.max_repair_attempts < 0 or args.max_repair_attempts > 10:
        raise PermanentError("--max-repair-attempts must be 0..10", code="InvalidArguments")
    if not args.project_name.strip():
        raise PermanentError("--project-name must not be empty", code="InvalidArguments")
    if not _IDENTIFIER.fullmatch(args.schema):
        # The schema is written into SQL and into dbt's Jinja (profiles, model configs).
        raise PermanentError(
            f"spec.target.schema must be an identifier (^{_IDENTIFIER.pattern}$), "
            f"not {args.schema[:40]!r}",
            code="InvalidArguments",
        )
    return MigrateConfig(
        workspace=args.workspace.resolve(), target=args.target, project_name=args.project_name,
        schema=args.schema, materialization=args.materialization, validate=args.validate,
        provider=args.model_provider, model=args.model, base_url=args.base_url,
        max_repair_attempts=args.max_repair_attempts,
    )  # fmt: skip


def _fingerprint(cfg: MigrateConfig) -> str:
    h = hashlib.sha256(json.dumps(cfg.to_state(), sort_keys=True).encode())
    h.update(cfg.metadata_path.read_bytes())
    return h.hexdigest()


def migrate(cfg: MigrateConfig, *, progress: Progress | None = None, chat: Any = None) -> Context:
    """Run (or resume) the graph for ``cfg``; returns the context (executed nodes, ...)."""
    load_metadata(cfg.metadata_path)  # bad input fails here, before anything is written
    ctx = Context(config=cfg, progress=progress or Progress.from_env(), chat=chat)
    fingerprint = _fingerprint(cfg)
    saver = open_checkpointer(cfg.checkpoint_path)
    # The engine path is exported for dbt's env_var() during this run only.
    engine_env = os.environ.get(DUCKDB_PATH_ENV)
    try:
        graph = build_graph(saver)
        run_cfg = {"configurable": {"thread_id": cfg.thread_id},
                   "recursion_limit": RECURSION_LIMIT}  # fmt: skip
        snapshot = graph.get_state(run_cfg)
        same = snapshot.values.get("fingerprint") == fingerprint
        if snapshot.next and same:
            log.info("Resuming", extra={"fields": {"next": list(snapshot.next)}})
            stream_input: Any = None
        else:
            if snapshot.values:
                saver.delete_thread(cfg.thread_id)
            stream_input = {"config": cfg.to_state(), "fingerprint": fingerprint}
        # durability="sync": a node's checkpoint is on disk before the next node starts, so a
        # pod killed at any moment resumes after the last node that finished.
        updates = graph.stream(stream_input, run_cfg, context=ctx, stream_mode="updates",
                               durability="sync")  # fmt: skip
        for update in updates:
            for node in update:
                log.info("Node finished", extra={"fields": {"node": node}})
    finally:
        saver.conn.close()
        discard_scratch(cfg)  # after a failure: the report node did not save it
        if engine_env is None:
            os.environ.pop(DUCKDB_PATH_ENV, None)
        else:
            os.environ[DUCKDB_PATH_ENV] = engine_env
    return ctx


def _on_sigterm(signum: int, _frame: Any) -> None:
    # A deleted pod gets SIGTERM, which skips every `finally` (and dbt would swallow the
    # SystemExit a handler could raise): remove the scratch folders, then die of the signal.
    discard_scratch()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def run(args: argparse.Namespace) -> int:
    """Entry point of ``python -m datamigrate_agent migrate``."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    cfg = config_from_args(args)
    chat = build_chat_model(cfg.provider, cfg.model, cfg.base_url)
    ctx = migrate(cfg, chat=chat)
    log.info("Migration finished", extra={"fields": {"nodes": ctx.executed}})
    return EXIT_OK
