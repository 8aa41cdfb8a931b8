"""The rewrites, one module per semantic kind, in the order they run.

Each is ``transform(tree, ctx) -> tree``. Type-dependent rewrites (``+``, ``/``, comparisons,
ISNULL, BIT) run first, while every column still carries its T-SQL type; ``types`` maps
data types to the target, and ``tables`` rewrites table references last.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp

from datamigrate_agent.translate._context import Context
from datamigrate_agent.translate.transforms import (
    apply,
    arithmetic,
    bits,
    compare,
    concat,
    convert,
    cte,
    datetime,
    ddl,
    guards,
    inserts,
    isnull,
    keys,
    literals,
    strings,
    tables,
    top,
    types,
)

__all__ = ["TRANSFORMS"]

Transform = Callable[[exp.Expression, Context], exp.Expression]

TRANSFORMS: list[Transform] = [
    guards.transform,
    ddl.transform,
    keys.transform,
    inserts.transform,
    bits.transform,
    convert.transform,
    concat.transform,
    isnull.transform,
    arithmetic.transform,
    strings.transform,
    compare.transform,
    datetime.transform,
    top.transform,
    apply.transform,
    cte.transform,
    types.transform,
    literals.transform,
    tables.transform,
]
