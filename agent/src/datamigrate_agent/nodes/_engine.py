"""The target engine the project is built on: a DuckDB file or a PostgreSQL database.

It holds the raw source tables (loaded from the extract step's sample data, typed with the
target's types) that the project's sources point at, and answers the evaluate node's queries.
"""

from __future__ import annotations

import decimal
import logging
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from datamigrate_agent.config import MigrateConfig
from datamigrate_agent.errors import PermanentError, RetryableError
from datamigrate_agent.metadata import HEX_VALUE_TYPES, MetadataDocument, Table, iter_sample_rows
from datamigrate_agent.nodes._names import quote
from datamigrate_agent.nodes._profiles import DUCKDB_PATH_ENV
from datamigrate_agent.nodes._sql import column_type
from datamigrate_agent.redact import mask_secret

__all__ = [
    "connect",
    "load_sources",
    "export_pg_env",
    "checksum_sql",
    "duckdb_path",
    "save_engine",
    "discard_scratch",
    "sweep_stale_scratch",
]

log = logging.getLogger(__name__)

PG_DSN_ENV = "DATAMIGRATE_PG_DSN"
_BATCH = 1000


def export_pg_env() -> dict[str, str]:
    """Connection parameters from ``DATAMIGRATE_PG_DSN`` (or the ``DATAMIGRATE_PG_*`` vars).

    The DSN is split into the variables the generated profiles.yml reads with ``env_var()``,
    so the password lives only in the environment, never in a file.
    """
    dsn = os.environ.get(PG_DSN_ENV)
    if dsn:
        url = urlparse(dsn)
        parts = {
            "HOST": url.hostname or "127.0.0.1", "PORT": str(url.port or 5432),
            "USER": unquote(url.username or "postgres"),
            "PASSWORD": unquote(url.password or ""), "DBNAME": url.path.lstrip("/") or "postgres",
        }  # fmt: skip
        for k, v in parts.items():
            os.environ.setdefault(f"DATAMIGRATE_PG_{k}", v)
    if not os.environ.get("DATAMIGRATE_PG_USER") or not os.environ.get("DATAMIGRATE_PG_DBNAME"):
        raise PermanentError(
            f"target postgres needs env {PG_DSN_ENV} (or DATAMIGRATE_PG_HOST, _PORT, _USER, "
            "_PASSWORD, _DBNAME)",
            code="NoPostgres",
        )
    keys = {"host": "HOST", "port": "PORT", "user": "USER", "password": "PASSWORD",
            "dbname": "DBNAME"}  # fmt: skip
    return {k: os.environ.get(f"DATAMIGRATE_PG_{v}", "") for k, v in keys.items()}


#: Paths this process put into DATAMIGRATE_DUCKDB_PATH (anything else there is the user's).
_OURS: set[str] = set()
#: Memory-backed scratch space for the build; it must have room for about this many times
#: the sample data, plus a margin.
_SCRATCH = Path("/dev/shm")
_SCRATCH_FACTOR, _SCRATCH_MARGIN = 4, 64 << 20
#: Workspace -> scratch folder made by this process.
_SCRATCH_DIRS: dict[str, str] = {}
#: Scratch folders are ``<prefix><pid namespace>-<pid>-<start ticks>-<random>``: the owner
#: process, so a later run can tell the folder of a killed one from a live one's.
_SCRATCH_PREFIX = "dm-agent-build-"
_OWNED = re.compile(rf"^{_SCRATCH_PREFIX}(?P<ns>\d+)-(?P<pid>\d+)-(?P<start>\d+)-")


def _sample_bytes(cfg: MigrateConfig) -> int:
    folder = cfg.metadata_path.parent / "sampledata"
    return sum(f.stat().st_size for f in folder.iterdir()) if folder.is_dir() else 0


def _scratch_path(cfg: MigrateConfig) -> str | None:
    # DuckDB commits every dbt statement with an fsync; on a busy disk that doubles the time
    # of a large build. The build runs on a memory-backed copy, saved to the workspace by
    # save_engine. No room there (small /dev/shm in a pod): build in the workspace directly.
    # The folder is this process's own: pods under the test pod runner share /dev/shm. Its
    # name records this process, so the next run removes it if this one is SIGKILLed.
    folder = _SCRATCH_DIRS.get(str(cfg.workspace))
    if folder and Path(folder).is_dir():
        return str(Path(folder) / "warehouse.duckdb")
    if not (_SCRATCH.is_dir() and os.access(_SCRATCH, os.W_OK)):
        return None
    sweep_stale_scratch()
    need = _SCRATCH_FACTOR * _sample_bytes(cfg) + _SCRATCH_MARGIN
    if shutil.disk_usage(_SCRATCH).free < need:
        return None
    owner = _owner_tag()
    prefix = f"{_SCRATCH_PREFIX}{owner}-" if owner else _SCRATCH_PREFIX
    folder = tempfile.mkdtemp(prefix=prefix, dir=_SCRATCH)
    _SCRATCH_DIRS[str(cfg.workspace)] = folder
    return str(Path(folder) / "warehouse.duckdb")


