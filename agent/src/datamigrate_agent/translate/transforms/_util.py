"""Helpers the transforms share."""

from __future__ import annotations

from collections.abc import Iterator

from sqlglot import exp

from datamigrate_agent.translate._context import Context

__all__ = ["bottom_up", "case_insensitive", "func", "lit", "num", "tsql_type"]


def bottom_up(tree: exp.Expression, *types: type[exp.Expression]) -> Iterator[exp.Expression]:
    """Nodes of the given types, children before parents (safe to replace while iterating)."""
    return iter(reversed(list(tree.find_all(*types))))


def tsql_type(text: str) -> exp.DataType:
    """A T-SQL type node (mapped to the target later by the ``types`` transform)."""
    return exp.DataType.build(text, dialect="tsql")


def lit(value: str) -> exp.Literal:
    """A string literal."""
    return exp.Literal.string(value)


def num(value: int) -> exp.Literal:
    """A number literal."""
    return exp.Literal.number(value)


def func(name: str, *args: exp.Expression) -> exp.Expression:
    """A function call sqlglot knows by name (falls back to an anonymous call)."""
    return exp.func(name, *args)


def replace(node: exp.Expression, new: exp.Expression) -> exp.Expression:
    """Replace ``node`` in its tree and return the new node (the root when it had no parent)."""
    if node.parent is None:
        return new
    node.replace(new)
    return new


def case_insensitive(ctx: Context, *nodes: exp.Expression) -> bool:
    """Whether comparing ``nodes`` ignores case: a column's (or COLLATE's) collation wins
    over the database default in ``Options``, as SQL Server's collation precedence says."""
    for node in nodes:
        flag = (ctx.type_of(node) or exp.DataType.build("VARCHAR")).meta.get("case_sensitive")
        if flag is not None:
            return not flag
    return ctx.options.case_insensitive
