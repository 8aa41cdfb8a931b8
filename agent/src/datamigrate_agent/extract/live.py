"""Read a live SQL Server catalogue (``sys.*`` views) into metadata, through pymssql.

Every catalogue query is a constant in ``QUERIES``; user input never becomes SQL text (the only
identifiers in SQL, those of the sample query, are bracket-quoted by ``quote_name``, and the row
limit is a parameter). Query execution is one function, ``Runner``; ``read_catalogue`` only
assembles result sets, so tests drive it with recorded result sets and no server.

Catalogue values are normalised to the metadata's conventions: ``sys.columns.max_length`` is in
bytes, so ``nchar``/``nvarchar`` lengths are halved into characters, ``-1`` stays ``(max)``,
and the length of ``text``/``ntext``/``image`` (a 16-byte pointer) is dropped; alias types are
resolved to their base type with the alias in ``userType``; foreign-key columns are ordered by
``constraint_column_id`` and key columns by ``key_ordinal``.

The login comes from ``DATAMIGRATE_SOURCE_USER``/``DATAMIGRATE_SOURCE_PASSWORD`` and is never
logged. FreeTDS (inside pymssql's wheel) encrypts with ``--encrypt``; it verifies the server
certificate against the system CA bundle unless ``--trust-server-certificate`` is given.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, Literal
from uuid import UUID

from datamigrate_agent.errors import PermanentError, RetryableError
from datamigrate_agent.extract._catalogue_sql import QUERIES
from datamigrate_agent.extract._cursor import StatementError
from datamigrate_agent.extract._select import Selection, filter_document
from datamigrate_agent.metadata import (
    CHARACTER_TYPES,
    CheckConstraint,
    Column,
    ForeignKey,
    Identity,
    Index,
    KeyConstraint,
    MetadataDocument,
    Parameter,
    Problem,
    Routine,
    Source,
    Table,
    Trigger,
    UserType,
    View,
    utc_now,
)
from datamigrate_agent.redact import mask_secret

__all__ = [
    "PASSWORD_ENV",
    "QUERIES",
    "USER_ENV",
    "Query",
    "Runner",
    "ServerOptions",
    "extract_server",
    "quote_name",
    "read_catalogue",
]

log = logging.getLogger(__name__)

USER_ENV = "DATAMIGRATE_SOURCE_USER"
PASSWORD_ENV = "DATAMIGRATE_SOURCE_PASSWORD"
#: Where FreeTDS finds CA certificates to verify the server (Debian's bundle).
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
#: SQL Server error numbers that mean the input (login, database) is wrong, not the network.
PERMANENT_SERVER_ERRORS = frozenset({18456, 4060, 916, 18452})


@dataclass(frozen=True)
class ServerOptions:
    """How to reach the server; ``user`` and ``password`` (from a Secret) stay out of ``repr``."""

    host: str
    database: str
    port: int = 1433
    user: str = field(default="", repr=False)
    password: str = field(default="", repr=False)
    #: None: the driver's default (encrypt when the server requires it).
    encrypt: bool | None = None
    trust_server_certificate: bool = False
    login_timeout: int = 15
    query_timeout: int = 300


@dataclass(frozen=True)
class Query:
    """One catalogue query: a stable ``name`` (the key of recorded result sets), SQL, params."""

    name: str
    sql: str
    params: tuple[Any, ...] = ()


#: Runs a query and returns its rows as dicts keyed by column name.
Runner = Callable[[Query], list[dict[str, Any]]]

_FUNCTION_KINDS: dict[str, Literal["scalar", "table", "inline"]] = {
    "FN": "scalar",
    "IF": "inline",
    "TF": "table",
}
_UNICODE_TYPES = frozenset({"nchar", "nvarchar"})
_NO_LENGTH_TYPES = frozenset({"text", "ntext", "image"})


def quote_name(name: str) -> str:
    """``[name]`` with ``]`` doubled, as T-SQL's QUOTENAME does."""
    return "[" + name.replace("]", "]]") + "]"


# === normalising catalogue values ===


