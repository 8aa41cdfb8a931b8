"""Table DDL as SQL Server tools script it: CREATE TABLE, ALTER TABLE, CREATE INDEX, types.

Read with a small hand-written parser rather than sqlglot, because sqlglot's T-SQL dialect
raises on much of what SSMS and the sample scripts emit (``ROWGUIDCOL``, inline
``CONSTRAINT pk PRIMARY KEY CLUSTERED`` on a column, ``sp_addtype`` types, quoted type names
like ``"int"``); the grammar of a table definition is small and closed, so reading it directly
is both exact and fast. Expressions (defaults, CHECK, computed columns) are kept as the
script's text.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from datamigrate_agent.extract._cursor import Cursor, StatementError
from datamigrate_agent.extract._types import parse_type, resolve_type, split_name
from datamigrate_agent.metadata import (
    CheckConstraint,
    Column,
    ForeignKey,
    Identity,
    Index,
    KeyConstraint,
    UserType,
)

__all__ = [
    "DdlContext",
    "TableBuilder",
    "parse_alter_table",
    "parse_create_index",
    "parse_create_table",
    "parse_create_type",
    "split_name",
    "user_type_from_addtype",
]


@dataclass
class TableBuilder:
    """A table being assembled from CREATE TABLE and later ALTER TABLE statements."""

    schema: str
    name: str
    columns: list[Column] = field(default_factory=list)
    primary_key: KeyConstraint | None = None
    unique_keys: list[KeyConstraint] = field(default_factory=list)
    foreign_keys: list[ForeignKey] = field(default_factory=list)
    checks: list[CheckConstraint] = field(default_factory=list)
    indexes: list[Index] = field(default_factory=list)

    def column(self, name: str) -> Column:
        """The column ``name`` (case-insensitive) or a StatementError."""
        low = name.lower()
        for col in self.columns:
            if col.name.lower() == low:
                return col
        raise StatementError(f"table {self.schema}.{self.name} has no column {name}")

    def add_column(self, col: Column) -> None:
        """Append ``col`` with the next ordinal."""
        if any(c.name.lower() == col.name.lower() for c in self.columns):
            raise StatementError(f"column {col.name} defined twice")
        col.ordinal = len(self.columns) + 1
        self.columns.append(col)

    def set_primary_key(self, key: KeyConstraint) -> None:
        """Set the key and make its columns NOT NULL, as SQL Server does."""
        if self.primary_key is not None:
            raise StatementError(f"table {self.schema}.{self.name} has two primary keys")
        key.columns = [self.column(c).name for c in key.columns]
        for c in key.columns:
            self.column(c).nullable = False
        self.primary_key = key

    def drop_constraint(self, name: str) -> bool:
        """Remove the constraint called ``name``; True if there was one."""
        low = name.lower()
        if self.primary_key and (self.primary_key.name or "").lower() == low:
            self.primary_key = None
            return True
        for attr in ("unique_keys", "foreign_keys", "checks"):
            items = getattr(self, attr)
            kept = [x for x in items if (x.name or "").lower() != low]
            if len(kept) != len(items):
                setattr(self, attr, kept)
                return True
        for col in self.columns:
            if (col.default_name or "").lower() == low:
                col.default, col.default_name = None, None
                return True
        return False


@dataclass
class DdlContext:
    """What the DDL parsers need from the script reader."""

    user_types: dict[str, UserType]
    tables: dict[str, TableBuilder]
    default_schema: str = "dbo"

    def table(self, parts: list[str]) -> TableBuilder:
        """The known table called by ``parts``, or a StatementError."""
        schema, name = split_name(parts, self.default_schema)
        found = self.tables.get(f"{schema}.{name}".lower())
        if found is None:
            raise StatementError(f"table {schema}.{name} is not defined in the script")
        return found


# === column definitions ===

_CONSTRAINT_START = ("CONSTRAINT", "PRIMARY", "UNIQUE", "FOREIGN", "CHECK", "DEFAULT", "INDEX")


def _key_columns(cur: Cursor) -> list[str]:
    start, end = cur.group()
    cols = []
    for a, b in cur.split_commas(start, end):
        item = cur.sub(a, b)
        cols.append(item.ident())
        item.accept_word("ASC", "DESC")
        if not item.at_end():
            raise item.error("expected a column name")
    return cols


def _skip_index_options(cur: Cursor) -> None:
    """``WITH (...)``, ``WITH FILLFACTOR = n``, ``ON filegroup|scheme(col)``, and the like."""
    while True:
        if cur.accept_word("WITH"):
            if (tok := cur.peek()) is not None and tok.is_op("("):
                cur.group()
            else:
                cur.expect_word("FILLFACTOR")
                cur.expect_op("=")
                cur.next()
        elif cur.accept_word("ON", "TEXTIMAGE_ON", "FILESTREAM_ON"):
            cur.next()
            if (tok := cur.peek()) is not None and tok.is_op("("):
                cur.group()
        elif cur.accept_word("NOT"):
            cur.expect_word("FOR")
            cur.expect_word("REPLICATION")
        else:
            return


def _clustering(cur: Cursor) -> bool | None:
    got = cur.accept_word("CLUSTERED", "NONCLUSTERED")
    if got is None:
        return None
    cur.accept_word("HASH")
    return got == "CLUSTERED"


def _references(cur: Cursor, ctx: DdlContext) -> tuple[str, str, list[str] | None, str, str]:
    cur.expect_word("REFERENCES")
    schema, table = split_name(cur.name(), ctx.default_schema)
    ref_cols = _key_columns(cur) if (t := cur.peek()) is not None and t.is_op("(") else None
    actions = {"DELETE": "NO ACTION", "UPDATE": "NO ACTION"}
    while cur.accept_word("ON"):
        event = cur.expect_word("DELETE", "UPDATE")
        if cur.accept_word("NO"):
            cur.expect_word("ACTION")
            actions[event] = "NO ACTION"
        elif cur.accept_word("SET"):
            actions[event] = "SET " + cur.expect_word("NULL", "DEFAULT")
        else:
            actions[event] = cur.expect_word("CASCADE")
    if cur.accept_word("NOT"):
        cur.expect_word("FOR")
        cur.expect_word("REPLICATION")
    return schema, table, ref_cols, actions["DELETE"], actions["UPDATE"]


def _referenced_columns(ctx: DdlContext, schema: str, table: str, cols: list[str]) -> list[str]:
    """A REFERENCES without a column list means the referenced table's primary key."""
    target = ctx.tables.get(f"{schema}.{table}".lower())
    if target is None or target.primary_key is None:
        raise StatementError(f"REFERENCES {schema}.{table} without columns and no known key")
    if len(target.primary_key.columns) != len(cols):
        raise StatementError(f"REFERENCES {schema}.{table}: key has a different column count")
    return list(target.primary_key.columns)


