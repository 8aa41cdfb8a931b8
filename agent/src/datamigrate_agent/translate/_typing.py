"""Coarse T-SQL type inference over a (partly rewritten) sqlglot tree.

Returns a T-SQL ``DataType`` or None when unknown. It understands both T-SQL nodes and the
nodes the transforms produce (``||``, ``//``, RTRIM), so a transform can ask about a child
that an earlier rewrite already replaced.
"""

from __future__ import annotations

from sqlglot import exp

from datamigrate_agent.translate._schema import Schema

__all__ = [
    "STRING",
    "collation_is_cs",
    "infer",
    "is_int",
    "is_money",
    "is_numeric",
    "is_string",
    "is_temporal",
    "precedence",
]

T = exp.DType
STRING = {T.CHAR, T.NCHAR, T.VARCHAR, T.NVARCHAR, T.TEXT, T.NAME}
INTS = {T.BIGINT, T.INT, T.SMALLINT, T.TINYINT, T.UTINYINT, T.BIT, T.BOOLEAN}
TEMPORAL = {T.DATE, T.DATETIME, T.DATETIME2, T.SMALLDATETIME, T.TIMESTAMP, T.TIMESTAMPTZ, T.TIME}
#: T-SQL data type precedence, highest first (docs: "Data type precedence (Transact-SQL)").
_PRECEDENCE = [
    T.TIMESTAMPTZ,
    T.DATETIME2,
    T.DATETIME,
    T.SMALLDATETIME,
    T.DATE,
    T.TIME,
    T.DOUBLE,
    T.FLOAT,
    T.DECIMAL,
    T.MONEY,
    T.SMALLMONEY,
    T.BIGINT,
    T.INT,
    T.SMALLINT,
    T.UTINYINT,
    T.TINYINT,
    T.BIT,
    T.BOOLEAN,
    T.UUID,
    T.TEXT,
    T.NVARCHAR,
    T.NCHAR,
    T.VARCHAR,
    T.CHAR,
    T.NAME,
]
_STRING_FUNCS = (
    exp.Upper,
    exp.Lower,
    exp.Trim,
    exp.Substring,
    exp.Left,
    exp.Right,
    exp.Replace,
    exp.Stuff,
    exp.Repeat,
    exp.DPipe,
    exp.Concat,
    exp.TimeToStr,
    exp.Reverse,
    exp.Initcap,
)
_INT_FUNCS = (
    exp.Length,
    exp.StrPosition,
    exp.DateDiff,
    exp.Count,
    exp.IntDiv,
    exp.Extract,
    exp.DayOfWeek,
    exp.Year,
    exp.Month,
    exp.Day,
)
_SAME_AS_ARG = (
    exp.Sum,
    exp.Max,
    exp.Min,
    exp.Abs,
    exp.Round,
    exp.Paren,
    exp.Neg,
    exp.Ceil,
    exp.Floor,
    exp.Coalesce,
    exp.Nullif,
    exp.AnyValue,
)


def is_string(dt: exp.DataType | None) -> bool:
    """Character types (char, varchar, nchar, nvarchar, text)."""
    return dt is not None and dt.this in STRING


def collation_is_cs(name: str) -> bool:
    """A case-sensitive SQL Server collation (``..._CS_AS``, ``..._BIN``, ``..._BIN2``)."""
    upper = name.upper()
    return "_CS" in upper or upper.endswith(("_BIN", "_BIN2"))


def is_int(dt: exp.DataType | None) -> bool:
    """Exact integer types, BIT included (T-SQL divides them with truncation)."""
    return dt is not None and dt.this in INTS


def is_money(dt: exp.DataType | None) -> bool:
    """MONEY or SMALLMONEY (exact, 4 decimals)."""
    return dt is not None and dt.this in {T.MONEY, T.SMALLMONEY}


def is_numeric(dt: exp.DataType | None) -> bool:
    """Any number type."""
    return dt is not None and (
        dt.this in INTS or dt.this in {T.DECIMAL, T.MONEY, T.SMALLMONEY, T.FLOAT, T.DOUBLE}
    )


def is_temporal(dt: exp.DataType | None) -> bool:
    """Date and time types."""
    return dt is not None and dt.this in TEMPORAL


