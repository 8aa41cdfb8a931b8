"""The translate package's public API: statements, scripts, view bodies, procedures, the CLI."""

from __future__ import annotations

import duckdb
import pytest

from datamigrate_agent.__main__ import main
from datamigrate_agent.errors import EXIT_PERMANENT, PermanentError
from datamigrate_agent.translate import (
    Options,
    TranslationError,
    procedure_query,
    translate_query,
    translate_script,
    translate_statement,
)
from datamigrate_agent.translate.splitter import split_script

SCHEMA = {
    "dbo.Orders": {"OrderID": "int", "CustomerID": "nchar(5)", "Freight": "money"},
    "dbo.Order Details": {"OrderID": "int", "Quantity": "smallint"},
}


def _ref(schema: str, name: str) -> str | None:
    return "{{ ref('stg_" + name.lower().replace(" ", "_") + "') }}"


def test_translate_query_replaces_tables_through_resolver_and_keeps_aliases() -> None:
    view = (
        "CREATE VIEW dbo.v AS SELECT o.OrderID, od.Quantity / 2 AS half "
        "FROM dbo.Orders o JOIN [Order Details] od ON od.OrderID = o.OrderID"
    )
    got = translate_query(view, "duckdb", _ref, schema=SCHEMA)
    assert got == (
        "SELECT o.OrderID, od.Quantity // 2 AS half FROM {{ ref('stg_orders') }} AS o "
        "JOIN {{ ref('stg_order_details') }} AS od ON od.OrderID = o.OrderID"
    )


def test_translate_query_gives_bare_references_their_table_name_as_alias() -> None:
    got = translate_query("SELECT Orders.OrderID FROM Orders", "postgres", _ref)
    assert got == 'SELECT "Orders"."OrderID" FROM {{ ref(\'stg_orders\') }} AS "Orders"'


def test_translate_query_leaves_cte_references_and_unresolved_tables_alone() -> None:
    seen: list[tuple[str, str]] = []

    def resolve(schema: str, name: str) -> str | None:
        seen.append((schema, name))
        return None

    sql = "WITH c AS (SELECT OrderID FROM dbo.Orders) SELECT OrderID FROM c"
    got = translate_query(sql, "duckdb", resolve)
    assert seen == [("dbo", "Orders")]
    assert got == "WITH c AS (SELECT OrderID FROM Orders) SELECT OrderID FROM c"


def test_translate_query_rejects_statements_that_are_not_queries() -> None:
    with pytest.raises(TranslationError, match="expected a query, found DELETE"):
        translate_query("DELETE FROM dbo.Orders", "duckdb", _ref)


def test_translation_error_is_a_permanent_error_with_a_reason() -> None:
    with pytest.raises(TranslationError) as raised:
        translate_statement(
            "SELECT x.c.value('a', 'int') FROM t CROSS APPLY t.d.nodes('/r') x(c)", "duckdb"
        )
    assert isinstance(raised.value, PermanentError)
    assert raised.value.reason.startswith("XML method .value()")


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("SELECT FROM WHERE", "T-SQL does not parse"),
        ("SELECT 1; SELECT 2", "expected one statement, found 2"),
        ("SELECT * FROM OPENJSON(@j)", "T-SQL variables"),
        ("SELECT * FROM OPENJSON('[1]')", "OPENJSON is not translatable"),
        ("SELECT STUFF((SELECT ',' + a FROM t FOR XML PATH('')), 1, 1, '')", "FOR XML"),
        ("EXEC dbo.some_proc", "EXEC calls a stored procedure"),
        ("SET NOCOUNT ON", "no duckdb equivalent: SET NOCOUNT"),
        ("SELECT TOP 1 WITH TIES a FROM t", "WITH TIES needs an ORDER BY"),
    ],
)
def test_untranslatable_statements_raise_precise_reasons(sql: str, reason: str) -> None:
    with pytest.raises(TranslationError, match=reason.replace("(", r"\(")):
        translate_statement(sql, "duckdb")


def test_unknown_target_is_rejected() -> None:
    with pytest.raises(TranslationError, match="unsupported target 'oracle'"):
        translate_statement("SELECT 1", "oracle")


def test_case_sensitive_source_keeps_case_but_still_ignores_trailing_spaces() -> None:
    schema = {"t": {"a": "varchar(5)"}}
    options = Options(case_insensitive=False)
    got = translate_statement(
        "SELECT a FROM t WHERE a = 'X '", "duckdb", schema=schema, options=options
    )
    assert got == "SELECT a FROM t WHERE RTRIM(a, ' ') = 'X'"


def test_without_column_types_plus_stays_addition() -> None:
    assert translate_statement("SELECT a + b FROM t", "duckdb") == "SELECT a + b FROM t"