def _default_expr(cur: Cursor) -> str:
    """The DEFAULT's expression: a parenthesised group, or a literal or function call."""
    start = cur.i
    if (tok := cur.peek()) is not None and tok.is_op("("):
        cur.group()
        return cur.source(start, cur.i)
    if cur.peek() is not None and (cur.peek().is_op("-") or cur.peek().is_op("+")):  # type: ignore[union-attr]
        cur.next()
    cur.next()
    if (tok := cur.peek()) is not None and tok.is_op("("):
        cur.group()
    return "(" + cur.source(start, cur.i) + ")"


def _check_expr(cur: Cursor) -> str:
    if cur.accept_word("NOT"):
        cur.expect_word("FOR")
        cur.expect_word("REPLICATION")
    start = cur.i
    cur.group()
    return cur.source(start, cur.i)


def _column_options(cur: Cursor, col: Column, table: TableBuilder, ctx: DdlContext) -> None:
    pending: str | None = None
    while not cur.at_end():
        if cur.accept_word("CONSTRAINT"):
            pending = cur.ident()
            continue
        if cur.accept_words("NOT", "NULL"):
            col.nullable = False
        elif cur.accept_word("NULL"):
            col.nullable = True
        elif cur.accept_word("IDENTITY"):
            col.identity = Identity()
            if (tok := cur.peek()) is not None and tok.is_op("("):
                start, end = cur.group()
                args = [cur.source(a, b) for a, b in cur.split_commas(start, end)]
                col.identity = Identity(seed=int(args[0]), increment=int(args[1]))
            col.nullable = False
        elif cur.accept_words("NOT", "FOR", "REPLICATION"):
            pass
        elif cur.accept_word("ROWGUIDCOL"):
            col.rowguidcol = True
        elif cur.accept_word("SPARSE", "FILESTREAM", "HIDDEN"):
            pass
        elif cur.accept_word("PERSISTED"):
            col.computed_persisted = True
        elif cur.accept_word("COLLATE"):
            col.collation = cur.ident()
        elif cur.accept_word("DEFAULT"):
            col.default, col.default_name = _default_expr(cur), pending
        elif cur.accept_words("PRIMARY", "KEY"):
            clustered = _clustering(cur)
            cols = _key_columns(cur) if (t := cur.peek()) is not None and t.is_op("(") else None
            _skip_index_options(cur)
            key = KeyConstraint(name=pending, columns=cols or [col.name], clustered=clustered)
            table.set_primary_key(key)
        elif cur.accept_word("UNIQUE"):
            clustered = _clustering(cur)
            _skip_index_options(cur)
            table.unique_keys.append(
                KeyConstraint(name=pending, columns=[col.name], clustered=clustered)
            )
        elif (tok := cur.peek()) is not None and tok.is_word("FOREIGN", "REFERENCES"):
            if cur.accept_word("FOREIGN"):
                cur.expect_word("KEY")
            schema, ref, ref_cols, on_delete, on_update = _references(cur, ctx)
            ref_cols = ref_cols or _referenced_columns(ctx, schema, ref, [col.name])
            table.foreign_keys.append(
                ForeignKey(
                    name=pending, columns=[col.name], ref_schema=schema, ref_table=ref,
                    ref_columns=ref_cols, on_delete=on_delete, on_update=on_update,
                )
            )  # fmt: skip
        elif cur.accept_word("CHECK"):
            table.checks.append(
                CheckConstraint(name=pending, expression=_check_expr(cur), column=col.name)
            )
        elif cur.accept_word("INDEX"):
            name = cur.ident()
            clustered = _clustering(cur)
            _skip_index_options(cur)
            table.indexes.append(Index(name=name, columns=[col.name], clustered=bool(clustered)))
        elif cur.accept_word("MASKED", "ENCRYPTED"):
            cur.expect_word("WITH")
            cur.group()
        elif cur.accept_words("GENERATED", "ALWAYS", "AS"):
            while cur.accept_word("ROW", "TRANSACTION_ID", "SEQUENCE_NUMBER", "START", "END"):
                pass
        else:
            raise cur.error(f"unexpected text in the definition of column {col.name}")
        pending = None


