"""TOP n, TOP n WITH TIES, TOP n PERCENT, and SET ROWCOUNT.

Plain TOP n is LIMIT n. WITH TIES keeps every row tied with the n-th on the ORDER BY keys:
``QUALIFY RANK() OVER (ORDER BY ...) <= n``. PERCENT returns CEILING(n% of the rows):
``ROW_NUMBER() OVER (ORDER BY ...) <= CEIL(COUNT(*) OVER () * n / 100.0)`` (RANK with
WITH TIES). Targets without QUALIFY get the same filter in a wrapping query.
"""

from __future__ import annotations

from sqlglot import exp

from datamigrate_agent.translate._context import Context
from datamigrate_agent.translate.errors import TranslationError
from datamigrate_agent.translate.transforms._util import bottom_up, num

__all__ = ["transform"]

_RANK = "_dm_rank"
_COUNT = "_dm_count"


def transform(tree: exp.Expression, ctx: Context) -> exp.Expression:
    """Rewrite TOP ... WITH TIES / PERCENT; apply SET ROWCOUNT to the statement."""
    tree = _rowcount(tree, ctx)
    for select in bottom_up(tree, exp.Select):
        limit = select.args.get("limit")
        options = limit.args.get("limit_options") if isinstance(limit, exp.Limit) else None
        if options is None or not (options.args.get("with_ties") or options.args.get("percent")):
            continue
        new = _top(select, limit, options, ctx)
        if select is tree:
            tree = new
        elif new is not select:
            select.replace(new)
    return tree


def _rowcount(tree: exp.Expression, ctx: Context) -> exp.Expression:
    if not ctx.rowcount:
        return tree
    if isinstance(tree, (exp.Insert, exp.Update, exp.Delete, exp.Merge)):
        raise TranslationError(
            f"SET ROWCOUNT {ctx.rowcount} limits this {tree.key.upper()}; the target has no "
            "row limit for data changes"
        )
    if isinstance(tree, exp.Select):
        limit = tree.args.get("limit")
        if limit is None:
            tree.set("limit", exp.Limit(expression=num(ctx.rowcount)))
        elif limit.expression.is_int and limit.expression.to_py() > ctx.rowcount:
            limit.set("expression", num(ctx.rowcount))
    return tree


def _window_order(select: exp.Select) -> exp.Order | None:
    """ORDER BY keys usable inside OVER (): aliases and positions replaced by expressions."""
    order = select.args.get("order")
    if order is None:
        return None
    items = {i.alias.lower(): i.this for i in select.expressions if isinstance(i, exp.Alias)}
    out = order.copy()
    for ordered in out.expressions:
        key = ordered.this
        if isinstance(key, exp.Literal) and key.is_int:
            item = select.expressions[key.to_py() - 1]
            ordered.set("this", (item.this if isinstance(item, exp.Alias) else item).copy())
        elif isinstance(key, exp.Column) and not key.table and key.name.lower() in items:
            ordered.set("this", items[key.name.lower()].copy())
    return out


def _top(
    select: exp.Select, limit: exp.Limit, options: exp.Expression, ctx: Context
) -> exp.Expression:
    ties, percent = options.args.get("with_ties"), options.args.get("percent")
    n_value = limit.expression
    if percent and n_value.is_number and float(n_value.name) >= 100:
        select.set("limit", None)  # TOP 100 PERCENT (SSMS views): every row
        return select
    order = _window_order(select)
    if ties and order is None:
        raise TranslationError("TOP ... WITH TIES needs an ORDER BY")
    rank = exp.Window(this=exp.Rank() if ties else exp.RowNumber(), order=order)
    count = exp.Window(this=exp.Count(this=exp.Star()))
    n = limit.expression.copy()
    select.set("limit", None)
    if ctx.target.SUPPORTS_QUALIFY:
        bound = _bound(count, n) if percent else n
        select.set("qualify", exp.Qualify(this=exp.LTE(this=rank, expression=bound)))
        return select
    return _wrapped(select, rank, count if percent else None, n)


def _bound(count: exp.Expression, n: exp.Expression) -> exp.Expression:
    share = exp.Div(this=exp.Mul(this=count, expression=n), expression=exp.Literal.number("100.0"))
    return exp.Ceil(this=share)


def _wrapped(
    select: exp.Select, rank: exp.Expression, count: exp.Expression | None, n: exp.Expression
) -> exp.Expression:
    names = []
    for item in select.expressions:
        if isinstance(item, exp.Star) or (isinstance(item, exp.Column) and item.is_star):
            raise TranslationError("TOP WITH TIES/PERCENT over SELECT * needs named columns")
        names.append(item.alias_or_name)
    inner = select.copy()
    inner.set("order", None)
    inner.append("expressions", exp.alias_(rank, _RANK))
    bound: exp.Expression = n
    if count is not None:
        inner.append("expressions", exp.alias_(count, _COUNT))
        bound = _bound(exp.column(_COUNT), n)
    outer = exp.select(*[exp.column(name) for name in names]).from_(
        exp.Subquery(this=inner, alias=exp.TableAlias(this=exp.to_identifier("_dm_top")))
    )
    outer = outer.where(exp.LTE(this=exp.column(_RANK), expression=bound))
    return outer.order_by(exp.column(_RANK))
