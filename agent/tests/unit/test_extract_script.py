"""The T-SQL script reader against the real sample scripts, the T-SQL cases and a fixture."""

from __future__ import annotations

import decimal
import gzip
import hashlib
import re
import time
from collections import Counter
from pathlib import Path

import duckdb
import pytest

from datamigrate_agent.extract._select import Selection
from datamigrate_agent.extract.script import ScriptResult, read_script, read_script_text
from datamigrate_agent.metadata import Table

SAMPLES = Path(__file__).resolve().parents[4] / "shared" / "data" / "sqlserver-samples"
CASES = SAMPLES.parent / "tsql-cases"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "extract"

NORTHWIND_SHA = "3cc62b3fca6d244a47dbde698b809331e4f85988a0685b2b370717d431e94871"
PUBS_SHA = "8dee7594afc00304c7697b860b7a6008047d3d3cf99dee50ff9cb5c75b1f423a"


def _insert_counts(path: Path) -> Counter[str]:
    """INSERT statements per table, counted with a plain regex (independent of the reader)."""
    text = path.read_text(encoding="utf-8")
    names = re.findall(r'(?im)^\s*insert\s+(?:into\s+)?(?:"([^"]+)"|(\w+))', text)
    return Counter((quoted or bare).lower() for quoted, bare in names)


@pytest.fixture(scope="module")
def northwind() -> ScriptResult:
    return read_script(SAMPLES / "instnwnd.sql")


@pytest.fixture(scope="module")
def pubs() -> ScriptResult:
    return read_script(SAMPLES / "instpubs.sql")


def _table(result: ScriptResult, name: str) -> Table:
    table = result.document.table("dbo", name)
    assert table is not None, name
    return table


# === Northwind ===


def test_northwind_is_read_completely_without_problems(northwind: ScriptResult) -> None:
    doc = northwind.document
    assert doc.problems == []
    assert (len(doc.tables), len(doc.views), len(doc.procedures)) == (13, 16, 7)
    assert sum(len(t.foreign_keys) for t in doc.tables) == 13
    assert sum(len(t.indexes) for t in doc.tables) == 26
    assert doc.source.sha256 == NORTHWIND_SHA


def test_northwind_sample_rows_match_the_inserts_per_table(northwind: ScriptResult) -> None:
    expected = _insert_counts(SAMPLES / "instnwnd.sql")
    assert sum(expected.values()) == 3308
    got = {t.name.lower(): t.row_count for t in northwind.document.tables}
    for name, count in expected.items():
        assert got[name] == count, name
        assert len(northwind.rows[f"dbo.{name}"]) == count
    assert got["customercustomerdemo"] == 0 and got["customerdemographics"] == 0


def test_northwind_keys_types_and_identity(northwind: ScriptResult) -> None:
    details = _table(northwind, "Order Details")
    assert details.primary_key is not None
    assert details.primary_key.columns == ["OrderID", "ProductID"]
    assert details.primary_key.name == "PK_Order_Details"
    assert [(f.ref_table, f.columns) for f in details.foreign_keys] == [
        ("Orders", ["OrderID"]),
        ("Products", ["ProductID"]),
    ]
    discount = details.column("Discount")
    assert discount is not None and discount.data_type == "real"
    assert discount.default == "(0)" and discount.default_name == "DF_Order_Details_Discount"

    customer_id = _table(northwind, "Customers").column("CustomerID")
    assert customer_id is not None
    assert (customer_id.data_type, customer_id.max_length, customer_id.nullable) == (
        "nchar",
        5,
        False,
    )

    employees = _table(northwind, "Employees")
    employee_id = employees.column("EmployeeID")
    assert employee_id is not None and employee_id.identity is not None
    assert (employee_id.identity.seed, employee_id.identity.increment) == (1, 1)
    assert employees.foreign_keys[0].ref_table == "Employees"
    assert employees.check_constraints[0].expression == "(BirthDate < getdate())"

    territories = _table(northwind, "EmployeeTerritories")  # keys come from ALTER TABLE
    assert territories.primary_key is not None
    assert territories.primary_key.columns == ["EmployeeID", "TerritoryID"]
    assert territories.primary_key.clustered is False
    assert {f.ref_table for f in territories.foreign_keys} == {"Employees", "Territories"}


