"""A script view's output columns, when every one is a plain column of a known table or view.

A script declares no view columns, so they are derived from the query with sqlglot's T-SQL
parser: ``*``, ``t.*``, ``t.col`` and ``col [AS alias]`` resolve against the FROM and JOIN
sources; anything else (an expression, a subquery source, a CTE, a set operation) leaves the
columns unknown (None) rather than guessed. Outer joins make every column nullable.
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp

from datamigrate_agent.metadata import Column

__all__ = ["view_columns"]

Known = dict[str, list[Column]]


def _sources(
    select: exp.Select, default_schema: str, known: Known
) -> list[tuple[str, list[Column]]]:
    """``(alias, columns)`` of each FROM/JOIN source, in order; KeyError if one is unknown."""
    tables: list[exp.Expression] = []
    from_ = select.args.get("from_") or select.args.get("from")
    if from_ is not None:
        tables.append(from_.this)
    tables.extend(j.this for j in select.args.get("joins") or [])
    out = []
    for table in tables:
        if not isinstance(table, exp.Table) or not table.name:
            raise KeyError("not a table")
        key = f"{table.db or default_schema}.{table.name}".lower()
        out.append((table.alias_or_name.lower(), known[key]))
    return out


def _find(sources: list[tuple[str, list[Column]]], table: str, name: str) -> Column:
    low = name.lower()
    matches = [
        c for alias, cols in sources if not table or alias == table.lower()
        for c in cols if c.name.lower() == low
    ]  # fmt: skip
    if len(matches) != 1:
        raise KeyError(name)
    return matches[0]


def _projection(
    item: exp.Expression, sources: list[tuple[str, list[Column]]]
) -> list[tuple[str, Column]]:
    if isinstance(item, exp.Star):
        return [(c.name, c) for _, cols in sources for c in cols]
    if isinstance(item, exp.Column) and isinstance(item.this, exp.Star):
        cols = next(cols for alias, cols in sources if alias == item.table.lower())
        return [(c.name, c) for c in cols]
    if isinstance(item, exp.Alias) and isinstance(item.this, exp.Column):
        return [(item.alias, _find(sources, item.this.table, item.this.name))]
    if isinstance(item, exp.Column):
        return [(item.name, _find(sources, item.table, item.name))]
    raise KeyError("an expression")


def view_columns(query: str, default_schema: str, known: Known) -> list[Column] | None:
    """The view's columns, or None when any of them is not a plain column of a known source."""
    try:
        tree = sqlglot.parse_one(query, read="tsql")
    except (sqlglot.errors.ParseError, sqlglot.errors.TokenError, ValueError):
        return None
    if not isinstance(tree, exp.Select) or tree.args.get("with"):
        return None
    try:
        sources = _sources(tree, default_schema, known)
        pairs = [pair for item in tree.expressions for pair in _projection(item, sources)]
    except (KeyError, StopIteration):
        return None
    outer = any(j.side for j in tree.args.get("joins") or [])
    names = [name.lower() for name, _ in pairs]
    if not pairs or len(set(names)) != len(names):
        return None
    return [
        col.model_copy(
            update={
                "name": name, "ordinal": n, "nullable": col.nullable or outer, "identity": None,
                "default": None, "default_name": None, "computed": None,
                "computed_persisted": False, "rowguidcol": False, "description": None,
            }
        )
        for n, (name, col) in enumerate(pairs, 1)
    ]  # fmt: skip