def test_script_reports_every_statement_in_order_with_skips_and_errors_print_included() -> None:
    script = (
        "USE pubs\nGO\nSET NOCOUNT ON\nGO\nCREATE TABLE t (a INT)\ninsert t values (1)\n"
        "PRINT 'loaded'\nEXEC dbo.p\nselect a from t\nGO\n"
    )
    results = translate_script(script, "duckdb")
    assert [(r.line, r.kind, bool(r.skipped), bool(r.error)) for r in results] == [
        (1, "other", True, False),
        (3, "other", True, False),
        (5, "create_table", False, False),
        (6, "insert", False, False),
        (7, "other", False, True),
        (8, "other", False, True),
        (9, "query", False, False),
    ]
    assert results[3].sql == "INSERT INTO t VALUES (1)"


def test_script_moves_foreign_keys_after_the_data_on_postgres() -> None:
    script = (
        "CREATE TABLE p (id INT PRIMARY KEY)\nCREATE TABLE c (id INT, "
        "p_id INT CONSTRAINT fk_c_p REFERENCES p (id))\ninsert c values (1, 7)\n"
        "insert p values (7)\n"
    )
    results = translate_script(script, "postgres")
    assert results[1].sql == 'CREATE TABLE "c" ("id" INT, "p_id" INT)'
    assert results[-1].sql == (
        'ALTER TABLE "c" ADD CONSTRAINT "fk_c_p" FOREIGN KEY ("p_id") REFERENCES "p" ("id")'
    )


def test_splitter_keeps_insert_select_union_and_update_set_together() -> None:
    script = (
        "IF EXISTS (SELECT * FROM sysobjects WHERE name = 'x') DROP TABLE x\n"
        "INSERT INTO t (a) SELECT 1 UNION ALL SELECT 2\n"
        "UPDATE t SET a = 1 WHERE a IN (SELECT a FROM u) SET NOCOUNT ON;\n"
        "WITH d AS (SELECT 2 b) INSERT INTO x SELECT * FROM d\n"
        "insert t values (3) insert t values (4)"
    )
    assert [s.text for s in split_script(script)] == [
        "IF EXISTS (SELECT * FROM sysobjects WHERE name = 'x') DROP TABLE x",
        "INSERT INTO t (a) SELECT 1 UNION ALL SELECT 2",
        "UPDATE t SET a = 1 WHERE a IN (SELECT a FROM u)",
        "SET NOCOUNT ON",
        "WITH d AS (SELECT 2 b) INSERT INTO x SELECT * FROM d",
        "insert t values (3)",
        "insert t values (4)",
    ]


def test_if_exists_drop_preamble_becomes_drop_if_exists() -> None:
    sql = "IF OBJECT_ID('dbo.x') IS NOT NULL DROP TABLE dbo.x"
    assert translate_statement(sql, "duckdb") == "DROP TABLE IF EXISTS x"


def test_procedure_with_one_select_gives_its_query() -> None:
    definition = "CREATE PROCEDURE dbo.list AS\nSET NOCOUNT ON\nSELECT a FROM t ORDER BY a\n"
    assert procedure_query(definition) == "SELECT a FROM t ORDER BY a"