def test_northwind_values_are_typed_for_their_columns(northwind: ScriptResult) -> None:
    orders = _table(northwind, "Orders")
    first = northwind.rows["dbo.orders"][0]
    names = [c.name for c in orders.columns]
    assert first[names.index("OrderID")] == 10248
    assert first[names.index("CustomerID")] == "VINET"
    assert first[names.index("OrderDate")] == "1996-07-04T00:00:00"
    assert first[names.index("Freight")] == decimal.Decimal("32.38")
    assert first[names.index("ShipRegion")] is None
    picture = northwind.rows["dbo.categories"][0][3]
    assert isinstance(picture, str) and picture.startswith("151c2f00")
    assert re.fullmatch(r"[0-9a-f]+", picture)
    discontinued = {row[-1] for row in northwind.rows["dbo.products"]}
    assert discontinued == {True, False}
    assert "Toms Spezialitäten" in {row[8] for row in northwind.rows["dbo.orders"]}


def test_northwind_views_and_procedures_keep_text_and_dependencies(
    northwind: ScriptResult,
) -> None:
    doc = northwind.document
    views = {v.name: v for v in doc.views}
    assert views["Category Sales for 1997"].dependencies == ["dbo.Product Sales for 1997"]
    assert set(views["Invoices"].dependencies) == {
        "dbo.Shippers", "dbo.Products", "dbo.Employees", "dbo.Order Details",
        "dbo.Customers", "dbo.Orders",
    }  # fmt: skip
    assert views["Invoices"].definition.startswith("create view Invoices AS")
    assert views["Invoices"].definition.rstrip().endswith("ON Shippers.ShipperID = Orders.ShipVia")
    procs = {p.name: p for p in doc.procedures}
    assert "SET ROWCOUNT 10" in procs["Ten Most Expensive Products"].definition
    params = procs["SalesByCategory"].parameters
    assert params is not None
    assert [(p.name, p.data_type, p.max_length, p.default) for p in params] == [
        ("@CategoryName", "nvarchar", 15, None),
        ("@OrdYear", "nvarchar", 4, "'1998'"),
    ]


def test_northwind_reads_fast(northwind: ScriptResult) -> None:
    started = time.perf_counter()
    read_script(SAMPLES / "instnwnd.sql")
    elapsed = time.perf_counter() - started
    print(f"Northwind read in {elapsed:.2f} s")  # noqa: T201 - the figure the README records
    assert elapsed < 6.0  # target ~3 s; generous for a shared 2-core machine


# === pubs ===


def test_pubs_is_read_completely(pubs: ScriptResult) -> None:
    doc = pubs.document
    assert doc.problems == []
    counts = (len(doc.tables), len(doc.views), len(doc.procedures), len(doc.triggers))
    assert counts == (11, 1, 4, 1)
    assert doc.source.database == "pubs"
    assert doc.source.sha256 == PUBS_SHA
    trigger = doc.triggers[0]
    assert (trigger.name, trigger.table, trigger.events) == (
        "employee_insupd",
        "employee",
        ["INSERT", "UPDATE"],
    )
    assert set(doc.views[0].dependencies) == {"dbo.authors", "dbo.titles", "dbo.titleauthor"}


def test_pubs_sample_rows_match_the_inserts_per_table(pubs: ScriptResult) -> None:
    expected = _insert_counts(SAMPLES / "instpubs.sql")
    assert sum(expected.values()) == 255
    got = {t.name: t.row_count for t in pubs.document.tables}
    assert got == dict(expected)


def test_pubs_user_types_resolve_to_base_types(pubs: ScriptResult) -> None:
    types = {t.name: (t.base_type, t.max_length, t.nullable) for t in pubs.document.user_types}
    assert types == {
        "id": ("varchar", 11, False),
        "tid": ("varchar", 6, False),
        "empid": ("char", 9, False),
    }
    au_id = _table(pubs, "authors").column("au_id")
    assert au_id is not None
    assert (au_id.data_type, au_id.max_length, au_id.user_type, au_id.nullable) == (
        "varchar",
        11,
        "id",
        False,
    )


