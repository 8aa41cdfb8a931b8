"""``GROUP BY a, b WITH ROLLUP`` / ``WITH CUBE`` as ``GROUP BY ROLLUP (a, b)`` / ``CUBE (a, b)``.

T-SQL's old spelling applies the operator to every GROUP BY expression; the targets know only
the ISO form, which T-SQL accepts too and which passes through as written. Either way the
subtotal rows carry NULL in the rolled-up columns and ``GROUPING(col)`` is 1 there, as in SQL
Server (``compare`` keeps that when it groups strings case-insensitively). A target without
CUBE (``Target.SUPPORTS_CUBE``) refuses it rather than returning other rows.
"""

from __future__ import annotations

from sqlglot import exp

from datamigrate_agent.translate._context import Context
from datamigrate_agent.translate.errors import TranslationError

__all__ = ["rolled_up", "transform"]

_OPERATORS = {"rollup": exp.Rollup, "cube": exp.Cube}


def transform(tree: exp.Expression, ctx: Context) -> exp.Expression:
    """Move the GROUP BY keys into the ROLLUP or CUBE that ``WITH`` names."""
    for group in tree.find_all(exp.Group):
        for arg, operator in _OPERATORS.items():
            if group.args.get(arg):
                _iso(group, arg, operator)
    if tree.find(exp.Cube) is not None and not ctx.target.SUPPORTS_CUBE:
        raise TranslationError(
            f"GROUP BY ... CUBE: {ctx.dialect} has ROLLUP but no CUBE; rewrite the "
            "subtotals as a UNION ALL of the groupings wanted"
        )
    return tree


def _iso(group: exp.Group, arg: str, operator: type[exp.Expression]) -> None:
    keys = [k.pop() for k in list(group.expressions)]
    if not keys or any(isinstance(k, (exp.Rollup, exp.Cube, exp.GroupingSets)) for k in keys):
        raise TranslationError(
            f"GROUP BY ... WITH {arg.upper()} over no plain keys (or beside ROLLUP, CUBE or "
            "GROUPING SETS) is not valid T-SQL"
        )
    group.set(arg, None)
    group.set("expressions", [operator(expressions=keys)])


def rolled_up(group: exp.Group) -> list[exp.Expression]:
    """The keys a ROLLUP, CUBE or GROUPING SETS may leave out (NULL in subtotal rows)."""
    out: list[exp.Expression] = []
    for item in group.expressions:
        if isinstance(item, (exp.Rollup, exp.Cube, exp.GroupingSets)):
            out += list(item.find_all(exp.Column))
    return out