def _computed_expr(cur: Cursor) -> str:
    """``AS expr [PERSISTED [NOT NULL]]``: the expression runs to PERSISTED or a constraint."""
    start = cur.i
    depth = 0
    while not cur.at_end():
        tok = cur.peek()
        assert tok is not None
        if depth == 0 and tok.is_word("PERSISTED", "CONSTRAINT", "PRIMARY", "UNIQUE", "CHECK"):
            break
        if depth == 0 and tok.is_word("NOT") and cur.peek(1) is not None:
            break
        if tok.is_op("("):
            depth += 1
        elif tok.is_op(")"):
            depth -= 1
        cur.next()
    if start == cur.i:
        raise cur.error("expected a computed column expression")
    return cur.source(start, cur.i)


def parse_column(cur: Cursor, table: TableBuilder, ctx: DdlContext) -> None:
    """One column definition (``name type options`` or ``name AS expr``) added to ``table``."""
    name = cur.ident()
    if cur.accept_word("AS"):
        col = Column(name=name, ordinal=1, data_type="sql_variant", computed=_computed_expr(cur))
        table.add_column(col)
        _column_options(cur, col, table, ctx)
        return
    shape = resolve_type(parse_type(cur), ctx.user_types)
    col = Column(
        name=name,
        ordinal=1,
        data_type=shape.data_type,
        max_length=shape.max_length,
        precision=shape.precision,
        scale=shape.scale,
        nullable=True if shape.type_nullable is None else shape.type_nullable,
        user_type=shape.user_type,
    )
    table.add_column(col)
    _column_options(cur, col, table, ctx)


