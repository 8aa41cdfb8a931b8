"""Read a T-SQL script (DDL and INSERTs, as SQL Server tools write them) into metadata.

The script is split into GO batches and each batch into statements (no semicolons needed).
Statements that define the schema or its data are read: ``CREATE TABLE``, ``ALTER TABLE``
(constraints, defaults, columns), ``CREATE INDEX``, ``CREATE VIEW/PROCEDURE/FUNCTION/TRIGGER``,
``sp_addtype``/``CREATE TYPE``, ``CREATE SCHEMA``, ``sp_addextendedproperty`` descriptions,
``INSERT [INTO] ... VALUES`` and ``INSERT ... SELECT <literals> [UNION ALL SELECT ...]`` (kept as
sample rows), ``SET DATEFORMAT`` (how date strings read), ``USE``/``CREATE DATABASE`` (the
database name). Everything else a tool scripts (``SET`` options, ``IF EXISTS ... DROP``
preambles, ``exec sp_dboption``, ``raiserror``, ``CHECKPOINT``, ``SET IDENTITY_INSERT``,
``ALTER TABLE ... NOCHECK CONSTRAINT ALL``, ``GRANT``) changes no metadata and is skipped.

A recognised statement that cannot be read becomes a ``problems`` entry naming its batch, line
and error; reading goes on with the next statement, so one bad batch loses nothing else. So
does an ``UPDATE``/``DELETE``/``TRUNCATE``/``MERGE`` of a script table: the sample rows keep
what was inserted, and the problem says they may differ from what SQL Server would hold.
``INSERT`` into ``#temp`` tables and table variables is scratch work and is skipped.
Table DDL and INSERTs are read by this package's own parser (see ``_ddl``; sqlglot's T-SQL
dialect fails on much of it and is too slow for thousands of INSERTs); sqlglot reads view
queries for their dependencies.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from datamigrate_agent.errors import PermanentError
from datamigrate_agent.extract import _ddl, _modules
from datamigrate_agent.extract._cursor import Cursor, StatementError
from datamigrate_agent.extract._select import Selection, filter_document
from datamigrate_agent.extract._tokens import (
    Batch,
    LineIndex,
    Token,
    split_statements,
    tokenize_batches,
)
from datamigrate_agent.extract._values import (
    Raw,
    ValueContext,
    convert_value,
    parse_expression,
)
from datamigrate_agent.extract._view_columns import view_columns
from datamigrate_agent.metadata import (
    Column,
    MetadataDocument,
    Problem,
    Routine,
    Source,
    Table,
    Trigger,
    View,
    utc_now,
)

__all__ = ["ScriptResult", "decode_script", "read_script", "read_script_bytes", "read_script_text"]

log = logging.getLogger(__name__)

#: Characters of a statement kept in a problem's excerpt.
EXCERPT_CHARS = 160
#: A gzip stream starts so even when the file name (a ConfigMap key) lacks ``.gz``.
_GZIP_MAGIC = b"\x1f\x8b"
_SYSTEM_DATABASES = frozenset({"master", "tempdb", "model", "msdb"})


@dataclass
class ScriptResult:
    """What a script holds: the document (without sample file references) and the rows."""

    document: MetadataDocument
    #: ``schema.name`` (lower case) -> rows in table column order.
    rows: dict[str, list[list[Any]]]
    #: Counters for the summary log: batches, statements, read, skipped, rows, problems.
    stats: dict[str, int]
    #: Problems from CREATE TABLE statements (the CLI treats them as fatal).
    failed_tables: list[Problem] = field(default_factory=list)


def read_script(
    path: str | os.PathLike[str],
    *,
    selection: Selection | None = None,
    extracted_at: str | None = None,
) -> ScriptResult:
    """Read the script at ``path`` (gunzipped when the name ends in ``.gz`` or it is gzip).

    Raises:
        PermanentError: the file cannot be read or is not text.
    """
    p = Path(path)
    data = read_script_bytes(p)
    text = decode_script(data, p.name)
    name = p.name[:-3] if p.name.endswith(".gz") else p.name
    result = read_script_text(text, name, selection=selection, extracted_at=extracted_at)
    result.document.source.sha256 = hashlib.sha256(data).hexdigest()
    return result


def read_script_bytes(path: str | os.PathLike[str]) -> bytes:
    """The script's bytes, gunzipped when the name ends in ``.gz`` or they are gzip.

    Raises:
        PermanentError: the file cannot be read or is a broken gzip file.
    """
    p = Path(path)
    try:
        data = p.read_bytes()
        if p.name.endswith(".gz") or data[:2] == _GZIP_MAGIC:
            data = gzip.decompress(data)
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise PermanentError(f"cannot read script {p}: {e}", code="SourceUnreadable") from e
    return data


def decode_script(data: bytes, name: str) -> str:
    """UTF-8 (with or without BOM), UTF-16 with BOM (SSMS's default), else Windows-1252.

    Raises:
        PermanentError: the bytes hold NULs without a UTF-16 BOM (not a text file), or the
            decoded text holds a NUL character (its line is named).
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return _refuse_nul(data.decode("utf-16"), name)
    try:
        return _refuse_nul(data.decode("utf-8-sig"), name)
    except UnicodeDecodeError:
        if b"\x00" in data[:4096]:
            raise PermanentError(f"script {name} is not text", code="SourceUnreadable") from None
        return _refuse_nul(data.decode("cp1252", errors="replace"), name)


def _refuse_nul(text: str, name: str) -> str:
    """``text``, or PermanentError naming the first NUL's line: no SQL Server script holds one.

    Read on as whitespace, ``a<NUL>b`` would silently become two names and ``'x<NUL>y'`` a
    different string.
    """
    at = text.find("\x00")
    if at < 0:
        return text
    line = text.count("\n", 0, at) + 1
    column = at - (text.rfind("\n", 0, at) + 1) + 1
    raise PermanentError(
        f"script {name} line {line}: a NUL character at column {column}; a script is text "
        "(UTF-16 saved without a byte-order mark reads so)",
        code="SourceUnreadable",
    )


def read_script_text(
    text: str,
    name: str,
    *,
    selection: Selection | None = None,
    extracted_at: str | None = None,
) -> ScriptResult:
    """Read script ``text`` (``name`` is recorded as the source name)."""
    started = time.perf_counter()
    reader = _ScriptReader(text, extracted_at or utc_now())
    reader.read()
    doc, rows = reader.finish(name)
    if selection is not None and not selection.is_everything:
        doc = filter_document(doc, selection)
        kept = {t.qualified_name.lower() for t in doc.tables}
        rows = {k: v for k, v in rows.items() if k in kept}
    reader.stats["millis"] = int((time.perf_counter() - started) * 1000)
    return ScriptResult(doc, rows, reader.stats, reader.failed_tables)


_Module = TypeVar("_Module", View, Routine)


@dataclass
class _TableData:
    rows: list[list[Any]] = field(default_factory=list)
    #: Last identity value given or generated (None: none yet).
    identity_last: int | None = None
    defaults: dict[str, Raw | None] = field(default_factory=dict)


class _ScriptReader:
    """State while reading one script."""

    def __init__(self, text: str, extracted_at: str) -> None:
        self.text = text
        self.lines = LineIndex(text)
        self.extracted_at = extracted_at
        self.ctx = _ddl.DdlContext(user_types={}, tables={})
        self.data: dict[str, _TableData] = {}
        self.views: dict[str, View] = {}
        self.view_queries: dict[str, str] = {}
        self.procedures: dict[str, Routine] = {}
        self.functions: dict[str, Routine] = {}
        self.triggers: list[Trigger] = []
        self.schemas: set[str] = set()
        self.descriptions: dict[tuple[str, ...], str] = {}
        self.problems: list[Problem] = []
        self.failed_tables: list[Problem] = []
        self.database: str | None = None
        self.created_database: str | None = None
        now = datetime.fromisoformat(extracted_at.replace("Z", "+00:00")).replace(tzinfo=None)
        self.values = ValueContext(now=now)
        self.stats = dict.fromkeys(
            ("batches", "statements", "read", "skipped", "rows", "problems"), 0
        )
        self._batch: Batch | None = None

    # === driving ===

    def read(self) -> None:
        for batch in tokenize_batches(self.text):
            self._batch = batch
            self.stats["batches"] += 1
            if batch.error:
                self._problem(batch.start, batch.end, batch.error, None)
            for start, end in split_statements(batch.tokens):
                self.stats["statements"] += 1
                self._statement(Cursor(batch.tokens, start, end, self.text))

    def _statement(self, cur: Cursor) -> None:
        handler = self._handler(cur)
        if handler is None:
            self.stats["skipped"] += 1
            return
        first_index = cur.i
        first = cur.tokens[first_index]
        try:
            handler(cur)
            self.stats["read"] += 1
        except (StatementError, ValueError, ArithmeticError) as e:
            where = cur.tokens[cur.i - 1].start if cur.i > 0 else None
            offset = getattr(e, "offset", None) or where
            obj = _object_named(cur.sub(first_index, cur.end), self.ctx.default_schema)
            end = cur.tokens[cur.end - 1].end
            self._problem(first.start, end, str(e), offset, handler, obj)

    def _handler(self, cur: Cursor) -> Callable[[Cursor], None] | None:
        first = cur.peek()
        if first is None or first.kind != "word":
            return None
        second = cur.peek(1)
        word2 = second.upper if second is not None and second.kind == "word" else ""
        if first.upper == "CREATE":
            return self._create_handler(cur, word2)
        if first.upper == "ALTER":
            if word2 == "TABLE":
                return self._alter_table
            if word2 in ("VIEW", "PROC", "PROCEDURE", "FUNCTION", "TRIGGER"):
                return self._create_handler(cur, word2)
            return None
        if first.upper == "INSERT":
            return None if _targets_temporary(cur) else self._insert
        if first.upper in ("UPDATE", "DELETE", "TRUNCATE", "MERGE") and word2 != "STATISTICS":
            return self._data_change
        if first.upper in ("EXEC", "EXECUTE"):
            return self._exec
        if first.upper == "SET" and word2 == "DATEFORMAT":
            return self._set_dateformat
        if first.upper == "USE":
            return self._use
        return None

    def _create_handler(self, cur: Cursor, word2: str) -> Callable[[Cursor], None] | None:
        if word2 == "OR":
            third = cur.peek(3)
            word2 = third.upper if third is not None else ""
        handlers: dict[str, Callable[[Cursor], None]] = {
            "TABLE": self._create_table,
            "VIEW": self._create_view,
            "PROC": self._create_procedure,
            "PROCEDURE": self._create_procedure,
            "FUNCTION": self._create_function,
            "TRIGGER": self._create_trigger,
            "TYPE": self._create_type,
            "SCHEMA": self._create_schema,
            "DATABASE": self._create_database,
        }
        if word2 in handlers:
            return handlers[word2]
        if word2 in ("INDEX", "UNIQUE", "CLUSTERED", "NONCLUSTERED"):
            return self._create_index
        return None

    def _problem(
        self,
        start: int,
        end: int,
        error: str,
        offset: int | None,
        handler: Callable[[Cursor], None] | None = None,
        obj: str | None = None,
    ) -> None:
        batch = self._batch
        excerpt = " ".join(self.text[start : min(end, start + EXCERPT_CHARS * 2)].split())
        if offset is not None and self.lines.line(offset) != self.lines.line(start):
            error = f"{error} (line {self.lines.line(offset)})"
        problem = Problem(
            batch=batch.index if batch else None,
            line=self.lines.line(start),
            excerpt=excerpt[:EXCERPT_CHARS],
            error=error,
            object=obj,
        )
        self.problems.append(problem)
        self.stats["problems"] += 1
        if handler is not None and handler == self._create_table:
            self.failed_tables.append(problem)
        log.warning(
            "Statement not read",
            extra={"fields": {"batch": problem.batch, "line": problem.line, "error": error}},
        )

    # === schema statements ===

    def _create_table(self, cur: Cursor) -> None:
        cur.expect_word("CREATE")
        cur.expect_word("TABLE")
        table = _ddl.parse_create_table(cur, self.ctx)
        if table is None:
            return
        key = f"{table.schema}.{table.name}".lower()
        if key in self.ctx.tables:
            raise StatementError(f"table {table.schema}.{table.name} is created twice")
        self.ctx.tables[key] = table
        self.data[key] = _TableData()
        self.schemas.add(table.schema)

    def _alter_table(self, cur: Cursor) -> None:
        cur.expect_word("ALTER")
        cur.expect_word("TABLE")
        _ddl.parse_alter_table(cur, self.ctx)

    def _create_index(self, cur: Cursor) -> None:
        cur.expect_word("CREATE")
        unique = cur.accept_word("UNIQUE") is not None
        clustered = cur.accept_word("CLUSTERED", "NONCLUSTERED") == "CLUSTERED"
        if cur.accept_word("COLUMNSTORE"):
            cur.skip_rest()  # a storage format, not a key: nothing for the metadata
            return
        _ddl.parse_create_index(cur, self.ctx, unique, clustered)

    def _create_type(self, cur: Cursor) -> None:
        cur.expect_word("CREATE")
        cur.expect_word("TYPE")
        user_type = _ddl.parse_create_type(cur, self.ctx)
        if user_type is not None:
            self.ctx.user_types[user_type.name.lower()] = user_type

    def _create_schema(self, cur: Cursor) -> None:
        cur.expect_word("CREATE")
        cur.expect_word("SCHEMA")
        tok = cur.peek()
        if tok is not None and not tok.is_word("AUTHORIZATION"):
            self.schemas.add(cur.ident())

    def _create_database(self, cur: Cursor) -> None:
        cur.expect_word("CREATE")
        cur.expect_word("DATABASE")
        self.created_database = self.created_database or cur.ident()

    def _use(self, cur: Cursor) -> None:
        cur.expect_word("USE")
        name = cur.ident()
        if name.lower() not in _SYSTEM_DATABASES:
            self.database = name

    def _set_dateformat(self, cur: Cursor) -> None:
        cur.expect_word("SET")
        cur.expect_word("DATEFORMAT")
        tok = cur.next()
        fmt = tok.value.lower()
        if sorted(fmt) != ["d", "m", "y"]:
            raise StatementError(f"unknown DATEFORMAT {tok.value}", tok.start)
        self.values.dateformat = fmt

    def _exec(self, cur: Cursor) -> None:
        cur.next()
        if (tok := cur.peek()) is not None and tok.kind == "var":
            cur.next()
            cur.expect_op("=")  # EXEC @rc = proc
        proc = cur.name()[-1].lower()
        if proc not in ("sp_addtype", "sp_addextendedproperty", "sp_executesql"):
            return
        args = _exec_arguments(cur)
        if proc == "sp_addtype":
            self._addtype(args)
        elif proc == "sp_addextendedproperty":
            self._extended_property(args)
        else:
            self._dynamic(args.get("statement") or args.get("0") or "")

    def _dynamic(self, text: str) -> None:
        """``EXEC sp_executesql N'CREATE VIEW ...'``, which SSMS writes for "if not exists".

        The statements inside are read like the script's own; a failure inside is reported at
        the EXEC statement.
        """
        for batch in tokenize_batches(text):
            for start, end in split_statements(batch.tokens):
                inner = Cursor(batch.tokens, start, end, text)
                handler = self._handler(inner)
                if handler is not None:
                    handler(inner)

    def _addtype(self, args: dict[str, str]) -> None:
        name, phys = args.get("typename") or args.get("0"), args.get("phystype") or args.get("1")
        if not name or not phys:
            raise StatementError("sp_addtype needs a type name and a physical type")
        nulltype = args.get("nulltype") or args.get("2")
        user_type = _ddl.user_type_from_addtype(name, phys, nulltype)
        self.ctx.user_types[name.lower()] = user_type

    def _extended_property(self, args: dict[str, str]) -> None:
        if (args.get("name") or args.get("0") or "").lower() != "ms_description":
            return
        value = args.get("value") or args.get("1") or ""
        path = tuple(
            (args.get(key) or args.get(pos) or "").lower()
            for key, pos in (("level0name", "3"), ("level1name", "5"), ("level2name", "7"))
        )
        self.descriptions[path] = value

    # === modules ===

    def _create_view(self, cur: Cursor) -> None:
        view, query = _modules.parse_view(cur, self.ctx.default_schema)
        self.views[view.qualified_name.lower()] = view
        self.view_queries[view.qualified_name.lower()] = query
        self.schemas.add(view.schema_)

    def _create_procedure(self, cur: Cursor) -> None:
        proc = _modules.parse_procedure(cur, self.ctx.default_schema, self.ctx.user_types)
        self.procedures[proc.qualified_name.lower()] = proc
        self.schemas.add(proc.schema_)

    def _create_function(self, cur: Cursor) -> None:
        func = _modules.parse_function(cur, self.ctx.default_schema, self.ctx.user_types)
        self.functions[func.qualified_name.lower()] = func
        self.schemas.add(func.schema_)

    def _create_trigger(self, cur: Cursor) -> None:
        trigger = _modules.parse_trigger(cur, self.ctx.default_schema)
        if trigger is not None:
            self.triggers.append(trigger)

    # === data ===

    def _data_change(self, cur: Cursor) -> None:
        """UPDATE/DELETE/TRUNCATE/MERGE of a script table: its sample rows would differ."""
        verb = cur.next().upper
        if cur.accept_word("TOP"):
            cur.group()
            cur.accept_word("PERCENT")
        cur.accept_word("FROM", "INTO", "TABLE")
        tok = cur.peek()
        if tok is None or tok.kind not in ("word", "qid"):
            return
        schema, name = _ddl.split_name(cur.name(), self.ctx.default_schema)
        if f"{schema}.{name}".lower() in self.ctx.tables:
            raise StatementError(
                f"{verb} changes rows of {schema}.{name} after they were inserted; the sample "
                "data keeps the inserted rows, not the result"
            )

    def _insert(self, cur: Cursor) -> None:
        from datamigrate_agent.extract._inserts import read_insert

        table = read_insert(cur, self.ctx)
        key = f"{table.target.schema}.{table.target.name}".lower()
        data = self.data[key]
        self.values.table_key = key
        for raw_row in table.rows:
            data.rows.append(self._row(table.target, table.columns, raw_row, data))
        self.stats["rows"] += len(table.rows)

    def _row(
        self,
        target: _ddl.TableBuilder,
        given: list[Column],
        raw_row: list[Raw],
        data: _TableData,
    ) -> list[Any]:
        index = len(data.rows)
        by_name = {c.name.lower(): raw for c, raw in zip(given, raw_row, strict=True)}
        row: list[Any] = []
        for col in target.columns:
            raw = by_name.get(col.name.lower())
            if raw is not None and raw.kind == "default":
                raw = None
            if col.identity is not None:
                row.append(self._identity(col, raw, data, index))
            elif col.computed is not None:
                row.append(None)
            elif raw is not None:
                row.append(convert_value(raw, col, self.values, index))
            else:
                row.append(self._default(col, data, index))
        return row

    def _identity(self, col: Column, raw: Raw | None, data: _TableData, index: int) -> int:
        assert col.identity is not None
        step = col.identity.increment
        if raw is None:
            value = col.identity.seed if data.identity_last is None else data.identity_last + step
            data.identity_last = value
            return value
        value = int(convert_value(raw, col, self.values, index))
        last = data.identity_last
        if last is None or (value > last if step > 0 else value < last):
            data.identity_last = value
        return value

    def _default(self, col: Column, data: _TableData, index: int) -> Any:
        if col.default is None:
            return None
        key = col.name.lower()
        if key not in data.defaults:
            data.defaults[key] = _literal_default(col.default)
        raw = data.defaults[key]
        return None if raw is None else convert_value(raw, col, self.values, index)

    # === result ===

    def finish(self, name: str) -> tuple[MetadataDocument, dict[str, list[list[Any]]]]:
        tables: list[Table] = []
        rows: dict[str, list[list[Any]]] = {}
        for key, builder in self.ctx.tables.items():
            table_rows = _padded(self.data[key].rows, len(builder.columns))
            tables.append(self._table(builder, len(table_rows)))
            rows[key] = table_rows
        source = Source(
            kind="script",
            name=name,
            database=self.created_database or self.database,
            extracted_at=self.extracted_at,
        )
        known = {t.qualified_name.lower(): t.columns for t in tables}
        for key, view in self.views.items():
            columns = view_columns(self.view_queries[key], self.ctx.default_schema, known)
            if columns is not None:
                self.views[key] = view.model_copy(update={"columns": columns})
                known[key] = columns
        doc = MetadataDocument(
            source=source,
            schemas=sorted(self.schemas) or ["dbo"],
            tables=tables,
            views=self._described(self.views),
            procedures=self._described(self.procedures),
            functions=self._described(self.functions),
            triggers=self.triggers,
            user_types=list(self.ctx.user_types.values()),
            problems=self.problems,
        )
        return doc, rows

    def _described(self, objects: dict[str, _Module]) -> list[_Module]:
        """The objects, each with its MS_Description when the script set one."""
        out = []
        for obj in objects.values():
            text = self.descriptions.get((obj.schema_.lower(), obj.name.lower(), ""))
            out.append(obj.model_copy(update={"description": text}) if text else obj)
        return out

    def _table(self, b: _ddl.TableBuilder, row_count: int) -> Table:
        path = (b.schema.lower(), b.name.lower(), "")
        columns = [
            c.model_copy(update={"description": self.descriptions.get((*path[:2], c.name.lower()))})
            for c in b.columns
        ]
        return Table(
            schema=b.schema, name=b.name, columns=columns, primary_key=b.primary_key,
            unique_keys=b.unique_keys, foreign_keys=b.foreign_keys, check_constraints=b.checks,
            indexes=b.indexes, row_count=row_count, description=self.descriptions.get(path),
        )  # fmt: skip


def _object_named(cur: Cursor, default_schema: str) -> str | None:
    """``schema.name`` of the object a statement creates, alters or inserts into, if legible."""
    try:
        if cur.accept_word("INSERT", "UPDATE", "DELETE", "TRUNCATE", "MERGE"):
            cur.accept_word("INTO", "FROM", "TABLE")
        else:
            cur.next()  # CREATE or ALTER
            if cur.accept_word("OR"):
                cur.next()
            cur.accept_word("UNIQUE")
            cur.accept_word("CLUSTERED", "NONCLUSTERED")
            if cur.accept_word("INDEX"):
                cur.ident()
                cur.expect_word("ON")
            else:
                cur.next()  # TABLE, VIEW, PROCEDURE, ...
        schema, name = _ddl.split_name(cur.name(), default_schema)
    except StatementError:
        return None
    return f"{schema}.{name}"


def _targets_temporary(cur: Cursor) -> bool:
    """``INSERT [INTO] #temp`` or ``@table_variable``: scratch data, not the schema's."""
    j = 2 if (second := cur.peek(1)) is not None and second.is_word("INTO") else 1
    target = cur.peek(j)
    return target is not None and (target.kind == "var" or target.value.startswith("#"))


def _padded(rows: list[list[Any]], width: int) -> list[list[Any]]:
    """Rows read before an ALTER TABLE ADD column get NULL for it."""
    return [row + [None] * (width - len(row)) if len(row) < width else row for row in rows]


def _literal_default(text: str) -> Raw | None:
    """A default's value when it is a literal (or a clock/GUID function), else None."""
    batch = tokenize_batches(text)[0]
    cur = Cursor(batch.tokens, 0, len(batch.tokens), text)
    try:
        raw = parse_expression(cur)
    except StatementError:
        return None
    return raw if cur.at_end() else None


def _exec_arguments(cur: Cursor) -> dict[str, str]:
    """EXEC arguments by name (``@name = value``, key without @) and by position (``"0"``)."""
    args: dict[str, str] = {}
    for n, (a, b) in enumerate(cur.split_commas(cur.i, cur.end)):
        item = cur.sub(a, b)
        key = str(n)
        first: Token | None = item.peek()
        if first is not None and first.kind == "var" and (eq := item.peek(1)) and eq.is_op("="):
            item.next()
            item.next()
            key = first.value.lstrip("@").lower()
        tok = item.next()
        args[key] = tok.value
    cur.skip_rest()
    return args
