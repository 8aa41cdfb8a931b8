"""T-SQL to target-dialect translation that keeps SQL Server semantics.

The public API (everything else in this package is private):

- ``translate_statement(sql, target, *, schema=None, options=None) -> str``: one T-SQL
  statement to target SQL (no trailing semicolon).
- ``translate_script(text, target, *, schema=None, options=None) -> list[TranslatedStatement]``:
  a whole script (``GO`` batches, statements with or without semicolons); tables created in the
  script feed the column types used by later statements.
- ``translate_query(select_sql, target, resolve_table, *, schema=None, options=None) -> str``:
  a view or procedure body (one SELECT); every table reference goes through
  ``resolve_table(schema, name)``, whose non-None answer (for example ``{{ ref('stg_x') }}``)
  replaces the reference verbatim.
- ``procedure_query(definition) -> str``: the single SELECT of a procedure that returns one
  result set (raises ``TranslationError`` naming why otherwise: parameters, SET ROWCOUNT,
  several statements, data changes).
- ``target_type(sql_server_type, max_length, precision, scale, target) -> str``: the target
  type for a SQL Server column type.
- ``TranslationError(reason)``: raised for anything that cannot be translated faithfully.

``target`` is a sqlglot dialect name: duckdb, postgres, snowflake, bigquery, databricks,
redshift. ``schema`` maps table names (``"dbo.person"`` or ``"person"``, case-insensitive) to
``{column: sql_server_type}``; types drive ``+`` (concatenation or addition), ``/`` (integer
division), comparisons (trailing spaces, case) and BIT handling.

What keeps SQL Server's meaning (one module per kind in ``transforms/``, in run order): string
``+`` as NULL-propagating ``||`` and ``+`` typing by operand types (``concat``); int / int
truncation, integer AVG, AVG(money) as money, truncating casts, string operands (``arithmetic``);
DATEDIFF boundary counting for every datepart, DATEPART/DATENAME with DATEFIRST, GETDATE as
local time (``datetime``); trailing-space and case-insensitive ``=``, IN, BETWEEN, simple CASE,
NULLIF, LIKE (and ``[a-z]`` classes), DISTINCT, GROUP BY, UNION, ORDER BY (``compare``); GROUP
BY ... WITH ROLLUP / WITH CUBE as ROLLUP (...) / CUBE (...), with NULL subtotal keys and
GROUPING() (``grouping``); TOP WITH TIES / PERCENT and SET ROWCOUNT (``top``); CROSS/OUTER APPLY
(``apply``); BIT as boolean (``bits``, ``inserts``); MONEY as DECIMAL(19,4) and the type table
(``types``); ISNULL typing (``isnull``); CONVERT styles and style 0 text (``convert``); WITH
RECURSIVE (``cte``); IDENTITY, keys, indexes, SSMS options (``ddl``, ``keys``, ``_ddl_text``);
LEN, CHARINDEX, SUBSTRING, STUFF, CONCAT, CI REPLACE (``strings``); T-SQL date strings, money
and binary literals (``literals``).

Known gaps (translated as the target does it, not flagged): MIN/MAX of strings compare
case-sensitively; ORDER BY over a set operation or a DISTINCT query sorts binary; the
IDENTITY seed moves past explicit inserts only on DuckDB and PostgreSQL; DATEDIFF(nanosecond)
and XML, full-text, OPENJSON, FOR XML, variables and control flow raise TranslationError.
"""

from __future__ import annotations

from datamigrate_agent.translate.engine import (
    Options,
    TranslatedStatement,
    translate_query,
    translate_script,
    translate_statement,
)
from datamigrate_agent.translate.errors import TranslationError
from datamigrate_agent.translate.procedures import procedure_query
from datamigrate_agent.translate.targets import TARGETS, get_target
from datamigrate_agent.translate.type_mapping import target_type

__all__ = [
    "TARGETS",
    "Options",
    "TranslatedStatement",
    "TranslationError",
    "get_target",
    "procedure_query",
    "target_type",
    "translate_query",
    "translate_script",
    "translate_statement",
]