# === table constraints ===


def parse_table_constraint(cur: Cursor, table: TableBuilder, ctx: DdlContext) -> None:
    """A table-level constraint (or ``DEFAULT expr FOR col`` from ALTER TABLE ADD)."""
    name = cur.ident() if cur.accept_word("CONSTRAINT") else None
    if cur.accept_words("PRIMARY", "KEY"):
        clustered = _clustering(cur)
        cols = _key_columns(cur)
        _skip_index_options(cur)
        table.set_primary_key(KeyConstraint(name=name, columns=cols, clustered=clustered))
    elif cur.accept_word("UNIQUE"):
        clustered = _clustering(cur)
        cols = [table.column(c).name for c in _key_columns(cur)]
        _skip_index_options(cur)
        table.unique_keys.append(KeyConstraint(name=name, columns=cols, clustered=clustered))
    elif cur.accept_words("FOREIGN", "KEY"):
        cols = [table.column(c).name for c in _key_columns(cur)]
        schema, ref, ref_cols, on_delete, on_update = _references(cur, ctx)
        ref_cols = ref_cols or _referenced_columns(ctx, schema, ref, cols)
        table.foreign_keys.append(
            ForeignKey(
                name=name, columns=cols, ref_schema=schema, ref_table=ref, ref_columns=ref_cols,
                on_delete=on_delete, on_update=on_update,
            )
        )  # fmt: skip
    elif cur.accept_word("CHECK"):
        table.checks.append(CheckConstraint(name=name, expression=_check_expr(cur)))
    elif cur.accept_word("DEFAULT"):
        expr = _default_expr(cur)
        cur.expect_word("FOR")
        col = table.column(cur.ident())
        cur.accept_words("WITH", "VALUES")
        col.default, col.default_name = expr, name
    elif cur.accept_word("INDEX"):
        index_name = cur.ident()
        unique = cur.accept_word("UNIQUE") is not None
        clustered = _clustering(cur)
        cols = _key_columns(cur)
        table.indexes.append(
            Index(name=index_name, columns=cols, unique=unique, clustered=bool(clustered))
        )
    elif cur.accept_word("PERIOD"):
        cur.skip_rest()
    else:
        raise cur.error("expected a constraint")
    _skip_index_options(cur)
    if not cur.at_end():
        raise cur.error("unexpected text after the constraint")


def _table_item(cur: Cursor, table: TableBuilder, ctx: DdlContext) -> None:
    tok = cur.peek()
    if tok is not None and tok.kind == "word" and tok.upper in _CONSTRAINT_START:
        parse_table_constraint(cur, table, ctx)
    elif tok is not None and tok.is_word("PERIOD"):
        cur.skip_rest()
    else:
        parse_column(cur, table, ctx)
        if not cur.at_end():
            raise cur.error("unexpected text after the column definition")


def parse_create_table(cur: Cursor, ctx: DdlContext) -> TableBuilder | None:
    """``CREATE TABLE name (items) [ON fg] [TEXTIMAGE_ON fg] [WITH (...)]`` after CREATE TABLE.

    Returns None for a temporary table (``#name``), which is not part of the schema.
    """
    parts = cur.name()
    schema, name = split_name(parts, ctx.default_schema)
    if name.startswith("#"):
        cur.skip_rest()
        return None
    table = TableBuilder(schema, name)
    if cur.accept_word("AS"):
        raise cur.error("CREATE TABLE AS (FileTable, graph or CTAS) is not supported")
    start, end = cur.group()
    for a, b in cur.split_commas(start, end):
        _table_item(cur.sub(a, b), table, ctx)
    _skip_index_options(cur)
    cur.skip_rest()  # remaining table options (WITH (SYSTEM_VERSIONING ...), LOCK_ESCALATION)
    if not table.columns:
        raise StatementError(f"table {schema}.{name} has no columns")
    return table


# === ALTER TABLE, CREATE INDEX, types ===


