"""SQL Server column types mapped to each target (``target_type``)."""

from __future__ import annotations

import pytest
import sqlglot

from datamigrate_agent.translate import TARGETS, TranslationError, target_type

# (sql server type, max_length, precision, scale) -> {target: type}
ROWS = [
    (
        ("bit", None, None, None),
        {
            "duckdb": "BOOLEAN",
            "postgres": "BOOLEAN",
            "snowflake": "BOOLEAN",
            "bigquery": "BOOL",
            "databricks": "BOOLEAN",
            "redshift": "BOOLEAN",
        },
    ),
    (
        ("money", None, 19, 4),
        {
            "duckdb": "DECIMAL(19,4)",
            "postgres": "DECIMAL(19,4)",
            "snowflake": "DECIMAL(19,4)",
            "bigquery": "NUMERIC(19,4)",
            "databricks": "DECIMAL(19,4)",
            "redshift": "DECIMAL(19,4)",
        },
    ),
    (("smallmoney", None, None, None), {"duckdb": "DECIMAL(10,4)"}),
    (
        ("nvarchar", 40, None, None),
        {
            "duckdb": "VARCHAR",
            "postgres": "VARCHAR(40)",
            "snowflake": "VARCHAR(40)",
            "bigquery": "STRING",
            "databricks": "STRING",
            "redshift": "VARCHAR(40)",
        },
    ),
    (
        ("nvarchar", -1, None, None),
        {"postgres": "TEXT", "redshift": "VARCHAR(65535)", "snowflake": "VARCHAR"},
    ),
    (("varchar(max)", None, None, None), {"postgres": "TEXT"}),
    (("char", 5, None, None), {"postgres": "VARCHAR(5)", "duckdb": "VARCHAR"}),
    (("tinyint", None, 3, 0), {"duckdb": "UTINYINT", "postgres": "SMALLINT", "bigquery": "INT64"}),
    (("decimal", None, 38, 12), {"bigquery": "BIGNUMERIC(38,12)", "postgres": "DECIMAL(38,12)"}),
    (("numeric", None, None, None), {"duckdb": "DECIMAL(18,0)"}),
    (
        ("float", None, 53, None),
        {"duckdb": "DOUBLE", "postgres": "DOUBLE PRECISION", "bigquery": "FLOAT64"},
    ),
    (("float", None, 24, None), {"duckdb": "REAL", "postgres": "REAL"}),
    (
        ("datetime", None, None, None),
        {
            "duckdb": "TIMESTAMP",
            "snowflake": "TIMESTAMP_NTZ",
            "bigquery": "DATETIME",
            "databricks": "TIMESTAMP_NTZ",
        },
    ),
    (("datetimeoffset", None, 7, None), {"duckdb": "TIMESTAMPTZ", "bigquery": "TIMESTAMP"}),
    (
        ("uniqueidentifier", None, None, None),
        {"duckdb": "UUID", "postgres": "UUID", "snowflake": "VARCHAR(36)", "bigquery": "STRING"},
    ),
    (
        ("varbinary", -1, None, None),
        {"duckdb": "BLOB", "postgres": "BYTEA", "redshift": "VARBYTE", "bigquery": "BYTES"},
    ),
    (("timestamp", None, None, None), {"duckdb": "BLOB", "postgres": "BYTEA"}),
    (("xml", None, None, None), {"postgres": "TEXT", "snowflake": "VARCHAR"}),
]


@pytest.mark.parametrize(("source", "expected"), ROWS, ids=[r[0][0] for r in ROWS])
def test_sql_server_type_maps_to_each_target_type(
    source: tuple[str, int | None, int | None, int | None], expected: dict[str, str]
) -> None:
    for target, want in expected.items():
        assert target_type(*source, target=target) == want, target


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_every_mapped_type_parses_as_a_type_of_its_target(target: str) -> None:
    for name in TARGETS[target].TYPE_MAPPING:
        text = target_type(name, 10, 10, 2, target)
        sqlglot.exp.DataType.build(text, dialect=target)


def test_unknown_type_raises_translation_error() -> None:
    with pytest.raises(TranslationError, match="no duckdb type for SQL Server type 'cursor'"):
        target_type("cursor", target="duckdb")