def precedence(*types: exp.DataType | None) -> exp.DataType | None:
    """The type T-SQL converts mixed operands to (the one of highest precedence)."""
    known = [t for t in types if t is not None]
    if not known or any(t.this not in _PRECEDENCE for t in known):
        # A type outside the table (an alias type not declared to the translator, binary,
        # sql_variant) may outrank the others: ``int * ratio / 2`` must not divide as int.
        return None
    return min(known, key=lambda t: _PRECEDENCE.index(t.this))


def _literal(node: exp.Literal) -> exp.DataType:
    if node.is_string:
        return exp.DataType.build(f"VARCHAR({max(len(node.this), 1)})", dialect="tsql")
    text = node.this.lower()
    if "e" in text:
        return exp.DataType.build("FLOAT")
    if "." in text:
        whole, _, frac = text.partition(".")
        return exp.DataType.build(f"DECIMAL({len(whole) + len(frac)}, {len(frac)})")
    return exp.DataType.build("BIGINT" if abs(int(text)) > 2**31 - 1 else "INT")


def infer(node: exp.Expression | None, schema: Schema, _depth: int = 0) -> exp.DataType | None:
    """Return the T-SQL type of ``node``, or None when it cannot be known."""
    if node is None or _depth > 30:
        return None
    d = _depth + 1
    if isinstance(node, exp.Literal):
        return _literal(node)
    if isinstance(node, exp.National):
        return exp.DataType.build(f"NVARCHAR({max(len(node.this), 1)})", dialect="tsql")
    if isinstance(node, exp.Boolean):
        return exp.DataType.build("BIT", dialect="tsql")
    if isinstance(node, (exp.Cast, exp.TryCast)):
        return node.to
    if isinstance(node, exp.Convert):
        return node.this if isinstance(node.this, exp.DataType) else None
    if isinstance(node, exp.Column):
        return _column(node, schema, d)
    if isinstance(node, exp.Alias):
        return infer(node.this, schema, d)
    if isinstance(node, exp.Collate):
        inner = infer(node.this, schema, d) or exp.DataType.build("VARCHAR")
        typed = inner.copy()
        typed.meta["case_sensitive"] = collation_is_cs(node.expression.name)
        return typed
    if isinstance(node, exp.Coalesce) and node.args.get("is_null"):
        return infer(node.this, schema, d)
    if isinstance(node, (exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod)):
        return _arith(node, schema, d)
    if isinstance(node, _STRING_FUNCS):
        return exp.DataType.build("VARCHAR")
    if isinstance(node, _INT_FUNCS):
        return exp.DataType.build("INT")
    if isinstance(node, exp.Avg):
        inner = infer(node.this, schema, d)
        # AVG of smallmoney is money (docs: AVG return types).
        return exp.DataType.build("MONEY") if is_money(inner) else inner
    if isinstance(node, _SAME_AS_ARG):
        return precedence(*(infer(a, schema, d) for a in [node.this, *node.expressions]))
    if isinstance(node, exp.Case):
        branches = [i.args.get("true") for i in node.args.get("ifs", [])]
        return precedence(*(infer(b, schema, d) for b in [*branches, node.args.get("default")]))
    if isinstance(node, exp.If):
        return precedence(
            infer(node.args.get("true"), schema, d), infer(node.args.get("false"), schema, d)
        )
    if isinstance(node, (exp.CurrentTimestamp, exp.Localtimestamp, exp.CurrentDatetime)):
        return exp.DataType.build("DATETIME", dialect="tsql")
    if isinstance(node, exp.DateAdd):
        return infer(node.this, schema, d)
    if isinstance(node, exp.TimeStrToTime):
        return exp.DataType.build("DATETIME", dialect="tsql")
    if isinstance(node, exp.Subquery):
        return _projection_type(node.this, 0, schema, d)
    return None


def _arith(node: exp.Binary, schema: Schema, d: int) -> exp.DataType | None:
    left, right = infer(node.left, schema, d), infer(node.right, schema, d)
    if left is None or right is None:
        return None  # an unknown operand may outrank the known one
    if isinstance(node, exp.Add) and is_string(left) and is_string(right):
        return exp.DataType.build("VARCHAR")
    if isinstance(node, exp.Mod) and is_int(left) and is_int(right):
        return precedence(left, right)
    return precedence(left, right)


