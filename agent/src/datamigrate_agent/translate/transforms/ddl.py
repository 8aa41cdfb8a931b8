"""CREATE TABLE: remember the columns, carry IDENTITY, keys, defaults and computed columns.

IDENTITY(seed, increment) becomes, per ``Target.IDENTITY_STYLE``, a sequence with a
``nextval`` default (DuckDB has no identity columns), the target's own identity syntax, or
nothing (BigQuery). The sequence is named ``<table>_<column>_seq``; ``SET IDENTITY_INSERT ...
OFF`` moves it past the highest value inserted explicitly, as SQL Server moves its seed.
"""

from __future__ import annotations

from sqlglot import exp

from datamigrate_agent.translate._context import Context
from datamigrate_agent.translate._schema import Identity, table_key
from datamigrate_agent.translate.transforms._util import lit

__all__ = ["plain_key_columns", "transform"]

_KEY_CONSTRAINTS = (
    exp.PrimaryKeyColumnConstraint,
    exp.UniqueColumnConstraint,
    exp.CheckColumnConstraint,
    exp.Reference,
)


def transform(tree: exp.Expression, ctx: Context) -> exp.Expression:
    """Rewrite CREATE TABLE and record its columns in ``ctx.schema``."""
    if not (isinstance(tree, exp.Create) and str(tree.args.get("kind")).upper() == "TABLE"):
        return tree
    body = tree.this
    if not isinstance(body, exp.Schema):
        return tree
    table = body.this
    coldefs = [c for c in body.expressions if isinstance(c, exp.ColumnDef)]
    _resolve_aliases(coldefs, ctx)
    _computed_types(coldefs, ctx)
    ctx.schema.add(
        table_key(table), {c.name: c.args["kind"] for c in coldefs if c.args.get("kind")}
    )
    for coldef in coldefs:
        _identity(coldef, table, ctx)
        _bit_default(coldef)
    plain_key_columns(body)
    if not ctx.target.SUPPORTS_CONSTRAINTS:
        _drop_constraints(body)
    return tree


def _resolve_aliases(coldefs: list[exp.ColumnDef], ctx: Context) -> None:
    for coldef in coldefs:
        kind = coldef.args.get("kind")
        if isinstance(kind, exp.DataType) and kind.this == exp.DType.USERDEFINED:
            name = kind.sql("tsql").lower()
            if name in ctx.schema.aliases:
                coldef.set("kind", exp.DataType.build(ctx.schema.aliases[name], dialect="tsql"))


def _computed_types(coldefs: list[exp.ColumnDef], ctx: Context) -> None:
    """A computed column has no declared type; PostgreSQL needs one, so infer it."""
    for coldef in coldefs:
        computed = coldef.find(exp.ComputedColumnConstraint)
        if computed is not None and coldef.args.get("kind") is None:
            inferred = ctx.type_of(computed.this)
            if inferred is not None:
                coldef.set("kind", inferred.copy())


def _identity(coldef: exp.ColumnDef, table: exp.Table, ctx: Context) -> None:
    node = coldef.find(exp.GeneratedAsIdentityColumnConstraint)
    if node is None:
        return
    seed = int(node.args["start"].name) if node.args.get("start") else 1
    step = int(node.args["increment"].name) if node.args.get("increment") else 1
    sequence = f"{table.name}_{coldef.name}_seq".lower()
    ctx.schema.identities[table_key(table)] = Identity(coldef.name, seed, step, sequence)
    style = ctx.target.IDENTITY_STYLE
    if style == "native":
        return
    node.parent.pop()
    if style == "sequence":
        ctx.before.append(f"CREATE SEQUENCE {sequence} START WITH {seed} INCREMENT BY {step}")
        default = exp.func("nextval", lit(sequence))
        coldef.append(
            "constraints", exp.ColumnConstraint(kind=exp.DefaultColumnConstraint(this=default))
        )


def _bit_default(coldef: exp.ColumnDef) -> None:
    kind = coldef.args.get("kind")
    if not (isinstance(kind, exp.DataType) and kind.this == exp.DType.BIT):
        return
    for default in coldef.find_all(exp.DefaultColumnConstraint):
        value = default.this.unnest() if isinstance(default.this, exp.Paren) else default.this
        if isinstance(value, exp.Literal):
            flag = value.name.strip("'") not in {"0", "false", "FALSE"}
            default.set("this", exp.Boolean(this=flag))


def plain_key_columns(body: exp.Expression) -> None:
    """``PRIMARY KEY (id ASC)``: the order is an index detail; targets want bare columns."""
    for key in body.find_all(exp.PrimaryKey, exp.UniqueColumnConstraint, exp.IndexParameters):
        for ordered in list(key.find_all(exp.Ordered)):
            ordered.replace(ordered.this)


def _drop_constraints(body: exp.Schema) -> None:
    for node in list(body.expressions):
        if isinstance(node, exp.Constraint):
            node.pop()
    for constraint in list(body.find_all(exp.ColumnConstraint)):
        if isinstance(constraint.args.get("kind"), _KEY_CONSTRAINTS):
            constraint.pop()