def _shape(row: dict[str, Any]) -> dict[str, Any]:
    """dataType/maxLength/precision/scale/userType from a sys.columns-like row."""
    user_defined = bool(row.get("is_user_defined"))
    data_type = str(row.get("base_type_name") or row["type_name"]).lower()
    user_type = row["type_name"] if user_defined else None
    if row["type_name"].lower() == "sysname":
        data_type = "nvarchar"
    length: int | None = None
    if data_type in CHARACTER_TYPES or data_type in ("binary", "varbinary"):
        length = int(row["max_length"])
        if data_type in _UNICODE_TYPES and length != -1:
            length //= 2  # sys.columns counts bytes; nchar/nvarchar use two per char
    precision: int | None = None
    scale: int | None = None
    if data_type in ("decimal", "numeric"):
        precision, scale = int(row["precision"]), int(row["scale"])
    elif data_type in ("float", "real"):
        precision = int(row["precision"]) or (24 if data_type == "real" else 53)
    elif data_type in ("datetime2", "time", "datetimeoffset"):
        scale = int(row["scale"])
    if data_type in _NO_LENGTH_TYPES:
        length = None
    return {
        "data_type": data_type,
        "max_length": length,
        "precision": precision,
        "scale": scale,
        "user_type": user_type,
    }


def _action(desc: str | None) -> str:
    return (desc or "NO_ACTION").replace("_", " ")