def _process_start(pid: int) -> int | None:
    """When ``pid`` started, in clock ticks since boot; None when no such process is seen."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[19])  # field 22 of proc(5); the list starts at field 3


def _owner_tag() -> str | None:
    """``<pid namespace>-<pid>-<start>`` of this process, None without /proc."""
    try:
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return None
    start = _process_start(os.getpid())
    return None if start is None else f"{namespace}-{os.getpid()}-{start}"


def sweep_stale_scratch() -> list[str]:
    """Remove the scratch folders whose agent process is gone (SIGKILL, OOM kill); their names.

    A folder is removed only when its name says which process made it, in this PID
    namespace, this user owns it, and no process with that PID and start time exists.
    Folders named otherwise (made by an older agent) are left alone.
    """
    owner = _owner_tag()
    if owner is None or not _SCRATCH.is_dir():
        return []
    namespace = owner.split("-", 1)[0]
    removed = []
    for folder in sorted(_SCRATCH.glob(f"{_SCRATCH_PREFIX}*")):
        match = _OWNED.match(folder.name)
        if match is None or match["ns"] != namespace or not _is_own_dir(folder):
            continue
        if _process_start(int(match["pid"])) == int(match["start"]):
            continue  # its owner is still running
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder.name)
    if removed:
        log.info("Removed stale scratch folders", extra={"fields": {"folders": removed}})
    return removed


def _is_own_dir(path: Path) -> bool:
    try:
        info = path.lstat()
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid()


def duckdb_path(cfg: MigrateConfig) -> str:
    """The DuckDB file the build uses (the user's env override, else a scratch copy or
    ``<workspace>/warehouse.duckdb``), exported for the profile's ``env_var()``."""
    env = os.environ.get(DUCKDB_PATH_ENV)
    if env and env not in _OURS:
        return env
    path = _scratch_path(cfg) or str(cfg.workspace / "warehouse.duckdb")
    os.environ[DUCKDB_PATH_ENV] = path
    _OURS.add(path)
    return path


def save_engine(cfg: MigrateConfig) -> None:
    """Move a scratch DuckDB file to ``<workspace>/warehouse.duckdb``, checkpointed."""
    folder = _SCRATCH_DIRS.pop(str(cfg.workspace), None)
    if cfg.target != "duckdb" or folder is None:
        return
    path = Path(folder) / "warehouse.duckdb"
    final = cfg.workspace / "warehouse.duckdb"
    if not path.exists():
        shutil.rmtree(folder, ignore_errors=True)
        return
    import duckdb

    con = duckdb.connect(str(path))
    con.execute("CHECKPOINT")
    con.close()
    tmp = final.with_name(".warehouse.duckdb.tmp")
    shutil.copyfile(path, tmp)
    os.replace(tmp, final)
    shutil.rmtree(folder, ignore_errors=True)
    if os.environ.get(DUCKDB_PATH_ENV) == str(path):
        os.environ.pop(DUCKDB_PATH_ENV, None)


def discard_scratch(cfg: MigrateConfig | None = None) -> None:
    """Remove this process's scratch folder of ``cfg``'s workspace (of every one: None).

    For a run that ends before ``save_engine``: a resumed run loads the raw tables again.
    """
    workspaces = [str(cfg.workspace)] if cfg else list(_SCRATCH_DIRS)
    for workspace in workspaces:
        folder = _SCRATCH_DIRS.pop(workspace, None)
        if folder is None:
            continue
        shutil.rmtree(folder, ignore_errors=True)
        path = str(Path(folder) / "warehouse.duckdb")
        _OURS.discard(path)
        if os.environ.get(DUCKDB_PATH_ENV) == path:
            os.environ.pop(DUCKDB_PATH_ENV, None)


@contextmanager
def connect(cfg: MigrateConfig) -> Iterator[Any]:
    """A DB-API connection to the target engine, closed on exit."""
    if cfg.target == "duckdb":
        import duckdb

        con = duckdb.connect(duckdb_path(cfg))
    elif cfg.target == "postgres":
        import psycopg2

        params = export_pg_env()
        try:
            con = psycopg2.connect(connect_timeout=10, **params)
        except psycopg2.OperationalError as e:
            detail = mask_secret(" ".join(str(e).split()), params["password"])
            raise RetryableError(
                f"PostgreSQL unreachable: {detail}", code="EngineUnreachable"
            ) from None
        con.autocommit = True
    else:
        raise ValueError(f"target {cfg.target} does not run here")
    try:
        yield con
    finally:
        con.close()


