"""One class per target warehouse: behaviour flags and type tables, registered by name.

Follows sqlglot's dialect style: the base ``Target`` holds the defaults, each subclass only
states where its warehouse differs. ``get_target("duckdb")`` returns the registered instance.
"""

from __future__ import annotations

from typing import ClassVar

from datamigrate_agent.translate.errors import TranslationError

__all__ = ["TARGETS", "Target", "get_target"]

#: name -> Target instance, filled by ``Target.__init_subclass__``.
TARGETS: dict[str, Target] = {}


class Target:
    """Defaults shared by every target; subclasses override class constants only."""

    #: sqlglot dialect name, also the name users pass (``--to duckdb``).
    NAME: ClassVar[str] = ""
    #: ``QUALIFY`` exists; otherwise TOP ... WITH TIES / PERCENT wrap the query in a subquery.
    SUPPORTS_QUALIFY: ClassVar[bool] = True
    #: ``ILIKE`` exists; otherwise case-insensitive LIKE becomes ``LOWER(a) LIKE LOWER(b)``.
    SUPPORTS_ILIKE: ClassVar[bool] = True
    #: ``/`` between two integers truncates toward zero already (PostgreSQL, Redshift).
    INT_DIVISION_TRUNCATES: ClassVar[bool] = False
    #: ``LATERAL`` joins exist (CROSS/OUTER APPLY over a subquery).
    SUPPORTS_LATERAL: ClassVar[bool] = True
    #: A native UUID type exists.
    SUPPORTS_UUID: ClassVar[bool] = False
    #: ``GROUP BY CUBE (...)`` exists (every target has ROLLUP).
    SUPPORTS_CUBE: ClassVar[bool] = True
    #: Largest DECIMAL precision and, when limited separately, scale (BigQuery NUMERIC).
    MAX_DECIMAL_PRECISION: ClassVar[int] = 38
    #: PRIMARY KEY / UNIQUE / FOREIGN KEY / CHECK can be declared in CREATE TABLE.
    SUPPORTS_CONSTRAINTS: ClassVar[bool] = True
    #: CREATE INDEX exists (warehouses without indexes skip it).
    SUPPORTS_INDEXES: ClassVar[bool] = False
    #: Foreign keys: "keep" (declared, not enforced), "drop" (DuckDB enforces them at once
    #: and cannot add them later, while scripts load children before parents), or "defer"
    #: (added with ALTER TABLE once the whole script has loaded its data).
    FOREIGN_KEYS: ClassVar[str] = "keep"
    #: Case-insensitive REPLACE as a regular-expression call: ``{s}``, ``{p}`` (pattern),
    #: ``{r}`` (replacement) are SQL texts; ``{p}`` needs no (?i) prefix unless written here.
    CI_REPLACE: ClassVar[str] = "REGEXP_REPLACE({s}, {p}, {r}, 'gi')"
    #: Quote every identifier: the target folds unquoted names (PostgreSQL to lower case,
    #: Snowflake to upper case) while SQL Server keeps the spelling, case-insensitively.
    QUOTE_IDENTIFIERS: ClassVar[bool] = True
    #: A binary constant (``0x1A2B``) for binary columns; ``{hex}`` is filled in.
    BINARY_LITERAL: ClassVar[str] = "FROM_HEX('{hex}')"
    #: The current local date and time without time zone (GETDATE, SYSDATETIME).
    LOCAL_NOW: ClassVar[str] = "LOCALTIMESTAMP"
    #: IDENTITY columns: "sequence" (a sequence and a nextval default), "native" (the
    #: generator's own identity syntax) or "none" (dropped: the warehouse has no generator).
    IDENTITY_STYLE: ClassVar[str] = "native"
    #: How ``LIKE '[a-z]%'`` character classes are matched: a full-match regex function.
    REGEX_FULL_MATCH: ClassVar[str] = "REGEXP_FULL_MATCH"

    #: MERGE ... WHEN NOT MATCHED BY SOURCE: None when the target runs it, else the release
    #: that first does (the translation refuses it with that, as the server may be older).
    MERGE_BY_SOURCE_SINCE: ClassVar[str | None] = None

    #: DATEPART names whose EXTRACT field is spelled differently on the target.
    EXTRACT_FIELDS: ClassVar[dict[str, str]] = {"DAYOFYEAR": "DOY"}
    #: EXTRACT returns NUMERIC (PostgreSQL 14+), so DATEPART results are cast to integers.
    EXTRACT_IS_NUMERIC: ClassVar[bool] = False

    #: SQL Server type (upper case) -> target type; ``{n}``, ``{p}``, ``{s}`` are filled in.
    TYPE_MAPPING: ClassVar[dict[str, str]] = {
        "BIGINT": "BIGINT",
        "INT": "INTEGER",
        "SMALLINT": "SMALLINT",
        "TINYINT": "SMALLINT",
        "BIT": "BOOLEAN",
        "DECIMAL": "DECIMAL({p},{s})",
        "NUMERIC": "DECIMAL({p},{s})",
        "MONEY": "DECIMAL(19,4)",
        "SMALLMONEY": "DECIMAL(10,4)",
        "FLOAT": "DOUBLE PRECISION",
        "REAL": "REAL",
        "DATE": "DATE",
        "TIME": "TIME",
        "DATETIME": "TIMESTAMP",
        "DATETIME2": "TIMESTAMP",
        "SMALLDATETIME": "TIMESTAMP",
        "DATETIMEOFFSET": "TIMESTAMP WITH TIME ZONE",
        # Fixed-width values keep their padding as text (PostgreSQL's CHAR drops it in ||).
        "CHAR": "VARCHAR({n})",
        "NCHAR": "VARCHAR({n})",
        "VARCHAR": "VARCHAR({n})",
        "NVARCHAR": "VARCHAR({n})",
        "VARCHAR(MAX)": "VARCHAR",
        "TEXT": "VARCHAR",
        "NTEXT": "VARCHAR",
        "XML": "VARCHAR",
        "SYSNAME": "VARCHAR(128)",
        "UNIQUEIDENTIFIER": "VARCHAR(36)",
        "BINARY": "BYTEA",
        "VARBINARY": "BYTEA",
        "IMAGE": "BYTEA",
        "TIMESTAMP": "BYTEA",
        "ROWVERSION": "BYTEA",
        "SQL_VARIANT": "VARCHAR",
        "HIERARCHYID": "VARCHAR",
        "GEOGRAPHY": "VARCHAR",
        "GEOMETRY": "VARCHAR",
    }

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if cls.NAME:
            TARGETS[cls.NAME] = cls()