def _by_object(rows: list[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        out.setdefault(int(row["object_id"]), []).append(row)
    return out


@dataclass
class _Catalogue:
    """The result sets of every query, indexed for assembly."""

    results: dict[str, list[dict[str, Any]]]

    def rows(self, name: str) -> list[dict[str, Any]]:
        return self.results.get(name, [])

    def by_object(self, name: str) -> dict[int, list[dict[str, Any]]]:
        return _by_object(self.rows(name))

    def by_column(self, name: str) -> dict[tuple[int, int], dict[str, Any]]:
        return {(int(r["object_id"]), int(r["column_id"])): r for r in self.rows(name)}


def _columns(cat: _Catalogue, object_id: int, parts: dict[str, Any]) -> list[Column]:
    identity = parts["identity"]
    computed = parts["computed"]
    defaults = parts["defaults"]
    cols = []
    for ordinal, row in enumerate(parts["columns"].get(object_id, []), 1):
        key = (object_id, int(row["column_id"]))
        ident = identity.get(key)
        comp = computed.get(key)
        default = defaults.get(key)
        cols.append(
            Column(
                name=row["name"], ordinal=ordinal, **_shape(row),
                nullable=bool(row["is_nullable"]),
                default=default["definition"] if default else None,
                default_name=default["name"] if default else None,
                identity=Identity(
                    seed=int(ident["seed_value"]), increment=int(ident["increment_value"])
                ) if ident else None,
                computed=comp["definition"] if comp else None,
                computed_persisted=bool(comp["is_persisted"]) if comp else False,
                collation=row.get("collation_name"), rowguidcol=bool(row.get("is_rowguidcol")),
                description=row.get("description"),
            )
        )  # fmt: skip
    return cols


def _keys(rows: list[dict[str, Any]]) -> tuple[KeyConstraint | None, list[KeyConstraint]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault(row["name"], []).append(row)
    primary = None
    uniques = []
    for name, members in grouped.items():
        members.sort(key=lambda r: int(r["key_ordinal"]))
        key = KeyConstraint(
            name=name,
            columns=[r["column_name"] for r in members],
            clustered=str(members[0]["type_desc"]).upper() == "CLUSTERED",
        )
        if str(members[0]["type"]).strip().upper() == "PK":
            primary = key
        else:
            uniques.append(key)
    return primary, uniques


def _foreign_keys(rows: list[dict[str, Any]]) -> list[ForeignKey]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault(row["name"], []).append(row)
    fks = []
    for name, members in grouped.items():
        members.sort(key=lambda r: int(r["constraint_column_id"]))
        first = members[0]
        fks.append(
            ForeignKey(
                name=name, columns=[r["column_name"] for r in members],
                ref_schema=first["ref_schema"], ref_table=first["ref_table"],
                ref_columns=[r["ref_column_name"] for r in members],
                on_delete=_action(first["delete_referential_action_desc"]),
                on_update=_action(first["update_referential_action_desc"]),
            )
        )  # fmt: skip
    return fks


def _grouped_index(rows: list[dict[str, Any]]) -> list[Index]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault(row["name"], []).append(row)
    out = []
    for name, members in grouped.items():
        members.sort(key=lambda r: int(r["key_ordinal"]))
        out.append(
            Index(
                name=name,
                columns=[r["column_name"] for r in members],
                unique=bool(members[0]["is_unique"]),
                clustered=str(members[0]["type_desc"]).upper() == "CLUSTERED",
            )
        )
    return out


def _tables(cat: _Catalogue) -> tuple[list[Table], dict[int, Table]]:
    parts: dict[str, Any] = {
        "columns": cat.by_object("columns"),
        "identity": cat.by_column("identity_columns"),
        "computed": cat.by_column("computed_columns"),
        "defaults": cat.by_column("default_constraints"),
    }
    keys = cat.by_object("key_constraints")
    fks = cat.by_object("foreign_keys")
    checks = cat.by_object("check_constraints")
    indexes = cat.by_object("indexes")
    counts = {int(r["object_id"]): int(r["row_count"]) for r in cat.rows("row_counts")}
    tables: list[Table] = []
    by_id: dict[int, Table] = {}
    for row in cat.rows("tables"):
        oid = int(row["object_id"])
        columns = _columns(cat, oid, parts)
        names = {int(c["column_id"]): c["name"] for c in parts["columns"].get(oid, [])}
        primary, uniques = _keys(keys.get(oid, []))
        table = Table(
            schema=row["schema_name"], name=row["name"], columns=columns, primary_key=primary,
            unique_keys=uniques, foreign_keys=_foreign_keys(fks.get(oid, [])),
            check_constraints=[
                CheckConstraint(
                    name=c["name"], expression=c["definition"],
                    column=names.get(int(c["parent_column_id"] or 0)),
                )
                for c in checks.get(oid, [])
            ],
            indexes=_grouped_index(indexes.get(oid, [])), row_count=counts.get(oid, 0),
            description=row.get("description"),
        )  # fmt: skip
        tables.append(table)
        by_id[oid] = table
    return tables, by_id


def _parameters(rows: list[dict[str, Any]]) -> tuple[list[Parameter], str | None]:
    params: list[Parameter] = []
    returns = None
    for row in rows:
        shape = _shape(row)
        if int(row["parameter_id"]) == 0:  # a scalar function's return value
            returns = _type_text(shape)
            continue
        shape.pop("user_type")
        params.append(
            Parameter(
                name=row["name"], ordinal=len(params) + 1, output=bool(row["is_output"]), **shape
            )
        )
    return params, returns


def _with_defaults(params: list[Parameter], definition: str, kind: str) -> list[Parameter]:
    """Parameter defaults, which the catalogue does not keep for T-SQL, read from the text."""
    from datamigrate_agent.extract import _modules
    from datamigrate_agent.extract._cursor import Cursor
    from datamigrate_agent.extract._tokens import tokenize_batches

    if not params:
        return params
    tokens = tokenize_batches(definition)[0].tokens
    cur = Cursor(tokens, 0, len(tokens), definition)
    parse = _modules.parse_procedure if kind == "P" else _modules.parse_function
    try:
        parsed = parse(cur, "dbo", {})
    except (StatementError, ValueError):
        return params  # a header the script reader cannot read: types still come from sys
    defaults = {p.name.lower(): p.default for p in parsed.parameters or []}
    return [p.model_copy(update={"default": defaults.get(p.name.lower())}) for p in params]


def _type_text(shape: dict[str, Any]) -> str:
    dtype = str(shape["data_type"])
    if shape["max_length"] is not None:
        return f"{dtype}({'max' if shape['max_length'] == -1 else shape['max_length']})"
    if dtype in ("decimal", "numeric"):
        return f"{dtype}({shape['precision']},{shape['scale']})"
    return dtype


def _modules(
    cat: _Catalogue, tables_by_id: dict[int, Table], problems: list[Problem]
) -> dict[str, list[Any]]:
    params = cat.by_object("parameters")
    deps: dict[int, list[str]] = {}
    for row in cat.rows("dependencies"):
        deps.setdefault(int(row["object_id"]), []).append(
            f"{row['ref_schema'] or 'dbo'}.{row['ref_name']}"
        )
    events = cat.by_object("trigger_events")
    view_columns = cat.by_object("columns")
    out: dict[str, list[Any]] = {"views": [], "procedures": [], "functions": [], "triggers": []}
    for row in cat.rows("modules"):
        oid = int(row["object_id"])
        qualified = f"{row['schema_name']}.{row['name']}"
        if row["definition"] is None:
            problems.append(
                Problem(
                    excerpt=qualified, object=qualified,
                    error="definition not readable (WITH ENCRYPTION, or no VIEW DEFINITION "
                    "permission for the login)",
                )
            )  # fmt: skip
            continue
        kind = str(row["type"]).strip().upper()
        common = {
            "schema": row["schema_name"], "name": row["name"], "definition": row["definition"],
        }  # fmt: skip
        dependencies = sorted(set(deps.get(oid, [])), key=deps.get(oid, []).index)
        if kind == "V":
            cols = _columns(cat, oid, {"columns": view_columns, "identity": {}, "computed": {},
                                       "defaults": {}})  # fmt: skip
            out["views"].append(
                View(**common, columns=cols or None, dependencies=dependencies,
                     description=row.get("description"))
            )  # fmt: skip
        elif kind == "TR":
            parent = tables_by_id.get(int(row["parent_object_id"] or 0))
            if parent is not None:
                out["triggers"].append(
                    Trigger(**common, table=parent.name,
                            events=[str(e["type_desc"]).upper() for e in events.get(oid, [])])
                )  # fmt: skip
        else:
            parameters, returns = _parameters(params.get(oid, []))
            parameters = _with_defaults(parameters, row["definition"], kind)
            out["procedures" if kind == "P" else "functions"].append(
                Routine(**common, kind=_FUNCTION_KINDS.get(kind, "procedure"),
                        parameters=parameters, returns=returns, dependencies=dependencies,
                        description=row.get("description"))
            )  # fmt: skip
    return out


def _user_types(cat: _Catalogue) -> list[UserType]:
    out = []
    for row in cat.rows("user_types"):
        shape = _shape({**row, "type_name": row["base_type_name"], "is_user_defined": False})
        out.append(
            UserType(
                schema=row["schema_name"], name=row["name"], base_type=shape["data_type"],
                max_length=shape["max_length"], precision=shape["precision"],
                scale=shape["scale"], nullable=bool(row["is_nullable"]),
            )
        )  # fmt: skip
    return out


def read_catalogue(
    run: Runner,
    *,
    source_name: str,
    database: str,
    selection: Selection | None = None,
    extracted_at: str | None = None,
) -> MetadataDocument:
    """Run every catalogue query through ``run`` and assemble the document."""
    results = {name: run(Query(name, sql)) for name, sql in QUERIES.items()}
    cat = _Catalogue(results)
    problems: list[Problem] = []
    tables, by_id = _tables(cat)
    modules = _modules(cat, by_id, problems)
    server = (cat.rows("server") or [{}])[0]
    doc = MetadataDocument(
        source=Source(
            kind="sqlserver", name=source_name, database=server.get("database_name") or database,
            extracted_at=extracted_at or utc_now(), server_version=server.get("version"),
        ),
        schemas=sorted({t.schema_ for t in tables} | {v.schema_ for v in modules["views"]}
                       | {r.schema_ for r in modules["procedures"] + modules["functions"]}),
        tables=tables, user_types=_user_types(cat), problems=problems,
        views=modules["views"], procedures=modules["procedures"],
        functions=modules["functions"], triggers=modules["triggers"],
    )  # fmt: skip
    return filter_document(doc, selection or Selection())


# === sample rows ===


def sample_query(table: Table, limit: int) -> Query:
    """``SELECT TOP (n)`` of every column, ordered by the primary key when there is one."""

    def q(name: str) -> str:
        return quote_name(name).replace("%", "%%")  # the driver %-formats the parameters

    columns = ", ".join(q(c.name) for c in table.columns)
    order = ""
    if table.primary_key is not None:
        order = " ORDER BY " + ", ".join(q(c) for c in table.primary_key.columns)
    sql = f"SELECT TOP (%s) {columns} FROM {q(table.schema_)}.{q(table.name)}" + order
    return Query(f"sample:{table.qualified_name}", sql, (limit,))


def json_value(value: Any) -> Any:
    """A driver value in the sample files' encoding (bytes stay bytes: the writer hexes them)."""
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    return value


def read_samples(run: Runner, doc: MetadataDocument, limit: int) -> dict[str, list[list[Any]]]:
    """Up to ``limit`` rows of every table; a table that fails is a problem, not a failure."""
    rows: dict[str, list[list[Any]]] = {}
    if limit <= 0:
        return rows
    for table in doc.tables:
        try:
            result = run(sample_query(table, limit))
        except RetryableError:
            raise
        except Exception as e:  # noqa: BLE001 - one unreadable table must not stop the others
            doc.problems.append(
                Problem(excerpt=table.qualified_name, object=table.qualified_name,
                        error=f"sample rows not read: {type(e).__name__}: {e}")
            )  # fmt: skip
            continue
        names = [c.name for c in table.columns]
        rows[table.qualified_name.lower()] = [[json_value(r.get(n)) for n in names] for r in result]
    return rows


# === the connection ===


@contextmanager
def _freetds_conf(options: ServerOptions) -> Iterator[None]:
    """Point FreeTDS at a config that verifies certificates, unless told to trust them."""
    if not options.encrypt or options.trust_server_certificate:
        yield
        return
    with tempfile.TemporaryDirectory(prefix="datamigrate-tds-") as tmp:
        conf = Path(tmp) / "freetds.conf"
        conf.write_text(
            f"[global]\n\tca file = {CA_BUNDLE}\n\tcheck certificate hostname = yes\n",
            encoding="utf-8",
        )
        previous = os.environ.get("FREETDSCONF")
        os.environ["FREETDSCONF"] = str(conf)
        try:
            yield
        finally:
            if previous is None:
                os.environ.pop("FREETDSCONF", None)
            else:
                os.environ["FREETDSCONF"] = previous


def _server_error_number(error: Exception) -> int | None:
    args = getattr(error, "args", ())
    if args and isinstance(args[0], tuple) and args[0] and isinstance(args[0][0], int):
        return int(args[0][0])
    return None


def _driver_detail(error: Exception, password: str) -> str:
    """The driver's message in one line, without DB-Lib's headers (and never the password)."""
    args = getattr(error, "args", ())
    raw = args[0][1] if args and isinstance(args[0], tuple) and len(args[0]) > 1 else args
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    lines: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("DB-Lib error message") and line not in lines:
            lines.append(line)
    detail = "; ".join(lines)[:300] or type(error).__name__
    return mask_secret(detail, password)


def connect(options: ServerOptions) -> Any:
    """A pymssql connection, or RetryableError (unreachable) / PermanentError (bad login)."""
    import pymssql

    where = f"{options.host}:{options.port}"
    encryption = None if options.encrypt is None else ("require" if options.encrypt else "off")
    try:
        with _freetds_conf(options):
            return pymssql.connect(
                server=options.host, port=str(options.port), user=options.user,
                password=options.password, database=options.database,
                login_timeout=options.login_timeout, timeout=options.query_timeout,
                as_dict=True, appname="datamigrate-extract", encryption=encryption,
                read_only=True,
            )  # fmt: skip
    except (pymssql.OperationalError, pymssql.InterfaceError) as e:
        number = _server_error_number(e)
        if number in PERMANENT_SERVER_ERRORS:
            raise PermanentError(
                f"SQL Server {where} refused the login or database {options.database!r} "
                f"(error {number})",
                code="SourceLoginFailed",
            ) from None
        raise RetryableError(
            f"cannot connect to SQL Server at {where} within {options.login_timeout} s: "
            + _driver_detail(e, options.password),
            code="SourceUnreachable",
        ) from None


def pymssql_runner(conn: Any) -> Runner:
    """A Runner over an open pymssql connection (``as_dict=True``)."""
    import pymssql

    def run(query: Query) -> list[dict[str, Any]]:
        try:
            with conn.cursor() as cursor:
                cursor.execute(query.sql, query.params or None)
                return list(cursor.fetchall())
        except pymssql.OperationalError as e:  # connection lost, timeout, deadlock victim
            raise RetryableError(
                f"query {query.name} failed: {_driver_detail(e, '')}", code="SourceQueryFailed"
            ) from None
        except pymssql.DatabaseError as e:  # permission denied, unknown object: the login's
            raise PermanentError(
                f"query {query.name} failed (does the login have VIEW DEFINITION?): "
                + _driver_detail(e, ""),
                code="SourceQueryFailed",
            ) from None

    return run


def extract_server(
    options: ServerOptions, *, selection: Selection, sample_rows: int
) -> tuple[MetadataDocument, dict[str, list[list[Any]]]]:
    """Connect, read the catalogue and the sample rows, close."""
    if not options.user:
        raise PermanentError(f"{USER_ENV} is not set", code="InvalidArguments")
    log.info(
        "Connecting to SQL Server",
        extra={"fields": {"server": f"{options.host}:{options.port}",
                          "database": options.database}},
    )  # fmt: skip
    conn = connect(options)
    try:
        run = pymssql_runner(conn)
        doc = read_catalogue(
            run, source_name=f"{options.host}:{options.port}", database=options.database,
            selection=selection,
        )  # fmt: skip
        rows = read_samples(run, doc, sample_rows)
    finally:
        conn.close()
    return doc, rows
