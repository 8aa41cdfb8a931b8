"""Read the source (a T-SQL script or a live SQL Server) into the workspace's metadata.json.

Writes ``DIR/metadata.json`` and ``DIR/sampledata/<schema>.<table>.jsonl`` (see ``metadata``).

Outcome rules:

* A script with unreadable statements still yields metadata: each one is listed in
  ``problems`` and the step exits 0, because views, procedures and data that were read are
  worth migrating and the report shows what was lost.
* It is a permanent failure (exit 65) when nothing at all could be read (no table, view,
  procedure or function), or when a ``CREATE TABLE`` could not be read: a missing table would
  silently drop its data and break every object that uses it. Then the document is written as
  ``metadata.failed.json`` for diagnosis, and any older ``metadata.json`` is removed so a later
  step cannot run on stale input.
* An unreachable or refusing server is retryable (exit 75); a login the server rejects or a
  database that does not exist is permanent.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from datamigrate_agent.errors import EXIT_OK, PermanentError
from datamigrate_agent.extract._select import Selection
from datamigrate_agent.metadata import (
    MetadataDocument,
    Problem,
    dump_metadata,
    write_sample_rows,
)

__all__ = ["add_arguments", "run", "write_workspace"]

log = logging.getLogger(__name__)

METADATA_FILE = "metadata.json"
FAILED_METADATA_FILE = "metadata.failed.json"
SAMPLE_DIR = "sampledata"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``extract`` options (see docs/architecture.md)."""
    parser.add_argument("--workspace", required=True, type=Path, help="output folder")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--script", type=Path, help="T-SQL script (.sql or .sql.gz)")
    source.add_argument("--server", help="SQL Server host")
    parser.add_argument("--port", type=int, default=1433)
    parser.add_argument("--database", help="database on the server (required with --server)")
    parser.add_argument("--schema", action="append", default=[], help="keep only this schema")
    parser.add_argument("--include", action="append", default=[], help="glob on schema.name")
    parser.add_argument("--exclude", action="append", default=[], help="glob on schema.name")
    encrypt = parser.add_mutually_exclusive_group()
    encrypt.add_argument("--encrypt", dest="encrypt", action="store_true", default=None)
    encrypt.add_argument("--no-encrypt", dest="encrypt", action="store_false")
    parser.add_argument("--trust-server-certificate", action="store_true")
    parser.add_argument(
        "--login-timeout", type=int, default=15, help="seconds to connect and log in"
    )
    parser.add_argument(
        "--sample-rows",
        type=int,
        default=1000,
        help="live source: rows read per table as sample data (0: none)",
    )


def run(args: argparse.Namespace) -> int:
    """Extract, write the workspace, log a summary."""
    selection = Selection(tuple(args.schema), tuple(args.include), tuple(args.exclude))
    workspace: Path = args.workspace
    if args.script is not None:
        doc, rows, fatal = _from_script(args.script, selection)
        complete = True
    else:
        doc, rows = _from_server(args, selection)
        fatal, complete = None, False
    if fatal is None and not _anything_read(doc):
        fatal = "nothing could be read from the source: no table, view, procedure or function"
    if fatal is not None:
        write_workspace(doc, rows, workspace, complete=complete, file_name=FAILED_METADATA_FILE)
        (workspace / METADATA_FILE).unlink(missing_ok=True)
        raise PermanentError(fatal, code="SourceUnreadable")
    write_workspace(doc, rows, workspace, complete=complete)
    _log_summary(doc, rows)
    return EXIT_OK


def _from_script(
    path: Path, selection: Selection
) -> tuple[MetadataDocument, dict[str, list[list[Any]]], str | None]:
    from datamigrate_agent.extract.script import read_script

    result = read_script(path, selection=selection)
    log.info("Read script", extra={"fields": {"script": str(path), **result.stats}})
    fatal = None
    if result.failed_tables:
        fatal = _failed_tables_message(result.failed_tables)
    return result.document, result.rows, fatal


def _failed_tables_message(problems: Sequence[Problem]) -> str:
    first = problems[0]
    more = f" (and {len(problems) - 1} more CREATE TABLE statements)" if len(problems) > 1 else ""
    return (
        f"CREATE TABLE in batch {first.batch} at line {first.line} could not be read: "
        f"{first.error}{more}"
    )


def _from_server(
    args: argparse.Namespace, selection: Selection
) -> tuple[MetadataDocument, dict[str, list[list[Any]]]]:
    from datamigrate_agent.extract import live

    if not args.database:
        raise PermanentError("--database is required with --server", code="InvalidArguments")
    options = live.ServerOptions(
        host=args.server,
        port=args.port,
        database=args.database,
        user=os.environ.get(live.USER_ENV, ""),
        password=os.environ.get(live.PASSWORD_ENV, ""),
        encrypt=args.encrypt,
        trust_server_certificate=args.trust_server_certificate,
        login_timeout=args.login_timeout,
    )
    return live.extract_server(options, selection=selection, sample_rows=args.sample_rows)


def _anything_read(doc: MetadataDocument) -> bool:
    return bool(doc.tables or doc.views or doc.procedures or doc.functions)


def write_workspace(
    doc: MetadataDocument,
    rows: dict[str, list[list[Any]]],
    workspace: Path,
    *,
    complete: bool,
    file_name: str = METADATA_FILE,
) -> Path:
    """Write the sample files (replacing old ones) and then the document; return its path."""
    workspace.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(workspace / SAMPLE_DIR, ignore_errors=True)
    for table in doc.tables:
        table_rows = rows.get(table.qualified_name.lower())
        if table_rows is not None:
            whole = complete or len(table_rows) >= (table.row_count or 0)
            table.sample_data = write_sample_rows(workspace, table, table_rows, complete=whole)
    path = workspace / file_name
    dump_metadata(doc, path)
    return path


def _log_summary(doc: MetadataDocument, rows: dict[str, list[list[Any]]]) -> None:
    fields = {
        "source": doc.source.kind,
        "tables": len(doc.tables),
        "views": len(doc.views),
        "procedures": len(doc.procedures),
        "functions": len(doc.functions),
        "triggers": len(doc.triggers),
        "sampleRows": sum(len(r) for r in rows.values()),
        "problems": len(doc.problems),
    }
    log.info("Extracted metadata", extra={"fields": fields})