def test_pubs_constraints_defaults_and_money(pubs: ScriptResult) -> None:
    authors = _table(pubs, "authors")
    assert authors.primary_key is not None and authors.primary_key.name == "UPKCL_auidind"
    checks = {c.column: c.expression for c in authors.check_constraints}
    assert checks["zip"] == "(zip like '[0-9][0-9][0-9][0-9][0-9]')"
    assert "[0-9][0-9][0-9]-[0-9][0-9]" in checks["au_id"]
    employee = _table(pubs, "employee")
    emp_check = next(c for c in employee.check_constraints if c.name == "CK_emp_id")
    assert "[A-Z][A-Z][A-Z][1-9]" in emp_check.expression
    assert employee.primary_key is not None and employee.primary_key.clustered is False
    publishers = _table(pubs, "publishers")
    assert "99[0-9][0-9]" in publishers.check_constraints[0].expression

    titles = _table(pubs, "titles")
    price = titles.column("price")
    assert price is not None and price.data_type == "money"
    pubdate = titles.column("pubdate")
    assert pubdate is not None and pubdate.default == "(getdate())"
    assert titles.foreign_keys[0].ref_table == "publishers"
    discount = _table(pubs, "discounts").column("discount")
    assert discount is not None and (discount.data_type, discount.precision, discount.scale) == (
        "decimal",
        4,
        2,
    )
    sales = _table(pubs, "sales")
    assert sales.primary_key is not None
    assert sales.primary_key.columns == ["stor_id", "ord_num", "title_id"]


def test_pubs_values_fill_identity_and_defaults(pubs: ScriptResult) -> None:
    jobs = pubs.rows["dbo.jobs"]
    assert [row[0] for row in jobs] == list(range(1, 15))  # identity values SQL Server assigns
    titles = {row[0]: row for row in pubs.rows["dbo.titles"]}
    assert titles["BU1032"][4] == decimal.Decimal("19.99")
    assert titles["BU1032"][9] == "1991-06-12T00:00:00"  # '06/12/91' under DATEFORMAT mdy
    assert titles["MC3026"][2] == "UNDECIDED"  # column left out: its DEFAULT
    assert titles["MC3026"][9] is not None  # DEFAULT (getdate()): the extraction time
    logo = {row[0]: row[1] for row in pubs.rows["dbo.pub_info"]}
    assert logo["0736"].startswith("47494638")  # a GIF header, as hex


def test_gzipped_script_reads_the_same(tmp_path: Path, pubs: ScriptResult) -> None:
    packed = tmp_path / "instpubs.sql.gz"
    packed.write_bytes(gzip.compress((SAMPLES / "instpubs.sql").read_bytes()))
    result = read_script(packed)
    assert result.document.source.name == "instpubs.sql"
    assert (
        result.document.source.sha256
        == hashlib.sha256((SAMPLES / "instpubs.sql").read_bytes()).hexdigest()
    )
    assert {t.name: t.row_count for t in result.document.tables} == {
        t.name: t.row_count for t in pubs.document.tables
    }
    unnamed = tmp_path / "pubs-key"  # a ConfigMap key without .gz still holds gzip
    unnamed.write_bytes(packed.read_bytes())
    assert len(read_script(unnamed).document.tables) == 11


# === the T-SQL cases ===


def _duckdb_counts(case: Path) -> dict[str, int]:
    """Row counts after running the case's own ``duckdb-setup`` line on DuckDB."""
    setup = re.search(r"^-- duckdb-setup: (.*)$", case.read_text(), re.M)
    assert setup is not None
    con = duckdb.connect()
    con.execute(setup[1])
    tables = [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()]
    return {t: con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}


@pytest.mark.parametrize("case", sorted(CASES.glob("*.sql")), ids=lambda p: p.name[:2])
def test_tsql_case_ddl_and_inserts_extract(case: Path) -> None:
    result = read_script(case)
    doc = result.document
    assert doc.problems == []
    created = re.findall(r"(?im)^CREATE TABLE\s+(?:dbo\.)?(\w+)", case.read_text())
    assert sorted(t.name for t in doc.tables) == sorted(created)
    duck = _duckdb_counts(case)
    for table in doc.tables:
        if table.name in duck:
            assert table.row_count == duck[table.name], table.name


