"""Recursive CTEs: T-SQL infers recursion, the targets need WITH RECURSIVE.

OPTION (MAXRECURSION n) is dropped: SQL Server stops with an error past the limit, so every
query that succeeds there returns the same rows without it.
"""

from __future__ import annotations

from sqlglot import exp

from datamigrate_agent.translate._context import Context

__all__ = ["transform"]


def transform(tree: exp.Expression, ctx: Context) -> exp.Expression:
    """Mark WITH clauses RECURSIVE when one of their CTEs reads itself; drop OPTION (...)."""
    for query in tree.find_all(exp.Query):
        if query.args.get("options"):
            query.set("options", None)
    for with_ in tree.find_all(exp.With):
        for cte in with_.expressions:
            name = cte.alias.lower()
            if any(t.name.lower() == name and not t.db for t in cte.this.find_all(exp.Table)):
                with_.set("recursive", True)
                break
    return tree
