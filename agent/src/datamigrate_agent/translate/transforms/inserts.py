"""INSERT: BIT values become booleans, explicit IDENTITY values are remembered."""

from __future__ import annotations

from sqlglot import exp

from datamigrate_agent.translate._context import Context
from datamigrate_agent.translate._typing import TEMPORAL
from datamigrate_agent.translate.transforms.bits import to_boolean
from datamigrate_agent.translate.transforms.literals import binary_literal, iso_datetime

_BINARY = {exp.DType.BINARY, exp.DType.VARBINARY, exp.DType.IMAGE, exp.DType.ROWVERSION}

__all__ = ["transform"]


def transform(tree: exp.Expression, ctx: Context) -> exp.Expression:
    """Rewrite ``INSERT ... VALUES`` rows against the target table's known columns."""
    if not isinstance(tree, exp.Insert):
        return tree
    target = tree.this
    table = target.this if isinstance(target, exp.Schema) else target
    columns = ctx.schema.columns(table) if isinstance(table, exp.Table) else None
    if not columns:
        return tree
    values = tree.expression
    if not isinstance(values, exp.Values):
        return tree
    identity = ctx.schema.identity(table)
    if isinstance(target, exp.Schema):
        names = [c.name.lower() for c in target.expressions]
    else:
        names = _implicit_columns(tree, table, columns, identity, values)
    for row in values.expressions:
        for name, value in zip(names, row.expressions, strict=False):
            _value(value, columns.get(name), ctx)
            if identity and name == identity.column.lower() and value.is_int:
                identity.highest = max(identity.highest or value.to_py(), value.to_py())
    return tree


def _implicit_columns(
    tree: exp.Insert,
    table: exp.Table,
    columns: dict[str, exp.DataType],
    identity: object,
    values: exp.Values,
) -> list[str]:
    """Without a column list SQL Server fills every column but the IDENTITY one."""
    names = list(columns)
    width = len(values.expressions[0].expressions) if values.expressions else 0
    skip = getattr(identity, "column", "").lower()
    if skip in names and width == len(names) - 1:
        names.remove(skip)
        tree.set(
            "this", exp.Schema(this=table.copy(), expressions=[exp.to_identifier(n) for n in names])
        )
    return names


def _value(value: exp.Expression, dtype: exp.DataType | None, ctx: Context) -> None:
    if dtype is None:
        return
    if dtype.this == exp.DType.BIT:
        value.replace(to_boolean(value))
    elif dtype.this in TEMPORAL and isinstance(value, (exp.Literal, exp.National)):
        iso = (
            iso_datetime(value.name) if value.is_string or isinstance(value, exp.National) else None
        )
        if iso is not None:
            value.replace(exp.Literal.string(iso))
    elif (
        dtype.this in {exp.DType.CHAR, exp.DType.NCHAR}
        and isinstance(value, (exp.Literal, exp.National))
        and (value.is_string or isinstance(value, exp.National))
    ):
        _pad(value, dtype)
    elif dtype.this in _BINARY and isinstance(value, exp.HexString):
        value.replace(binary_literal(value, ctx))


def _pad(value: exp.Expression, dtype: exp.DataType) -> None:
    """CHAR(n) stores n characters: SQL Server pads shorter values with spaces."""
    params = dtype.expressions
    if params and params[0].name.isdigit():
        value.replace(exp.Literal.string(value.name.ljust(int(params[0].name))))