@pytest.mark.parametrize(
    ("definition", "reason"),
    [
        (
            'create procedure "Ten Most" AS\nSET ROWCOUNT 10\nSELECT a FROM t ORDER BY a DESC',
            "procedure uses SET ROWCOUNT",
        ),
        (
            "CREATE PROC p @id int AS SELECT a FROM t WHERE id = @id",
            "procedure takes parameters (@id)",
        ),
        ("CREATE PROCEDURE p AS BEGIN SELECT 1 SELECT 2 END", "procedure runs 2 statements"),
        ("CREATE PROCEDURE p AS UPDATE t SET a = 1", "procedure changes data (UPDATE)"),
    ],
)
def test_procedures_that_are_not_one_query_are_flagged(definition: str, reason: str) -> None:
    with pytest.raises(TranslationError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        procedure_query(definition)


def test_create_procedure_in_a_script_is_flagged_with_set_rowcount_named() -> None:
    script = "create procedure p AS\nSET ROWCOUNT 10\nSELECT a FROM t\nGO\n"
    [result] = translate_script(script, "duckdb")
    assert result.error is not None and "SET ROWCOUNT" in result.error


def test_cli_prints_each_statement_with_a_semicolon_and_runs_on_duckdb(
    tmp_path: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    script = tmp_path / "in.sql"  # type: ignore[operator]
    script.write_text(
        "SET ANSI_NULLS ON\nGO\nCREATE TABLE dbo.p (a NVARCHAR(5), b NVARCHAR(5))\n"
        "insert dbo.p values (N'x', NULL) insert dbo.p values (N'y', N'z')\nGO\n"
        "SELECT a + b AS ab FROM dbo.p ORDER BY a\nGO\n",
        encoding="utf-8",
    )
    assert main(["translate", "--to", "duckdb", str(script)]) == 0
    out = capsys.readouterr().out
    assert out == (
        "CREATE TABLE p (a TEXT, b TEXT);\n"
        "INSERT INTO p VALUES ('x', NULL);\n"
        "INSERT INTO p VALUES ('y', 'z');\n"
        "SELECT a || b AS ab FROM p ORDER BY LOWER(a) NULLS FIRST;\n"
    )
    con = duckdb.connect()
    for statement in out.split(";\n")[:-1]:
        con.execute(statement)
    assert con.fetchall() == [(None,), ("yz",)]


def test_cli_reports_untranslatable_statements_and_exits_permanent(
    tmp_path: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    script = tmp_path / "in.sql"  # type: ignore[operator]
    script.write_text("SELECT 1 AS a\nGO\nEXEC dbo.p\nGO\nSELECT 2 AS b\n", encoding="utf-8")
    assert main(["translate", "--from", "tsql", "--to", "postgres", str(script)]) == EXIT_PERMANENT
    captured = capsys.readouterr()
    assert captured.out == 'SELECT 1 AS "a";\nSELECT 2 AS "b";\n'
    assert "line 3: not translated: EXEC calls a stored procedure" in captured.err


def test_translate_query_applies_a_view_column_list_to_its_outputs() -> None:
    view = "CREATE VIEW [dbo].[v] ([x], y) WITH SCHEMABINDING AS SELECT a, b AS c FROM t"
    got = translate_query(view, "duckdb", lambda schema, name: None)
    assert got == "SELECT a AS x, b AS y FROM t"


def test_a_case_sensitive_column_collation_keeps_case_in_comparisons() -> None:
    schema = {"dbo.t": {"code": "varchar(5) COLLATE Latin1_General_CS_AS", "name": "varchar(5)"}}
    got = translate_statement(
        "SELECT code FROM dbo.t WHERE code = 'Ab ' AND name = 'Ab'", "duckdb", schema=schema
    )
    assert got == (
        "SELECT code FROM t WHERE RTRIM(code, ' ') = 'Ab' AND LOWER(RTRIM(name, ' ')) = 'ab'"
    )


def test_sysname_columns_are_strings() -> None:
    got = translate_statement(
        "SELECT name FROM t WHERE name = 'X'", "duckdb", schema={"t": {"name": "sysname"}}
    )
    assert got == "SELECT name FROM t WHERE LOWER(RTRIM(name, ' ')) = 'x'"


def test_cli_rejects_an_unknown_target_listing_the_valid_ones(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["translate", "--to", "oracle", "in.sql"])
    assert raised.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert (
        "argument --to: unknown target 'oracle'; valid targets: bigquery, databricks, duckdb,"
        " postgres, redshift, snowflake"
    ) in captured.err


def test_cli_process_writes_sql_to_stdout_and_failures_to_stderr_only(
    tmp_path: pytest.TempPathFactory,
) -> None:
    import subprocess
    import sys

    script = tmp_path / "in.sql"  # type: ignore[operator]
    script.write_text("SELECT 1 AS a\nEXEC dbo.p\nSELECT 2 AS b\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "datamigrate_agent", "translate", "--to", "DuckDB", str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == EXIT_PERMANENT
    assert done.stdout == "SELECT 1 AS a;\nSELECT 2 AS b;\n"
    assert done.stderr == (
        "line 2: not translated: EXEC calls a stored procedure; it has no target equivalent\n"
    )


def test_an_operand_of_a_type_outside_the_precedence_table_keeps_division_as_written() -> None:
    # ``ratio`` is an alias type the translator was not told about: it may be real, so
    # ``q * d`` is of unknown type and ``/ 2`` must not become integer division.
    schema = {"dbo.t": {"q": "int", "d": "ratio", "b": "varbinary(4)"}}
    got = translate_statement(
        "SELECT q * d / 2, COALESCE(q, d) / 2, q * b / 2, q / 2 FROM dbo.t", "duckdb", schema=schema
    )
    assert got == "SELECT q * d / 2, COALESCE(q, d) / 2, q * b / 2, q // 2 FROM t"


def test_view_body_with_the_graphs_schema_divides_a_real_expression_as_float() -> None:
    # The graph passes ``type_schema(metadata)``: "schema.table" -> {column: base type}.
    schema = {
        "dbo.Products": {"ProductID": "int", "ProductName": "nvarchar(40)"},
        "dbo.Order Details": {
            "OrderID": "int", "ProductID": "int", "UnitPrice": "money",
            "Quantity": "smallint", "Discount": "real",
        },
    }  # fmt: skip
    view = (
        'CREATE VIEW "Order Details Extended" AS SELECT "Order Details".OrderID, '
        '(CONVERT(money,("Order Details".UnitPrice*Quantity*(1-Discount)/100))*100) AS '
        'ExtendedPrice, Quantity/100 AS q FROM Products INNER JOIN "Order Details" ON '
        'Products.ProductID = "Order Details".ProductID'
    )
    got = translate_query(view, "duckdb", lambda s, n: None, schema=schema)
    assert "* (1 - Discount) / 100) AS DECIMAL(19, 4)) * 100) AS ExtendedPrice" in got
    assert "Quantity // 100 AS q" in got