class DuckDB(Target):
    """DuckDB: the default engine of the tests and of ``dbt build``."""

    NAME = "duckdb"
    QUOTE_IDENTIFIERS = False
    SUPPORTS_UUID = True
    SUPPORTS_INDEXES = True
    FOREIGN_KEYS = "drop"
    LOCAL_NOW = "current_localtimestamp()"
    IDENTITY_STYLE = "sequence"
    TYPE_MAPPING = {
        **Target.TYPE_MAPPING,
        # DuckDB's BIT is a bit string; SQL Server BIT is a 0/1 flag.
        "TINYINT": "UTINYINT",
        "FLOAT": "DOUBLE",
        "CHAR": "VARCHAR",
        "NCHAR": "VARCHAR",
        "VARCHAR": "VARCHAR",
        "NVARCHAR": "VARCHAR",
        "DATETIMEOFFSET": "TIMESTAMPTZ",
        "UNIQUEIDENTIFIER": "UUID",
        "BINARY": "BLOB",
        "VARBINARY": "BLOB",
        "IMAGE": "BLOB",
        "TIMESTAMP": "BLOB",
        "ROWVERSION": "BLOB",
    }


class Postgres(Target):
    """PostgreSQL 13 or later (MERGE needs 15; the tests run on Debian 12's 15)."""

    NAME = "postgres"
    MERGE_BY_SOURCE_SINCE = "PostgreSQL 17"
    BINARY_LITERAL = "DECODE('{hex}', 'hex')"
    SUPPORTS_INDEXES = True
    FOREIGN_KEYS = "defer"
    EXTRACT_IS_NUMERIC = True
    SUPPORTS_QUALIFY = False
    INT_DIVISION_TRUNCATES = True
    SUPPORTS_UUID = True
    REGEX_FULL_MATCH = "~"
    TYPE_MAPPING = {
        **Target.TYPE_MAPPING,
        "UNIQUEIDENTIFIER": "UUID",
        "TEXT": "TEXT",
        "NTEXT": "TEXT",
        "VARCHAR(MAX)": "TEXT",
        "XML": "TEXT",
        "SQL_VARIANT": "TEXT",
        "HIERARCHYID": "TEXT",
        "GEOGRAPHY": "TEXT",
        "GEOMETRY": "TEXT",
    }


