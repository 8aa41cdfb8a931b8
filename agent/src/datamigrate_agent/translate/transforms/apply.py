"""CROSS APPLY / OUTER APPLY over a subquery: CROSS JOIN LATERAL / LEFT JOIN LATERAL ON TRUE.

OUTER APPLY keeps the outer row when the subquery returns nothing (CROSS APPLY drops it).
APPLY over a table-valued function or an XML ``.nodes()`` call has no target equivalent.
"""

from __future__ import annotations

from sqlglot import exp

from datamigrate_agent.translate._context import Context
from datamigrate_agent.translate.errors import TranslationError

__all__ = ["transform"]


def transform(tree: exp.Expression, ctx: Context) -> exp.Expression:
    """Rewrite APPLY joins to LATERAL joins."""
    for join in list(tree.find_all(exp.Join)):
        lateral = join.this
        if not isinstance(lateral, exp.Lateral) or lateral.args.get("cross_apply") is None:
            continue
        cross = bool(lateral.args["cross_apply"])
        word = "CROSS APPLY" if cross else "OUTER APPLY"
        if not isinstance(lateral.this, exp.Subquery):
            raise TranslationError(
                f"{word} over {lateral.this.sql('tsql')[:60]} (a table-valued function) has "
                f"no {ctx.dialect} equivalent"
            )
        if not ctx.target.SUPPORTS_LATERAL:
            raise TranslationError(f"{word} needs a LATERAL join, which {ctx.dialect} lacks")
        new_lateral = exp.Lateral(this=lateral.this.copy(), alias=lateral.args.get("alias"))
        if cross:
            new = exp.Join(this=new_lateral, kind="CROSS")
        else:
            new = exp.Join(this=new_lateral, side="LEFT", on=exp.true())
        join.replace(new)
    return tree