def parse_alter_table(cur: Cursor, ctx: DdlContext) -> bool:
    """ALTER TABLE after ``ALTER TABLE``; False when the statement changes nothing we keep."""
    table = ctx.table(cur.name())
    if cur.accept_word("WITH"):
        cur.expect_word("CHECK", "NOCHECK")
    if cur.accept_word("CHECK", "NOCHECK", "ENABLE", "DISABLE", "SET", "SWITCH", "REBUILD"):
        cur.skip_rest()
        return False
    if cur.accept_word("ADD"):
        rest_start = cur.i
        for a, b in cur.split_commas(rest_start, cur.end):
            _table_item(cur.sub(a, b), table, ctx)
        cur.skip_rest()
        return True
    if cur.accept_word("DROP"):
        return _alter_drop(cur, table)
    if cur.accept_words("ALTER", "COLUMN"):
        col = table.column(cur.ident())
        shape = resolve_type(parse_type(cur), ctx.user_types)
        col.data_type, col.max_length = shape.data_type, shape.max_length
        col.precision, col.scale, col.user_type = shape.precision, shape.scale, shape.user_type
        if cur.accept_word("COLLATE"):
            col.collation = cur.ident()
        if cur.accept_words("NOT", "NULL"):
            col.nullable = False
        elif cur.accept_word("NULL"):
            col.nullable = True
        return True
    raise cur.error("unsupported ALTER TABLE action")


def _alter_drop(cur: Cursor, table: TableBuilder) -> bool:
    if cur.accept_word("COLUMN"):
        cur.accept_words("IF", "EXISTS")
        names = {cur.ident().lower()}
        while cur.accept_op(","):
            names.add(cur.ident().lower())
        table.columns = [c for c in table.columns if c.name.lower() not in names]
        for n, col in enumerate(table.columns, 1):
            col.ordinal = n
        return True
    cur.accept_word("CONSTRAINT")
    cur.accept_words("IF", "EXISTS")
    changed = table.drop_constraint(cur.ident())
    while cur.accept_op(","):
        cur.accept_word("CONSTRAINT")
        changed = table.drop_constraint(cur.ident()) or changed
    return changed


def parse_create_index(cur: Cursor, ctx: DdlContext, unique: bool, clustered: bool) -> None:
    """``INDEX name ON table (cols) ...`` after CREATE [UNIQUE] [[NON]CLUSTERED]."""
    cur.expect_word("INDEX")
    name = cur.ident()
    cur.expect_word("ON")
    table = ctx.table(cur.name())
    cols = [table.column(c).name for c in _key_columns(cur)]
    table.indexes.append(Index(name=name, columns=cols, unique=unique, clustered=clustered))
    cur.skip_rest()  # INCLUDE, WHERE, WITH, ON filegroup


def parse_create_type(cur: Cursor, ctx: DdlContext) -> UserType | None:
    """``CREATE TYPE name FROM base [NULL|NOT NULL]``; None for table types and CLR types."""
    schema, name = split_name(cur.name(), ctx.default_schema)
    if not cur.accept_word("FROM"):
        cur.skip_rest()
        return None
    shape = resolve_type(parse_type(cur), {})
    nullable = not cur.accept_words("NOT", "NULL")
    return UserType(
        schema=schema, name=name, base_type=shape.data_type, max_length=shape.max_length,
        precision=shape.precision, scale=shape.scale, nullable=nullable,
    )  # fmt: skip


def user_type_from_addtype(name: str, phys: str, null_type: str | None) -> UserType:
    """``sp_addtype name, 'base(args)', 'NULL'|'NOT NULL'`` as a UserType."""
    from datamigrate_agent.extract._tokens import tokenize_batches

    tokens = tokenize_batches(phys)[0].tokens
    cur = Cursor(tokens, 0, len(tokens), phys)
    shape = resolve_type(parse_type(cur), {})
    if not cur.at_end():
        raise cur.error(f"unexpected text in sp_addtype type {phys!r}")
    nullable = (null_type or "NULL").strip().upper() != "NOT NULL"
    return UserType(
        name=name, base_type=shape.data_type, max_length=shape.max_length,
        precision=shape.precision, scale=shape.scale, nullable=nullable,
    )  # fmt: skip
