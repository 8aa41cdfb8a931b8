"""String comparison as SQL Server does it: trailing spaces ignored, case ignored (CI).

``=``, ``<>``, ``<``, ``>``, IN, BETWEEN, simple CASE and NULLIF between strings compare
``LOWER(RTRIM(x, ' '))`` (literals are folded at translation time); LIKE becomes ILIKE (or
LOWER on both sides), ``LIKE '[0-9]%'`` character classes become an anchored regular expression;
``COUNT(DISTINCT s)``, ``GROUP BY s`` and ``SELECT DISTINCT s`` group the same way, keeping
one of the group's spellings (MIN); UNION removes duplicates the same way; ORDER BY a
string column sorts case-insensitively; window PARTITION BY and ORDER BY follow suit.
A string compared with a number is converted to the number's type, as T-SQL does. Case is
ignored per ``Options.case_insensitive`` unless a column's collation (in the schema) or an
explicit COLLATE says otherwise; COLLATE clauses are dropped once applied.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from sqlglot import exp

from datamigrate_agent.translate._context import Context
from datamigrate_agent.translate._typing import is_numeric, is_string, is_temporal
from datamigrate_agent.translate.transforms._util import case_insensitive, lit
from datamigrate_agent.translate.transforms.grouping import rolled_up
from datamigrate_agent.translate.transforms.literals import iso_datetime
from datamigrate_agent.translate.transforms.strings import rtrim

__all__ = ["normalise", "transform"]

#: How a grouped query shows a normalised key outside aggregates.
Spelling = Callable[[exp.Expression], exp.Expression]

_COMPARISONS = (exp.EQ, exp.NEQ, exp.LT, exp.LTE, exp.GT, exp.GTE)
_AGGREGATES = (exp.AggFunc,)


def normalise(node: exp.Expression, ctx: Context, ci: bool | None = None) -> exp.Expression:
    """``node`` as SQL Server compares it: trailing spaces off and, under CI, lower case."""
    if node.meta.get("dm_norm"):
        return node
    ci = case_insensitive(ctx, node) if ci is None else ci
    if isinstance(node, (exp.Literal, exp.National)) and (
        node.is_string or isinstance(node, exp.National)
    ):
        text = node.name.rstrip(" ") if ctx.options.pad_space else node.name
        out: exp.Expression = lit(text.lower() if ci else text)
    else:
        out = rtrim(node) if ctx.options.pad_space else node
        if ci:
            out = exp.Lower(this=out)
    out.meta["dm_norm"] = True
    return out


def _is_literal(node: exp.Expression) -> bool:
    return isinstance(node, (exp.Literal, exp.National, exp.Null))


def _stringy(ctx: Context, *nodes: exp.Expression) -> bool:
    """Strings on every known side, and a known string among the non-literal ones."""
    types = [ctx.type_of(n) for n in nodes]
    if not all(t is None or is_string(t) for t in types):
        return False
    if all(_is_literal(n) for n in nodes):
        return all(is_string(t) for t in types)
    return any(is_string(t) and not _is_literal(n) for n, t in zip(nodes, types, strict=True))


def _is_assignment(node: exp.Expression) -> bool:
    """``UPDATE t SET a = 'x'``: the ``=`` assigns, it does not compare."""
    return isinstance(node.parent, (exp.Update, exp.SetItem))


def transform(tree: exp.Expression, ctx: Context) -> exp.Expression:
    """Rewrite string comparisons, LIKE, and string grouping; drop COLLATE clauses."""
    tree = _unions(tree, ctx)
    for node in list(tree.find_all(*_COMPARISONS)):
        if not _is_assignment(node):
            _compare(node, ctx)
    for node in list(tree.find_all(exp.In)):
        _in(node, ctx)
    for node in list(tree.find_all(exp.Between)):
        subject = ctx.type_of(node.this)
        for key in ("low", "high"):
            node.set(key, _temporal_literal(node.args[key], subject))
        if _stringy(ctx, node.this, node.args["low"], node.args["high"]):
            ci = case_insensitive(ctx, node.this, node.args["low"], node.args["high"])
            for key in ("this", "low", "high"):
                node.set(key, normalise(node.args[key], ctx, ci))
    for node in list(tree.find_all(exp.Case)):
        _simple_case(node, ctx)
    for node in list(tree.find_all(exp.Nullif)):
        _nullif(node, ctx)
    for node in list(tree.find_all(exp.Like)):
        _like(node, ctx)
    for node in list(tree.find_all(exp.Count)):
        _count_distinct(node, ctx)
    for node in list(tree.find_all(exp.Window)):
        _window(node, ctx)
    for select in list(tree.find_all(exp.Select)):
        _group(select, ctx)
        _order(select, ctx)
    for node in list(tree.find_all(exp.Collate)):
        # The comparisons above carry its meaning; target collation names differ.
        node.replace(node.this)
    return tree


def _temporal_literal(node: exp.Expression, other: exp.DataType | None) -> exp.Expression:
    """A date string compared with a date/time value, in ISO form (SQL Server reads mdy)."""
    if (
        is_temporal(other)
        and isinstance(node, (exp.Literal, exp.National))
        and (node.is_string or isinstance(node, exp.National))
    ):
        iso = iso_datetime(node.name)
        if iso is not None:
            return exp.Cast(this=lit(iso), to=other.copy())
    return node


def _unions(tree: exp.Expression, ctx: Context) -> exp.Expression:
    for union in list(tree.find_all(exp.Union)):
        if isinstance(union.parent, exp.Union) or not _all_distinct(union):
            continue
        new = _union_as_group(union, ctx)
        if new is not None:
            if union is tree:
                return new
            union.replace(new)
    return tree


def _all_distinct(node: exp.Expression) -> bool:
    if isinstance(node, exp.Union):
        return bool(node.args.get("distinct")) and all(
            _all_distinct(side) for side in (node.left, node.right)
        )
    return True


def _union_as_group(union: exp.Union, ctx: Context) -> exp.Expression | None:
    """UNION removes duplicates the way ``=`` compares: group a UNION ALL the same way."""
    first: exp.Expression = union
    while isinstance(first, (exp.Union, exp.Subquery)):
        first = first.this if isinstance(first, exp.Subquery) else first.left
    if not isinstance(first, exp.Select):
        return None
    items = first.expressions
    names = [i.alias_or_name for i in items]
    if not names or any(isinstance(i, exp.Star) or not n for i, n in zip(items, names)):
        return None
    if len({n.lower() for n in names}) != len(names):
        return None
    strings = [is_string(ctx.type_of(i)) for i in items]
    if not any(strings):
        return None
    inner = union.copy()
    order = inner.args.get("order")
    inner.set("order", None)
    for node in [inner, *inner.find_all(exp.Union)]:
        node.set("distinct", False)
    outputs, keys = [], []
    for name, text in zip(names, strings):
        column = exp.column(name)
        outputs.append(exp.alias_(exp.Min(this=column), name) if text else column.copy())
        keys.append(normalise(column.copy(), ctx) if text else column.copy())
    source = exp.Subquery(this=inner, alias=exp.TableAlias(this=exp.to_identifier("_dm_union")))
    outer = exp.select(*outputs).from_(source).group_by(*keys)
    if order is not None:
        outer.set("order", order)
    return outer


def _compare(node: exp.Binary, ctx: Context) -> None:
    left, right = ctx.type_of(node.left), ctx.type_of(node.right)
    node.set("this", _temporal_literal(node.left, right))
    node.set("expression", _temporal_literal(node.right, left))
    if is_string(left) and is_numeric(right):
        node.set("this", exp.Cast(this=node.left, to=right.copy()))
    elif is_string(right) and is_numeric(left):
        node.set("expression", exp.Cast(this=node.right, to=left.copy()))
    elif _stringy(ctx, node.left, node.right):
        ci = case_insensitive(ctx, node.left, node.right)
        node.set("this", normalise(node.left, ctx, ci))
        node.set("expression", normalise(node.right, ctx, ci))


def _in(node: exp.In, ctx: Context) -> None:
    values = node.expressions
    query = node.args.get("query")
    if values and _stringy(ctx, node.this, *values):
        ci = case_insensitive(ctx, node.this, *values)
        node.set("this", normalise(node.this, ctx, ci))
        node.set("expressions", [normalise(v, ctx, ci) for v in values])
    elif query is not None and isinstance(query.unnest(), exp.Select):
        select = query.unnest()
        if len(select.expressions) == 1 and _stringy(ctx, node.this, select.expressions[0]):
            node.set("this", normalise(node.this, ctx))
            item = select.expressions[0]
            inner = item.this if isinstance(item, exp.Alias) else item
            inner.replace(normalise(inner.copy(), ctx))


def _simple_case(node: exp.Case, ctx: Context) -> None:
    """``CASE s WHEN 'a' THEN ...`` compares s with each value by ``=``."""
    operand = node.args.get("this")
    ifs = node.args.get("ifs") or []
    if operand is None or not _stringy(ctx, operand, *(i.this for i in ifs)):
        return
    ci = case_insensitive(ctx, operand, *(i.this for i in ifs))
    node.set("this", normalise(operand, ctx, ci))
    for branch in ifs:
        branch.set("this", normalise(branch.this, ctx, ci))


def _nullif(node: exp.Nullif, ctx: Context) -> None:
    """NULLIF(a, b) is NULL when a = b, so '  ' and '' (or 'A' and 'a' under CI) match."""
    if not _stringy(ctx, node.this, node.expression):
        return
    ci = case_insensitive(ctx, node.this, node.expression)
    same = exp.EQ(
        this=normalise(node.this.copy(), ctx, ci),
        expression=normalise(node.expression.copy(), ctx, ci),
    )
    node.replace(exp.Case(ifs=[exp.If(this=same, true=exp.Null())], default=node.this.copy()))


def _like(node: exp.Like, ctx: Context) -> None:
    pattern = node.expression
    if isinstance(pattern, (exp.Literal, exp.National)) and re.search(r"\[", pattern.name):
        node.replace(_regex_like(node.this, pattern.name, ctx))
        return
    if not case_insensitive(ctx, node.this):
        return
    if ctx.target.SUPPORTS_ILIKE:
        node.replace(exp.ILike(this=node.this, expression=pattern))
    else:
        node.set("this", exp.Lower(this=node.this))
        node.set("expression", exp.Lower(this=pattern))


def like_to_regex(pattern: str) -> str:
    """Translate a T-SQL LIKE pattern (``%``, ``_``, ``[a-z]``, ``[^a]``) to an anchored regex."""
    out, i = ["^"], 0
    while i < len(pattern):
        char = pattern[i]
        if char == "%":
            out.append(".*")
        elif char == "_":
            out.append(".")
        elif char == "[" and "]" in pattern[i + 1 :]:
            end = pattern.index("]", i + 2 if pattern[i + 1 : i + 2] == "]" else i + 1)
            body = pattern[i + 1 : end]
            body = "^" + body[1:] if body.startswith("^") else body
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end
        else:
            out.append(re.escape(char))
        i += 1
    return "".join(out) + "$"


def _regex_like(subject: exp.Expression, pattern: str, ctx: Context) -> exp.Expression:
    regex = like_to_regex(pattern)
    if case_insensitive(ctx, subject):
        subject, regex = exp.Lower(this=subject), regex.lower()
    return exp.RegexpLike(this=subject, expression=lit(regex))


def _window(node: exp.Window, ctx: Context) -> None:
    """OVER (PARTITION BY s ORDER BY s): partitions and order follow the collation too."""
    keys = node.args.get("partition_by") or []
    node.set("partition_by", [normalise(k, ctx) if is_string(ctx.type_of(k)) else k for k in keys])
    order = node.args.get("order")
    if order is None:
        return
    for ordered in order.expressions:
        key = ordered.this
        if (
            is_string(ctx.type_of(key))
            and case_insensitive(ctx, key)
            and not key.meta.get("dm_norm")
        ):
            ordered.set("this", exp.Lower(this=ordered.this.copy()))


def _count_distinct(node: exp.Count, ctx: Context) -> None:
    arg = node.this
    if isinstance(arg, exp.Distinct) and len(arg.expressions) == 1:
        value = arg.expressions[0]
        if is_string(ctx.type_of(value)):
            value.replace(normalise(value.copy(), ctx))


def _group(select: exp.Select, ctx: Context) -> None:
    group = select.args.get("group")
    if group is None and select.args.get("distinct") and not select.args["distinct"].args.get("on"):
        _distinct_to_group(select, ctx)
        return
    if group is None:
        return
    rolled = rolled_up(group)
    keys = [k for k in group.expressions if isinstance(k, exp.Column)] + rolled
    for key in [k for k in keys if is_string(ctx.type_of(k))]:
        norm = normalise(key.copy(), ctx)
        _grouping_args(select, key, norm)
        if any(key is r for r in rolled):
            # A subtotal row shows NULL for the key it rolls up, not one of its spellings.
            _pick_spelling(select, key, lambda col, norm=norm: _rolled_spelling(col, norm))
        else:
            _pick_spelling(select, key)
        key.replace(norm)


def _rolled_spelling(col: exp.Expression, norm: exp.Expression) -> exp.Expression:
    rolled = exp.EQ(this=exp.Grouping(expressions=[norm.copy()]), expression=exp.Literal.number(1))
    return exp.case().when(rolled, exp.null()).else_(_min(col))


def _grouping_args(select: exp.Select, key: exp.Column, norm: exp.Expression) -> None:
    """``GROUPING(key)`` names the grouping expression, which is now the normalised key."""
    for call in list(select.find_all(exp.Grouping, exp.GroupingId)):
        if call.find_ancestor(exp.Select) is select:
            for arg in [a for a in call.expressions if a == key]:
                arg.replace(norm.copy())


def _distinct_to_group(select: exp.Select, ctx: Context) -> None:
    items = select.expressions
    if any(isinstance(i, exp.Star) or i.find(exp.AggFunc) for i in items):
        return
    if not any(is_string(ctx.type_of(i)) for i in items):
        return
    select.set("distinct", None)
    keys, outputs = [], []
    for item in items:
        value = item.this if isinstance(item, exp.Alias) else item
        if is_string(ctx.type_of(value)):
            keys.append(normalise(value.copy(), ctx))
            outputs.append(exp.alias_(exp.Min(this=value.copy()), item.alias_or_name))
        else:
            keys.append(value.copy())
            outputs.append(item.copy())
    select.set("expressions", outputs)
    select.set("group", exp.Group(expressions=keys))


def _min(col: exp.Expression) -> exp.Expression:
    return exp.Min(this=col.copy())


def _pick_spelling(select: exp.Select, key: exp.Column, spell: Spelling = _min) -> None:
    """Outside aggregates, a normalised key shows one of its group's spellings (MIN)."""
    items = []
    for item in select.expressions:
        if item == key:
            items.append(exp.alias_(spell(item), key.name))
            continue
        _wrap_occurrences(item, key, spell)
        items.append(item)
    select.set("expressions", items)
    if select.args.get("having") is not None:
        _wrap_occurrences(select.args["having"], key, spell)
    aliases = {i.alias.lower() for i in items if isinstance(i, exp.Alias)}
    for ordered in select.args["order"].expressions if select.args.get("order") else []:
        named = ordered.this
        if isinstance(named, exp.Column) and not named.table and named.name.lower() in aliases:
            continue  # ORDER BY an output's name sorts by that output (see _order)
        _wrap_occurrences(ordered, key, spell)