def test_identity_insert_then_generated_value_continues_after_it() -> None:
    result = read_script(CASES / "31-identity-column-ddl.sql")
    assert result.rows["dbo.category"] == [[7, "Produce"], [8, "Seafood"]]


def test_ssms_column_options_are_read() -> None:
    result = read_script(CASES / "33-ssms-scripted-ddl-options.sql")
    vendor = result.document.tables[0]
    guid = vendor.column("row_guid")
    assert guid is not None and guid.rowguidcol and guid.default == "(NEWID())"
    assert guid.default_name == "df_vendor_guid"
    assert vendor.primary_key is not None and vendor.primary_key.name == "pk_vendor"
    assert vendor.primary_key.clustered is True
    assert vendor.check_constraints[0].column == "vendor_code"
    rows = result.rows["dbo.vendor"]
    assert [r[0] for r in rows] == ["9901", "0736"]
    assert all(re.fullmatch(r"[0-9a-f-]{36}", r[1]) for r in rows)  # NEWID() filled in


# === a script with every construct, and four bad statements ===


@pytest.fixture(scope="module")
def shop() -> ScriptResult:
    return read_script(FIXTURES / "ssms_style.sql")


def test_bad_statements_are_reported_and_the_rest_is_read(shop: ScriptResult) -> None:
    problems = shop.document.problems
    assert [(p.batch, p.line) for p in problems] == [(28, 106), (29, 108), (30, 110), (31, 112)]
    assert [p.object for p in problems] == [
        "sales.Broken", "sales.Nowhere", "sales.Order", "sales.Order",
    ]  # fmt: skip
    assert "missing_column" in problems[0].error
    assert problems[0].excerpt.startswith("CREATE TABLE sales.Broken")
    assert "sales.Nowhere is not defined" in problems[1].error
    assert "unsupported value" in problems[2].error
    assert "reads other tables" in problems[3].error
    assert [p.excerpt for p in shop.failed_tables] == [problems[0].excerpt]
    doc = shop.document
    assert [t.qualified_name for t in doc.tables] == ["sales.Customer", "sales.Order"]
    assert [v.name for v in doc.views] == ["vCustomerOrders", "vOk"]
    assert doc.source.database == "Shop"
    assert doc.schemas == ["dbo", "sales"]


def test_ssms_table_definition_is_read_exactly(shop: ScriptResult) -> None:
    customer = shop.document.table("sales", "Customer")
    assert customer is not None
    cols = {c.name: c for c in customer.columns}
    assert cols["CustomerID"].identity is not None and cols["CustomerID"].identity.seed == 100
    assert (cols["Code"].collation, cols["Code"].description) == (
        "Latin1_General_CI_AS",
        "Short code",
    )
    assert cols["Name"].max_length == -1
    assert (cols["Phone"].data_type, cols["Phone"].user_type, cols["Phone"].nullable) == (
        "varchar",
        "phone",
        True,
    )
    assert (cols["Active"].data_type, cols["Active"].nullable) == ("bit", False)
    assert cols["rowguid"].default_name == "DF_Customer_rowguid"
    assert (cols["Ratio"].data_type, cols["Ratio"].precision) == ("real", 24)
    assert (cols["Created"].data_type, cols["Created"].scale) == ("datetime2", 3)
    assert cols["Label"].computed == "(upper([Code]) + N'-' + [Name])"
    assert cols["Label"].computed_persisted
    assert customer.unique_keys[0].columns == ["Code"]
    assert customer.check_constraints[0].name == "CK_Customer_Balance"
    assert customer.description == "People who buy things"
    order = shop.document.table("sales", "Order")
    assert order is not None
    assert order.foreign_keys[0].on_delete == "CASCADE"
    note = order.column("Note")
    assert note is not None and note.max_length == 1  # varchar without a length is varchar(1)
    assert order.indexes[0].unique and order.indexes[0].columns == ["Placed", "OrderID"]


