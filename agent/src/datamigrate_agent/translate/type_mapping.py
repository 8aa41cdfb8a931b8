"""SQL Server column types to target types.

``target_type`` works on catalogue facts (type name, length in characters, precision, scale);
``map_data_type`` rewrites a parsed sqlglot ``DataType`` node through the same table, so DDL,
CAST/CONVERT and staging-model casts all agree.
"""

from __future__ import annotations

from sqlglot import exp

from datamigrate_agent.translate.errors import TranslationError
from datamigrate_agent.translate.targets import get_target

__all__ = ["map_data_type", "sql_server_type_of", "target_type"]

#: sqlglot's parsed T-SQL type -> SQL Server type name (the keys of ``Target.TYPE_MAPPING``).
_DTYPE_NAMES = {
    exp.DType.BIGINT: "BIGINT",
    exp.DType.INT: "INT",
    exp.DType.SMALLINT: "SMALLINT",
    exp.DType.TINYINT: "TINYINT",
    exp.DType.UTINYINT: "TINYINT",
    exp.DType.BIT: "BIT",
    exp.DType.BOOLEAN: "BIT",
    exp.DType.DECIMAL: "DECIMAL",
    exp.DType.MONEY: "MONEY",
    exp.DType.SMALLMONEY: "SMALLMONEY",
    exp.DType.FLOAT: "FLOAT",
    exp.DType.DOUBLE: "FLOAT",
    exp.DType.DATE: "DATE",
    exp.DType.TIME: "TIME",
    exp.DType.DATETIME: "DATETIME",
    exp.DType.DATETIME2: "DATETIME2",
    exp.DType.SMALLDATETIME: "SMALLDATETIME",
    exp.DType.TIMESTAMP: "DATETIME2",
    exp.DType.TIMESTAMPTZ: "DATETIMEOFFSET",
    exp.DType.CHAR: "CHAR",
    exp.DType.NCHAR: "NCHAR",
    exp.DType.VARCHAR: "VARCHAR",
    exp.DType.NVARCHAR: "NVARCHAR",
    exp.DType.TEXT: "TEXT",
    exp.DType.XML: "XML",
    exp.DType.UUID: "UNIQUEIDENTIFIER",
    exp.DType.BINARY: "BINARY",
    exp.DType.VARBINARY: "VARBINARY",
    exp.DType.IMAGE: "IMAGE",
    exp.DType.ROWVERSION: "ROWVERSION",
    exp.DType.VARIANT: "SQL_VARIANT",
    exp.DType.GEOGRAPHY: "GEOGRAPHY",
    exp.DType.GEOMETRY: "GEOMETRY",
}

_STRING_TYPES = {"CHAR", "NCHAR", "VARCHAR", "NVARCHAR", "BINARY", "VARBINARY"}
_MAX_LENGTH = 8000


def _normalise(sql_server_type: str) -> tuple[str, int | None]:
    """Split ``'nvarchar(max)'`` style names; return the bare upper name and -1 for MAX."""
    name = sql_server_type.strip().strip("[]").upper()
    if "(" in name:
        name, _, rest = name.partition("(")
        if rest.rstrip(")").strip() == "MAX":
            return name.strip(), -1
        return name.strip(), None
    return name, None


def target_type(
    sql_server_type: str,
    max_length: int | None = None,
    precision: int | None = None,
    scale: int | None = None,
    target: str = "duckdb",
) -> str:
    """Return the ``target`` type for a SQL Server column type.

    Args:
        sql_server_type: the SQL Server type name (``nvarchar``, ``money``, ``bit`` ...); an
            alias type must be resolved to its base type first.
        max_length: length in characters for (n)char/(n)varchar, in bytes for binary types;
            -1 (or None with ``(max)`` in the name) means MAX.
        precision: precision for decimal/numeric and float(n), fractional digits for time types.
        scale: scale for decimal/numeric.
        target: a sqlglot dialect name (duckdb, postgres, snowflake, bigquery, databricks,
            redshift).

    Raises:
        TranslationError: for a type the target table does not know.
    """
    name, implied_length = _normalise(sql_server_type)
    length = implied_length if implied_length is not None else max_length
    mapping = get_target(target).TYPE_MAPPING
    if name in _STRING_TYPES and length is not None and (length < 0 or length > _MAX_LENGTH):
        name = "VARCHAR(MAX)" if name in {"VARCHAR", "NVARCHAR", "CHAR", "NCHAR"} else name
        length = None
    if name == "FLOAT" and precision is not None and precision <= 24:
        name = "REAL"
    if name not in mapping:
        raise TranslationError(f"no {target} type for SQL Server type {sql_server_type!r}")
    pattern = mapping[name]
    if name in {"DECIMAL", "NUMERIC"}:
        return _decimal(pattern, precision, scale, target)
    if "{n}" in pattern:
        return pattern.replace("({n})", f"({length})" if length else "")
    return pattern


def _decimal(pattern: str, precision: int | None, scale: int | None, target: str) -> str:
    p = precision if precision else 18
    s = scale if scale is not None else 0
    # BigQuery NUMERIC holds 29 integer digits and 9 decimals; BIGNUMERIC goes further.
    if target == "bigquery" and (s > 9 or p - s > 29):
        return f"BIGNUMERIC({p},{s})"
    return pattern.format(p=p, s=s)


def sql_server_type_of(data_type: exp.DataType) -> tuple[str, int | None, int | None, int | None]:
    """Return ``(name, max_length, precision, scale)`` for a parsed T-SQL type node."""
    if data_type.this == exp.DType.USERDEFINED:
        name = data_type.args.get("kind") or data_type.sql("tsql")
        return str(name).upper(), None, None, None
    name = _DTYPE_NAMES.get(data_type.this)
    if name is None:
        raise TranslationError(f"unsupported SQL Server type {data_type.sql('tsql')}")
    params = [p.name.upper() for p in data_type.expressions]
    if name == "TEXT" and data_type.sql("tsql").upper() == "VARCHAR(MAX)":
        return "VARCHAR", -1, None, None
    if name in _STRING_TYPES:
        length = -1 if params and params[0] == "MAX" else _int(params, 0)
        return name, length, None, None
    if name in {"DECIMAL", "NUMERIC"}:
        return name, None, _int(params, 0), _int(params, 1)
    return name, None, _int(params, 0), None


def _int(params: list[str], i: int) -> int | None:
    return int(params[i]) if len(params) > i and params[i].isdigit() else None


def map_data_type(
    data_type: exp.DataType, target: str, aliases: dict[str, str] | None = None
) -> exp.DataType:
    """Return the target type node for a parsed T-SQL type (alias types via ``aliases``)."""
    name, length, precision, scale = sql_server_type_of(data_type)
    if aliases and name.lower() in aliases:
        base = exp.DataType.build(aliases[name.lower()], dialect="tsql")
        return map_data_type(base, target)
    if name == "FLOAT" and precision is None and data_type.this == exp.DType.FLOAT:
        precision = 53
    text = target_type(name, length, precision, scale, target)
    return exp.DataType.build(text, dialect=target)
