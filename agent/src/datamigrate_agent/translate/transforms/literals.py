"""Literals: N'...' is plain text on every target (all of them store Unicode)."""

from __future__ import annotations

from sqlglot import exp

from datamigrate_agent.translate._context import Context
from datamigrate_agent.translate.transforms._util import lit

__all__ = ["transform"]


def transform(tree: exp.Expression, ctx: Context) -> exp.Expression:
    """Replace N'...' literals with plain string literals."""
    for node in list(tree.find_all(exp.National)):
        node.replace(lit(node.name))
    return tree