def test_fixture_values_cover_inserts_of_every_form(shop: ScriptResult) -> None:
    customers = shop.rows["sales.customer"]
    assert [r[0] for r in customers] == [100, 110, 120, 130]  # IDENTITY(100,10) after 100
    first, second, third, fourth = customers
    assert first[6] == decimal.Decimal("12.50") and first[7] == decimal.Decimal("0.5")
    assert first[8] == "2024-01-31T10:11:12.123000"
    assert first[5] == "6f9619ff-8b86-d011-b42d-00c04fc964ff"
    assert first[9] is None  # computed column
    assert first[10] == "0a0b"
    assert second[1] == "BÖTT" and second[2] == "Bottom-Dollar 'Markets'"
    assert second[6] == decimal.Decimal("-3.25") and second[10] == "0abc"
    assert second[8] == "2024-02-29T23:59:00"
    assert third[1] == "CHOPS" and third[8] == "2024-01-05T22:00:00"
    assert fourth[1:3] == ["DUMON", None] and fourth[8] == "2024-02-01T00:00:00"
    assert customers[2][4] is True  # DEFAULT ((1)) on a column left out
    orders = shop.rows["sales.order"]
    assert orders == [
        [1, 100, decimal.Decimal("19.99"), "x", "2024-03-01"],
        [2, 110, decimal.Decimal("0.00"), None, None],
        [3, None, decimal.Decimal("0.00"), None, None],
    ]


def test_routines_are_classified_with_parameters(shop: ScriptResult) -> None:
    funcs = {f.name: f for f in shop.document.functions}
    assert {n: f.kind for n, f in funcs.items()} == {
        "fnDouble": "scalar",
        "fnOrders": "inline",
        "fnBig": "table",
    }
    assert funcs["fnDouble"].returns == "int"
    assert funcs["fnOrders"].dependencies == ["sales.Order"]
    proc = shop.document.procedures[0]
    assert proc.parameters is not None
    assert [(p.name, p.output, p.default) for p in proc.parameters] == [
        ("@id", False, None),
        ("@note", True, "NULL"),
    ]
    view = shop.document.views[0]
    assert view.dependencies == ["sales.Customer", "sales.Order"]  # the CTE is not one


# === batches and statements ===


def test_go_is_a_separator_only_alone_on_its_line() -> None:
    script = (
        "CREATE TABLE t (a varchar(20))\n"
        "go\n"
        "INSERT t VALUES ('\nGO\n')\n"
        "  GO   3  -- repeat count and a comment\n"
        "/* GO\n*/ INSERT t VALUES ('b') GO\n"
        "INSERT t VALUES ('c')\n"
        "Go"
    )
    result = read_script_text(script, "t.sql")
    assert result.stats["batches"] == 4
    # GO after a statement on the same line is no separator (sqlcmd agrees): that INSERT fails
    assert [(p.batch, p.line, p.error) for p in result.document.problems] == [
        (2, 8, "unexpected text after the INSERT, found 'GO'")
    ]
    assert result.rows["dbo.t"] == [["\nGO\n"], ["c"]]


def test_statements_without_semicolons_split_at_statement_keywords() -> None:
    script = (
        "CREATE TABLE a (x int, y int) CREATE TABLE b (x int)\n"
        "INSERT a SELECT 1, 2 UNION ALL SELECT 3, 4 INSERT INTO b VALUES (5)\n"
        "SELECT CASE WHEN 1 = 1 THEN 2 END FROM a\n"
        "SET IDENTITY_INSERT a ON INSERT b VALUES (6) SET NOCOUNT ON\n"
    )
    result = read_script_text(script, "t.sql")
    assert result.document.problems == []
    assert result.rows == {"dbo.a": [[1, 2], [3, 4]], "dbo.b": [[5], [6]]}


def test_unterminated_string_is_a_problem_for_its_batch_only() -> None:
    script = "CREATE TABLE t (a int)\nGO\nINSERT t VALUES ('oops)\nGO\nINSERT t VALUES (2)\n"
    result = read_script_text(script, "t.sql")
    assert result.rows["dbo.t"] == [[2]]
    assert result.document.problems[0].batch == 1
    assert "unterminated string" in result.document.problems[0].error


