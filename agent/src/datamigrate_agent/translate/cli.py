"""Translate a T-SQL script into another dialect and print every statement in order.

``python -m datamigrate_agent translate [--from tsql] --to DIALECT FILE`` writes each target
statement followed by ``;`` and a newline to stdout, in script order, using the same
translation the migrate step uses. ``GO`` separators and statements without target SQL (SET
options, USE, CREATE DATABASE, sp_addtype) are not printed. A statement that cannot be
translated (procedural T-SQL such as IF, TRY ... CATCH, PRINT, RAISERROR, WAITFOR, SAVE
TRANSACTION, ERROR_MESSAGE(); T-SQL-only DML such as UPDATE ... FROM through the target's alias,
DELETE alias FROM, UPDATE/DELETE TOP (n), OUTPUT; MERGE ... WHEN NOT MATCHED BY SOURCE where the
target's release that runs it may be newer than the server) is reported on stderr with its line
number and reason; the others are still printed, and the exit status
is then 65 (permanent: the input must change). ``FILE`` may be
``-`` for stdin; a name ending in ``.gz`` (or gzip data) is gunzipped. The script is decoded
as the extract step decodes one: UTF-8 with or without BOM, UTF-16 with BOM (as SSMS saves),
else Windows-1252. A file that cannot be read (missing, a folder, not text, broken gzip) or
that holds a NUL character (the line names its line) is one plain line on stderr naming it and
the reason, and exit status 65; a bad option is the usage and exit status 2, as argparse does.
"""

from __future__ import annotations

import argparse
import logging
import sys

from datamigrate_agent.errors import EXIT_OK, EXIT_PERMANENT, PermanentError
from datamigrate_agent.extract.script import decode_script, read_script_bytes
from datamigrate_agent.translate.engine import translate_script
from datamigrate_agent.translate.targets import TARGETS, get_target

__all__ = ["LOG_TO_STDERR", "PROG", "add_arguments", "run"]

#: stdout carries only the SQL; warnings and the failure line go to stderr.
LOG_TO_STDERR = True

#: The command a user types: usage and error lines name it, not the agent's module.
PROG = "datamigrate translate"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare ``--from``, ``--to`` and ``FILE``; usage and errors name ``PROG``."""
    # Users reach this parser through the `datamigrate translate` wrapper, which passes its
    # arguments on unchecked, so argparse's messages are the ones they read.
    parser.prog = PROG
    parser.add_argument(
        "--from", dest="source", default="tsql", choices=["tsql"], help="source dialect (only tsql)"
    )
    parser.add_argument(
        "--to",
        dest="target",
        required=True,
        type=_target,
        metavar="TARGET",
        help=f"target dialect, one of: {', '.join(sorted(TARGETS))}",
    )
    parser.add_argument(
        "file", metavar="FILE", help="T-SQL script (.sql or .sql.gz), or - for stdin"
    )


def _target(name: str) -> str:
    """``--to``: a known target (any case), or a message that lists the valid ones."""
    if name.lower() in TARGETS:
        return name.lower()
    raise argparse.ArgumentTypeError(
        f"unknown target {name!r}; valid targets: {', '.join(sorted(TARGETS))}"
    )


def _read(name: str) -> str:
    """The script's text, decoded as extract decodes a script (UTF-8, UTF-16 BOM, cp1252).

    Raises:
        PermanentError: the file cannot be read, or is not text.
    """
    if name == "-":
        return decode_script(sys.stdin.buffer.read(), "<stdin>")
    return decode_script(read_script_bytes(name), name)


def _unreadable(name: str, error: PermanentError) -> str:
    """One line for a user: the file and the OS's reason, without Python's decorations."""
    cause = error.__cause__
    if isinstance(cause, OSError) and cause.strerror:
        return f"{PROG}: cannot read {name}: {cause.strerror}"
    if cause is not None:
        return f"{PROG}: cannot read {name}: {cause}"
    return f"{PROG}: {error}"


def run(args: argparse.Namespace) -> int:
    """Translate ``args.file`` and print it; return 0, or 65 on bad input."""
    # sqlglot warns on stderr for every statement it reads as a Command; the report below
    # already says which statements failed.
    logging.getLogger("sqlglot").setLevel(logging.ERROR)
    get_target(args.target)
    try:
        text = _read(args.file)
    except PermanentError as e:
        sys.stderr.write(_unreadable(args.file, e) + "\n")
        return EXIT_PERMANENT
    results = translate_script(text, args.target)
    failed = 0
    for result in results:
        for statement in result.statements:
            sys.stdout.write(f"{statement};\n")
        if result.error:
            failed += 1
            sys.stderr.write(f"line {result.line}: not translated: {result.error}\n")
    sys.stdout.flush()
    return EXIT_PERMANENT if failed else EXIT_OK
