"""Data types: every T-SQL type node becomes the target type (``type_mapping``)."""

from __future__ import annotations

from sqlglot import exp

from datamigrate_agent.translate._context import Context
from datamigrate_agent.translate.errors import TranslationError
from datamigrate_agent.translate.type_mapping import map_data_type

__all__ = ["transform"]


def transform(tree: exp.Expression, ctx: Context) -> exp.Expression:
    """Map column definitions and CAST targets to the target's types."""
    for node in list(tree.find_all(exp.DataType)):
        if not isinstance(node.parent, (exp.ColumnDef, exp.Cast, exp.TryCast)):
            continue
        if (
            node.this == exp.DType.TEXT
            and node.parent.meta.get("dm") is None
            and isinstance(node.parent, exp.Cast)
            and node.parent.args.get("_type") is not None
        ):
            continue
        try:
            mapped = map_data_type(node, ctx.dialect, ctx.schema.aliases)
        except TranslationError:
            if node.this == exp.DType.USERDEFINED:
                raise
            continue
        node.replace(mapped)
    return tree