def test_include_and_exclude_globs_select_objects() -> None:
    selection = Selection(include=("Order*", "dbo.Customers"), exclude=("*Extended",))
    result = read_script(SAMPLES / "instnwnd.sql", selection=selection)
    doc = result.document
    assert sorted(t.name for t in doc.tables) == ["Customers", "Order Details", "Orders"]
    assert sorted(v.name for v in doc.views) == ["Order Subtotals", "Orders Qry"]
    assert set(result.rows) == {"dbo.customers", "dbo.order details", "dbo.orders"}
    only_sales = read_script(FIXTURES / "ssms_style.sql", selection=Selection(schemas=("SALES",)))
    assert [f.name for f in only_sales.document.functions] == ["fnOrders", "fnBig"]


@pytest.mark.parametrize(
    ("text", "dateformat", "dtype", "expected"),
    [
        ("7/4/1996", "mdy", "datetime", "1996-07-04T00:00:00"),
        ("04/07/96", "dmy", "datetime", "1996-07-04T00:00:00"),
        ("06/12/49", "mdy", "date", "2049-06-12"),
        ("06/12/50", "mdy", "date", "1950-06-12"),
        ("19970101", "dmy", "datetime", "1997-01-01T00:00:00"),
        ("1996-07-04 13:45:10.5", "dmy", "datetime2", "1996-07-04T13:45:10.500000"),
        ("Jul  4 1996  1:05PM", "mdy", "smalldatetime", "1996-07-04T13:05:00"),
        ("4 July 1996", "mdy", "date", "1996-07-04"),
        ("2024-01-31T10:11:12+02:00", "mdy", "datetimeoffset", "2024-01-31T10:11:12+02:00"),
        ("10:30", "mdy", "time", "10:30:00"),
        ("12AM", "mdy", "datetime", "1900-01-01T00:00:00"),
    ],
)
def test_date_strings_read_as_sql_server_reads_them(
    text: str, dateformat: str, dtype: str, expected: str
) -> None:
    from datamigrate_agent.extract._values import parse_datetime

    assert parse_datetime(text, dtype, dateformat) == expected


def test_type_spellings_normalise_to_system_types() -> None:
    script = (
        "CREATE TABLE t (a dec, b numeric(9), c national character varying(7), d double precision,"
        " e float(10), f varbinary(max), g char, h sysname, i integer, j rowversion, k time)"
    )
    table = read_script_text(script, "t.sql").document.tables[0]
    shapes = [(c.data_type, c.max_length, c.precision, c.scale) for c in table.columns]
    assert shapes == [
        ("decimal", None, 18, 0),
        ("numeric", None, 9, 0),
        ("nvarchar", 7, None, None),
        ("float", None, 53, None),
        ("real", None, 24, None),
        ("varbinary", -1, None, None),
        ("char", 1, None, None),
        ("nvarchar", 128, None, None),
        ("int", None, None, None),
        ("timestamp", None, None, None),
        ("time", None, None, 7),
    ]


def test_data_script_value_forms_of_other_tools_are_read() -> None:
    script = (
        "CREATE TABLE t (a datetime, b smalldatetime, c nvarchar(50), d xml(CONTENT dbo.sc))\n"
        "GO\n"
        "INSERT t VALUES (CAST(0x00009CEF00A25634 AS DateTime), CAST(0x9CEF0258 AS SmallDateTime),"
        " N'line1' + CHAR(13) + CHAR(10) + N'line2', NULL)\n"
        "INSERT t VALUES (NULL, NULL, N'a' + NULL, N'<x/>')\n"
        "GO\n"
        "CREATE VIEW v AS SELECT 1 AS x\n"
        "GO\n"
        "EXEC sp_addextendedproperty N'MS_Description', N'A view',"
        " N'SCHEMA', N'dbo', N'VIEW', N'v'\n"
    )
    result = read_script_text(script, "t.sql")
    assert result.document.problems == []
    assert result.rows["dbo.t"] == [
        ["2009-12-30T09:51:03", "2009-12-30T10:00:00", "line1\r\nline2", None],
        [None, None, None, "<x/>"],  # NULL + string is NULL (CONCAT_NULL_YIELDS_NULL)
    ]
    assert result.document.views[0].description == "A view"


