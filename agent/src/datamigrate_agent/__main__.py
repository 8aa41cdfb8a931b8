"""Command-line entry point: one subcommand per pipeline step.

The operator's Job pods and the local runner (``datamigrate run``) call exactly these commands.
Each subcommand lives in its own module with a ``add_arguments(parser)`` and a ``run(args)``
returning an exit status; see ``errors`` for what the statuses mean. A module whose stdout is
its output sets ``LOG_TO_STDERR = True`` and gets its log lines on stderr.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from datamigrate_agent.errors import EXIT_RETRYABLE, AgentError
from datamigrate_agent.log import setup_logging

__all__ = ["main"]

#: subcommand -> module implementing it (``add_arguments`` and ``run``).
SUBCOMMANDS = {
    "extract": "datamigrate_agent.extract.cli",
    "migrate": "datamigrate_agent.migrate",
    "publish": "datamigrate_agent.publish",
    "translate": "datamigrate_agent.translate.cli",
}

log = logging.getLogger(__name__)


def _parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="datamigrate_agent", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    # Import only the subcommand asked for: the graph's imports (langgraph, dbt) take seconds,
    # which extract and translate should not pay. Without one, load all for the help text.
    chosen = [a for a in argv[:1] if a in SUBCOMMANDS] or list(SUBCOMMANDS)
    for name in chosen:
        module = SUBCOMMANDS[name]
        mod = importlib.import_module(module)
        sub_parser = sub.add_parser(name, help=(mod.__doc__ or "").strip().splitlines()[0])
        mod.add_arguments(sub_parser)
        sub_parser.set_defaults(_module=mod)
    return parser


def _write_termination_message(message: str) -> None:
    # Kubernetes shows this file's content as the container's termination message.
    import os

    path = os.environ.get("DATAMIGRATE_TERMINATION_LOG", "/dev/termination-log")
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(message[:4000])
    except OSError:
        pass


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, run the subcommand, and map errors to exit statuses."""
    argv = sys.argv[1:] if argv is None else argv
    args = _parser(argv).parse_args(argv)
    to_stderr = getattr(args._module, "LOG_TO_STDERR", False)
    setup_logging(stream=sys.stderr if to_stderr else sys.stdout)
    try:
        return int(args._module.run(args))
    except AgentError as e:
        log.error("Step failed", extra={"fields": {"code": e.code, "error": str(e)}})
        _write_termination_message(f"{e.code}: {e}")
        return e.exit_code
    except Exception as e:  # noqa: BLE001 - the last line of defence, logged with its trace
        log.exception("Step crashed", extra={"fields": {"code": "Crashed"}})
        _write_termination_message(f"Crashed: {type(e).__name__}: {e}")
        return EXIT_RETRYABLE


if __name__ == "__main__":
    sys.exit(main())