class Redshift(Postgres):
    """Amazon Redshift: PostgreSQL-like, no UUID, VARBYTE for binary data, QUALIFY exists."""

    NAME = "redshift"
    CI_REPLACE = "REGEXP_REPLACE({s}, {p}, {r}, 1, 'i')"
    BINARY_LITERAL = "FROM_HEX('{hex}')"
    SUPPORTS_INDEXES = False
    FOREIGN_KEYS = "keep"
    LOCAL_NOW = "GETDATE()"
    EXTRACT_IS_NUMERIC = False
    # Not PostgreSQL's release train; what Redshift's MERGE accepts is not checked here.
    MERGE_BY_SOURCE_SINCE = None
    SUPPORTS_QUALIFY = True
    SUPPORTS_UUID = False
    SUPPORTS_LATERAL = False
    TYPE_MAPPING = {
        **Postgres.TYPE_MAPPING,
        "UNIQUEIDENTIFIER": "VARCHAR(36)",
        "TEXT": "VARCHAR(65535)",
        "NTEXT": "VARCHAR(65535)",
        "VARCHAR(MAX)": "VARCHAR(65535)",
        "XML": "VARCHAR(65535)",
        "SQL_VARIANT": "VARCHAR(65535)",
        "HIERARCHYID": "VARCHAR(65535)",
        "GEOGRAPHY": "VARCHAR(65535)",
        "GEOMETRY": "VARCHAR(65535)",
        "BINARY": "VARBYTE",
        "VARBINARY": "VARBYTE",
        "IMAGE": "VARBYTE",
        "TIMESTAMP": "VARBYTE",
        "ROWVERSION": "VARBYTE",
    }


class Snowflake(Target):
    """Snowflake."""

    NAME = "snowflake"
    CI_REPLACE = "REGEXP_REPLACE({s}, {p}, {r}, 1, 0, 'i')"
    BINARY_LITERAL = "TO_BINARY('{hex}', 'HEX')"
    LOCAL_NOW = "CAST(CURRENT_TIMESTAMP() AS TIMESTAMP_NTZ)"
    REGEX_FULL_MATCH = "REGEXP_LIKE"
    TYPE_MAPPING = {
        **Target.TYPE_MAPPING,
        "FLOAT": "FLOAT",
        "DATETIME": "TIMESTAMP_NTZ",
        "DATETIME2": "TIMESTAMP_NTZ",
        "SMALLDATETIME": "TIMESTAMP_NTZ",
        "DATETIMEOFFSET": "TIMESTAMP_TZ",
        "BINARY": "BINARY",
        "VARBINARY": "BINARY",
        "IMAGE": "BINARY",
        "TIMESTAMP": "BINARY",
        "ROWVERSION": "BINARY",
        "XML": "VARCHAR",
        "SQL_VARIANT": "VARIANT",
    }