def test_ssms_existence_checks_with_sp_executesql_are_read_inside() -> None:
    script = (
        "CREATE TABLE dbo.t (a int, b int, INDEX ix_b NONCLUSTERED (b))\n"
        "GO\n"
        "IF NOT EXISTS (SELECT * FROM sys.views WHERE object_id = OBJECT_ID(N'[dbo].[v]'))\n"
        "EXEC dbo.sp_executesql @statement = N'CREATE VIEW [dbo].[v] AS "
        "SELECT a FROM dbo.t WHERE b = ''x'''\n"
        "GO\n"
        "EXEC sp_executesql N'INSERT dbo.t VALUES (1, 2)'\n"
        "GO\n"
        "CREATE NONCLUSTERED COLUMNSTORE INDEX ccx ON dbo.t (a, b)\n"
        "GO\n"
        "EXEC sp_executesql N'INSERT dbo.nope VALUES (1)'\n"
    )
    result = read_script_text(script, "t.sql")
    doc = result.document
    assert doc.views[0].definition == "CREATE VIEW [dbo].[v] AS SELECT a FROM dbo.t WHERE b = 'x'"
    assert doc.views[0].dependencies == ["dbo.t"]
    assert result.rows["dbo.t"] == [[1, 2]]
    assert [i.name for i in doc.tables[0].indexes] == ["ix_b"]  # the columnstore is no key
    assert [(p.line, p.error) for p in doc.problems] == [
        (10, "table dbo.nope is not defined in the script")
    ]


@pytest.mark.parametrize(
    "encode",
    [
        lambda s: s.encode("utf-16"),  # SSMS saves Unicode scripts as UTF-16 with a BOM
        lambda s: b"\xef\xbb\xbf" + s.encode("utf-8"),
        lambda s: s.encode("cp1252"),  # an old ANSI script
    ],
    ids=["utf-16", "utf-8-bom", "cp1252"],
)
def test_script_encodings_are_detected(tmp_path: Path, encode: object) -> None:
    text = "CREATE TABLE t (city nvarchar(20))\nGO\nINSERT t VALUES (N'München')\n"
    path = tmp_path / "s.sql"
    path.write_bytes(encode(text))  # type: ignore[operator]
    assert read_script(path).rows["dbo.t"] == [["München"]]


def test_changes_after_inserts_are_reported_and_scratch_tables_ignored() -> None:
    script = (
        "CREATE TABLE t (a int)\nGO\n"
        "INSERT t VALUES (1)\nINSERT #scratch VALUES (2)\nINSERT INTO @v VALUES (3)\n"
        "UPDATE t SET a = 2\nUPDATE STATISTICS t\nDELETE FROM #scratch\n"
    )
    result = read_script_text(script, "t.sql")
    assert result.rows["dbo.t"] == [[1]]
    assert [(p.line, p.object) for p in result.document.problems] == [(6, "dbo.t")]
    assert "UPDATE changes rows of dbo.t" in result.document.problems[0].error


def test_script_view_columns_are_derived_only_when_every_column_resolves(
    northwind: ScriptResult, pubs: ScriptResult
) -> None:
    views = {v.name: v for v in northwind.document.views}
    listed = views["Alphabetical list of products"].columns  # Products.*, CategoryName
    assert listed is not None
    assert [c.name for c in listed][:2] == ["ProductID", "ProductName"]
    assert (listed[-1].name, listed[-1].data_type, listed[-1].max_length) == (
        "CategoryName",
        "nvarchar",
        15,
    )
    quarterly = views["Quarterly Orders"].columns  # a RIGHT JOIN: all nullable
    assert quarterly is not None and all(c.nullable for c in quarterly)
    assert views["Invoices"].columns is None  # expressions: not guessed
    assert views["Customer and Suppliers by City"].columns is None  # a UNION
    titleview = pubs.document.views[0].columns
    assert titleview is not None
    assert [(c.name, c.data_type) for c in titleview] == [
        ("title", "varchar"), ("au_ord", "tinyint"), ("au_lname", "varchar"),
        ("price", "money"), ("ytd_sales", "int"), ("pub_id", "char"),
    ]  # fmt: skip