def _wrap_occurrences(node: exp.Expression, key: exp.Column, spell: Spelling) -> None:
    for col in list(node.find_all(exp.Column)):
        if col == key and col.find_ancestor(exp.AggFunc) is None:
            col.replace(spell(col))


def _order(select: exp.Select, ctx: Context) -> None:
    """ORDER BY a string sorts case-insensitively (LOWER); aliases and positions stay."""
    order = select.args.get("order")
    if order is None or select.args.get("distinct"):
        return
    aliases = {i.alias.lower(): i.this for i in select.expressions if isinstance(i, exp.Alias)}
    grouped = select.args.get("group") is not None or any(
        i.find(exp.AggFunc) for i in select.expressions
    )
    for ordered in order.expressions:
        key = ordered.this
        if isinstance(key, exp.Literal) or key.meta.get("dm_norm"):
            continue
        if isinstance(key, exp.Column) and not key.table and key.name.lower() in aliases:
            # An output alias cannot sit inside an expression (PostgreSQL): sort by what it
            # names instead.
            named = aliases[key.name.lower()]
            if (
                is_string(ctx.type_of(named))
                and case_insensitive(ctx, named)
                and not isinstance(named, exp.Window)
            ):
                ordered.set("this", exp.Lower(this=named.copy()))
            continue
        if grouped and not isinstance(key, exp.AggFunc):
            continue  # a grouped query may only sort by its keys and aggregates
        if is_string(ctx.type_of(key)) and case_insensitive(ctx, key):
            ordered.set("this", exp.Lower(this=key.copy()))