def _exec(con: Any, sql: str) -> None:
    cur = con.cursor()
    try:
        cur.execute(sql)
    finally:
        cur.close()


def _converter(table: Table) -> list[Any]:
    out = []
    for c in table.columns:
        if c.data_type in HEX_VALUE_TYPES:
            out.append(lambda v: None if v is None else bytes.fromhex(v))
        else:
            out.append(None)
    return out


def _rows(base: str, table: Table) -> Iterator[list[Any]]:
    conv = _converter(table)
    if all(f is None for f in conv):
        yield from iter_sample_rows(base, table)
        return
    for row in iter_sample_rows(base, table):
        yield [v if f is None else f(v) for f, v in zip(conv, row, strict=True)]


def _create_sql(table: Table, schema: str, target: str) -> str:
    cols = ", ".join(f"{quote(c.name, target)} {column_type(c, target)}" for c in table.columns)
    return f"create table {quote(schema, target)}.{quote(table.name, target)} ({cols})"


def _insert_batches(con: Any, cfg: MigrateConfig, sql: str, rows: Iterator[list[Any]]) -> int:
    count, batch = 0, []
    for row in rows:
        batch.append(row)
        if len(batch) >= _BATCH:
            count += _flush(con, cfg, sql, batch)
            batch = []
    return count + (_flush(con, cfg, sql, batch) if batch else 0)


def _flush(con: Any, cfg: MigrateConfig, sql: str, batch: list[list[Any]]) -> int:
    if cfg.target == "postgres":
        from psycopg2.extras import execute_values

        with con.cursor() as cur:
            execute_values(cur, sql, batch, page_size=_BATCH)
    else:
        # One multi-row VALUES statement per batch: DuckDB's executemany binds row by row,
        # which is about a hundred times slower.
        values = ",\n".join("(" + ", ".join(_literal(v) for v in row) + ")" for row in batch)
        con.execute(sql + values)
    return len(batch)


def _literal(v: Any) -> str:
    if v is None:
        return "NULL"
    if v is True or v is False:
        return "true" if v else "false"
    if isinstance(v, bytes):
        return f"from_hex('{v.hex()}')"
    if isinstance(v, int | float | decimal.Decimal):
        return str(v)
    return "'" + str(v).replace("'", "''") + "'"


def load_sources(cfg: MigrateConfig, doc: MetadataDocument, schemas: dict[str, str]) -> dict:
    """(Re)create every raw table in its ``raw_<source>`` schema and load its sample rows.

    ``schemas`` maps a SQL Server schema (lower case) to its raw schema in the target.
    Returns per table key the number of rows loaded, or the error that stopped it.
    """
    base = str(cfg.metadata_path.parent)
    loaded: dict[str, Any] = {}
    with connect(cfg) as con:
        for raw in sorted(set(schemas.values())):
            _exec(con, f"drop schema if exists {quote(raw, cfg.target)} cascade")
            _exec(con, f"create schema {quote(raw, cfg.target)}")
        for table in doc.tables:
            key = table.qualified_name.lower()
            loaded[key] = _load_one(con, cfg, base, table, schemas[table.schema_.lower()])
    return loaded


def _load_one(con: Any, cfg: MigrateConfig, base: str, table: Table, raw: str) -> Any:
    target = cfg.target
    try:
        _exec(con, _create_sql(table, raw, target))
        name = f"{quote(raw, target)}.{quote(table.name, target)}"
        if cfg.target == "postgres":
            sql = f"insert into {name} values %s"
        else:
            sql = f"insert into {name} values\n"
        return _insert_batches(con, cfg, sql, _rows(base, table))
    except PermanentError:
        raise
    except Exception as e:  # noqa: BLE001 - one table's load failure flags that table only
        log.warning(
            "Load failed",
            extra={"fields": {"object": table.qualified_name, "error": f"{type(e).__name__}: {e}"}},
        )
        return {"error": " ".join(f"{type(e).__name__}: {e}".split())[:500]}


def checksum_sql(relation: str, columns: list[str], target: str) -> str:
    """Row count, and per column a non-null count and an order-free hash sum."""
    parts = ["count(*)"]
    for c in columns:
        col = quote(c, target)
        if target == "postgres":
            parts += [f"count({col})", f"coalesce(sum(hashtext({col}::text)::bigint), 0)"]
        else:
            parts += [f"count({col})", f"coalesce(sum(hash(cast({col} as varchar))), 0)"]
    return f"select {', '.join(parts)} from {relation}"