def _projection_type(
    query: exp.Expression, index: int | str, schema: Schema, d: int
) -> exp.DataType | None:
    while isinstance(query, (exp.Union, exp.Except, exp.Intersect)):
        query = query.left
    if isinstance(query, exp.Subquery):
        query = query.this
    if not isinstance(query, exp.Select):
        return None
    items = query.expressions
    if isinstance(index, int):
        return infer(items[index], schema, d) if index < len(items) else None
    for item in items:
        if item.alias_or_name.lower() == index:
            return infer(item, schema, d)
    for item in items:
        if isinstance(item, exp.Star) or (isinstance(item, exp.Column) and item.is_star):
            return _from_sources(query, index, None, schema, d)
    return None


def _column(col: exp.Column, schema: Schema, d: int) -> exp.DataType | None:
    name, qualifier = col.name.lower(), col.table.lower()
    select = col.find_ancestor(exp.Select)
    while select is not None:
        found = _from_sources(select, name, qualifier or None, schema, d)
        if found is not None:
            return found
        if not qualifier and _in_clause(col, select, ("order", "qualify")):
            for item in select.expressions:
                if isinstance(item, exp.Alias) and item.alias.lower() == name:
                    return infer(item.this, schema, d)
        select = select.find_ancestor(exp.Select)
    change = col.find_ancestor(exp.Update, exp.Delete)
    if change is not None and isinstance(change.this, exp.Table) and not qualifier:
        columns = schema.columns(change.this)
        if columns and name in columns:
            return columns[name]
    create = col.find_ancestor(exp.Create)
    if create is not None and isinstance(create.this, exp.Schema):
        for coldef in create.this.expressions:
            if isinstance(coldef, exp.ColumnDef) and coldef.name.lower() == name:
                return coldef.args.get("kind")
    return None


def _in_clause(node: exp.Expression, select: exp.Select, clauses: tuple[str, ...]) -> bool:
    while node.parent is not None and node.parent is not select:
        node = node.parent
    return node.arg_key in clauses


def _sources(select: exp.Select) -> list[exp.Expression]:
    from_ = select.args.get("from_") or select.args.get("from")
    items = [from_.this] if from_ is not None else []
    items += [j.this for j in select.args.get("joins") or []]
    return [leaf for item in items for leaf in _flatten(item)]


def _flatten(source: exp.Expression) -> list[exp.Expression]:
    """``(a JOIN b ON ...)`` in FROM is an unaliased subquery around joined tables."""
    if _join_group(source):
        # ``((a JOIN b ON ...) JOIN c ON ...)``: the outer parentheses carry c's JOIN.
        nested = _flatten(source.this)
        for join in source.args.get("joins") or []:
            nested += _flatten(join.this)
        return nested
    if isinstance(source, exp.Table) and source.args.get("joins"):
        bare = [source]
        for join in source.args["joins"]:
            bare += _flatten(join.this)
        return bare
    return [source]


def _join_group(source: exp.Expression) -> bool:
    """An unaliased subquery around joined tables (or around such a group), not a query."""
    if not isinstance(source, exp.Subquery) or source.alias:
        return False
    return not isinstance(source.this, exp.Query) or _join_group(source.this)


def _from_sources(
    select: exp.Select, name: str, qualifier: str | None, schema: Schema, d: int
) -> exp.DataType | None:
    for source in _sources(select):
        alias = source.alias.lower() if source.alias else ""
        if isinstance(source, exp.Table):
            if qualifier and qualifier not in {alias, source.name.lower()}:
                continue
            found = _table_column(source, name, schema, d)
        elif isinstance(source, (exp.Subquery, exp.Lateral)):
            if qualifier and qualifier != alias:
                continue
            found = _projection_type(source.this, name, schema, d)
        else:
            continue
        if found is not None:
            return found
    return None


def _table_column(table: exp.Table, name: str, schema: Schema, d: int) -> exp.DataType | None:
    cte = _find_cte(table)
    if cte is not None:
        return _projection_type(cte.this, name, schema, d)
    columns = schema.columns(table)
    return columns.get(name) if columns else None


def _find_cte(table: exp.Table) -> exp.CTE | None:
    if table.db:
        return None
    node: exp.Expression | None = table
    while node is not None:
        with_ = node.args.get("with_") or node.args.get("with") if node.args else None
        if isinstance(with_, exp.With):
            for cte in with_.expressions:
                if cte.alias.lower() == table.name.lower():
                    return cte
        node = node.parent
    return None