class BigQuery(Target):
    """Google BigQuery (NUMERIC holds at most 29 integer digits and 9 decimals)."""

    NAME = "bigquery"
    CI_REPLACE = "REGEXP_REPLACE({s}, {pi}, {r})"
    QUOTE_IDENTIFIERS = False
    LOCAL_NOW = "CURRENT_DATETIME()"
    EXTRACT_FIELDS = {"DAYOFYEAR": "DAYOFYEAR"}
    SUPPORTS_ILIKE = False
    SUPPORTS_LATERAL = False
    SUPPORTS_CONSTRAINTS = False
    SUPPORTS_CUBE = False
    IDENTITY_STYLE = "none"
    MAX_DECIMAL_PRECISION = 38
    REGEX_FULL_MATCH = "REGEXP_CONTAINS"
    TYPE_MAPPING = {
        "BIGINT": "INT64",
        "INT": "INT64",
        "SMALLINT": "INT64",
        "TINYINT": "INT64",
        "BIT": "BOOL",
        "DECIMAL": "NUMERIC({p},{s})",
        "NUMERIC": "NUMERIC({p},{s})",
        "MONEY": "NUMERIC(19,4)",
        "SMALLMONEY": "NUMERIC(10,4)",
        "FLOAT": "FLOAT64",
        "REAL": "FLOAT64",
        "DATE": "DATE",
        "TIME": "TIME",
        "DATETIME": "DATETIME",
        "DATETIME2": "DATETIME",
        "SMALLDATETIME": "DATETIME",
        "DATETIMEOFFSET": "TIMESTAMP",
        "CHAR": "STRING",
        "NCHAR": "STRING",
        "VARCHAR": "STRING",
        "NVARCHAR": "STRING",
        "VARCHAR(MAX)": "STRING",
        "TEXT": "STRING",
        "NTEXT": "STRING",
        "XML": "STRING",
        "SYSNAME": "STRING",
        "UNIQUEIDENTIFIER": "STRING",
        "BINARY": "BYTES",
        "VARBINARY": "BYTES",
        "IMAGE": "BYTES",
        "TIMESTAMP": "BYTES",
        "ROWVERSION": "BYTES",
        "SQL_VARIANT": "STRING",
        "HIERARCHYID": "STRING",
        "GEOGRAPHY": "GEOGRAPHY",
        "GEOMETRY": "STRING",
    }


class Databricks(Target):
    """Databricks SQL (Spark SQL semantics, ANSI mode)."""

    NAME = "databricks"
    CI_REPLACE = "REGEXP_REPLACE({s}, {pi}, {r})"
    QUOTE_IDENTIFIERS = False
    BINARY_LITERAL = "X'{hex}'"
    LOCAL_NOW = "LOCALTIMESTAMP()"
    SUPPORTS_CONSTRAINTS = False
    REGEX_FULL_MATCH = "RLIKE"
    TYPE_MAPPING = {
        **Target.TYPE_MAPPING,
        "INT": "INT",
        "TINYINT": "SMALLINT",
        "FLOAT": "DOUBLE",
        "REAL": "FLOAT",
        "DATETIME": "TIMESTAMP_NTZ",
        "DATETIME2": "TIMESTAMP_NTZ",
        "SMALLDATETIME": "TIMESTAMP_NTZ",
        "DATETIMEOFFSET": "TIMESTAMP",
        "CHAR": "STRING",
        "NCHAR": "STRING",
        "VARCHAR": "STRING",
        "NVARCHAR": "STRING",
        "VARCHAR(MAX)": "STRING",
        "TEXT": "STRING",
        "NTEXT": "STRING",
        "XML": "STRING",
        "SYSNAME": "STRING",
        "UNIQUEIDENTIFIER": "STRING",
        "BINARY": "BINARY",
        "VARBINARY": "BINARY",
        "IMAGE": "BINARY",
        "TIMESTAMP": "BINARY",
        "ROWVERSION": "BINARY",
        "SQL_VARIANT": "STRING",
        "HIERARCHYID": "STRING",
        "GEOGRAPHY": "STRING",
        "GEOMETRY": "STRING",
    }


def get_target(name: str) -> Target:
    """Return the registered target called ``name`` (a sqlglot dialect name).

    Raises:
        TranslationError: for a target this translator does not support.
    """
    try:
        return TARGETS[name.lower()]
    except KeyError:
        known = ", ".join(sorted(TARGETS))
        raise TranslationError(
            f"unsupported target {name!r} (supported: {known})", code="UnsupportedTarget"
        ) from None
