"""translate_query on view bodies: every table reference, however deeply it nests, goes
through resolve_table, and the result runs on DuckDB (and on the PostgreSQL of
``scripts/postgres`` when ``DATAMIGRATE_PG_DSN`` is set) against the resolved tables.

The resolved names (``nw.order_details``) differ from the bare T-SQL names (``[Order
Details]``), and no table carries a bare name, so a reference the resolver missed fails with
"Table with name ... does not exist".
"""

from __future__ import annotations

import decimal
import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import duckdb
import pytest

from datamigrate_agent.translate import translate_query

#: Northwind's columns, as the graph passes them (``type_schema`` of the metadata).
SCHEMA = {
    "dbo.Categories": {"CategoryID": "int", "CategoryName": "nvarchar(15)"},
    "dbo.Products": {
        "ProductID": "int",
        "ProductName": "nvarchar(40)",
        "CategoryID": "int",
        "UnitPrice": "money",
    },
    "dbo.Customers": {"CustomerID": "nchar(5)", "CompanyName": "nvarchar(40)"},
    "dbo.Employees": {"EmployeeID": "int", "FirstName": "nvarchar(10)", "LastName": "nvarchar(20)"},
    "dbo.Shippers": {"ShipperID": "int", "CompanyName": "nvarchar(40)"},
    "dbo.Orders": {
        "OrderID": "int",
        "CustomerID": "nchar(5)",
        "EmployeeID": "int",
        "ShipVia": "int",
        "ShippedDate": "datetime",
    },
    "dbo.Order Details": {
        "OrderID": "int",
        "ProductID": "int",
        "UnitPrice": "money",
        "Quantity": "smallint",
        "Discount": "real",
    },
}

_TABLES = """
CREATE SCHEMA nw;
CREATE TABLE nw.categories ("CategoryID" INT, "CategoryName" VARCHAR);
CREATE TABLE nw.products ("ProductID" INT, "ProductName" VARCHAR, "CategoryID" INT,
    "UnitPrice" DECIMAL(19, 4));
CREATE TABLE nw.customers ("CustomerID" VARCHAR, "CompanyName" VARCHAR);
CREATE TABLE nw.employees ("EmployeeID" INT, "FirstName" VARCHAR, "LastName" VARCHAR);
CREATE TABLE nw.shippers ("ShipperID" INT, "CompanyName" VARCHAR);
CREATE TABLE nw.orders ("OrderID" INT, "CustomerID" VARCHAR, "EmployeeID" INT, "ShipVia" INT,
    "ShippedDate" TIMESTAMP);
CREATE TABLE nw.order_details ("OrderID" INT, "ProductID" INT, "UnitPrice" DECIMAL(19, 4),
    "Quantity" SMALLINT, "Discount" REAL);
INSERT INTO nw.categories VALUES (1, 'Beverages'), (2, 'Condiments');
INSERT INTO nw.products VALUES (11, 'Chai', 1, 18), (12, 'Syrup', 2, 10), (13, 'Tea', 1, 5);
INSERT INTO nw.customers VALUES ('ALFKI', 'Alfreds'), ('BONAP', 'Bon app');
INSERT INTO nw.employees VALUES (1, 'Nancy', 'Davolio'), (2, 'Andrew', 'Fuller');
INSERT INTO nw.shippers VALUES (1, 'Speedy'), (2, 'United');
INSERT INTO nw.orders VALUES (100, 'ALFKI', 1, 2, '1997-03-01'), (101, 'BONAP', 2, 1, NULL),
    (102, 'ALFKI', 2, 1, '1998-01-05');
INSERT INTO nw.order_details VALUES (100, 11, 14, 12, 0.2), (100, 12, 10, 5, 0),
    (101, 11, 18, 3, 0), (102, 13, 5, 7, 0);
"""


def _resolve(seen: list[tuple[str, str]], prefix: str = "nw"):  # noqa: ANN202 - a callback
    def resolve(schema: str, name: str) -> str | None:
        seen.append((schema, name))
        return f"{prefix}." + name.lower().replace(" ", "_")

    return resolve


Rows = list[tuple[object, ...]]
Run = Callable[[str], tuple[Rows, list[tuple[str, str]], str]]


def _plain(value: object) -> object:
    """Decimals as floats, so money compares with a float literal."""
    return float(value) if isinstance(value, decimal.Decimal) else value


def _run_duckdb(view: str) -> tuple[Rows, list[tuple[str, str]], str]:
    """Translate ``view`` for DuckDB, run it on the resolved tables; rows, calls and SQL."""
    seen: list[tuple[str, str]] = []
    sql = translate_query(view, "duckdb", _resolve(seen), schema=SCHEMA)
    con = duckdb.connect()
    con.execute(_TABLES)
    rows = [tuple(_plain(v) for v in row) for row in con.sql(sql).fetchall()]
    return rows, seen, sql


def _run_postgres(connection: Any, view: str) -> tuple[Rows, list[tuple[str, str]], str]:
    """The same on PostgreSQL, in a schema of its own (dropped afterwards)."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    seen: list[tuple[str, str]] = []
    sql = translate_query(view, "postgres", _resolve(seen, schema), schema=SCHEMA)
    cursor = connection.cursor()
    try:
        cursor.execute(_TABLES.replace("nw.", f"{schema}.").replace(" nw;", f" {schema};"))
        cursor.execute(sql)
        rows = [tuple(_plain(v) for v in row) for row in cursor.fetchall()]
    finally:
        cursor.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    return rows, seen, sql


@pytest.fixture(scope="module")
def pg_connection() -> Iterator[Any]:
    dsn = os.environ.get("DATAMIGRATE_PG_DSN")
    if not dsn:
        if os.environ.get("CI") == "true":
            pytest.fail("DATAMIGRATE_PG_DSN is not set (run scripts/postgres)")
        pytest.skip("DATAMIGRATE_PG_DSN is not set (run scripts/postgres)")
    import psycopg2

    connection = psycopg2.connect(dsn)
    connection.autocommit = True
    yield connection
    connection.close()


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def run(request: pytest.FixtureRequest) -> Run:
    """Translate a view for the engine and run it there."""
    if request.param == "duckdb":
        return _run_duckdb
    connection = request.getfixturevalue("pg_connection")
    return lambda view: _run_postgres(connection, view)


#: Northwind's Invoices view (its FROM clause verbatim): joins nested four deep on the right.
INVOICES = """CREATE VIEW Invoices AS
SELECT Orders.OrderID, Customers.CompanyName AS CustomerName,
    (FirstName + ' ' + LastName) AS Salesperson, Shippers.CompanyName AS ShipperName,
    Products.ProductName, "Order Details".Quantity
FROM Shippers INNER JOIN
    (Products INNER JOIN
        (
            (Employees INNER JOIN
                (Customers INNER JOIN Orders ON Customers.CustomerID = Orders.CustomerID)
            ON Employees.EmployeeID = Orders.EmployeeID)
        INNER JOIN "Order Details" ON Orders.OrderID = "Order Details".OrderID)
    ON Products.ProductID = "Order Details".ProductID)
ON Shippers.ShipperID = Orders.ShipVia
"""


def test_invoices_view_with_nested_bracketed_joins_reads_every_resolved_table(run: Run) -> None:
    rows, seen, sql = run(INVOICES)
    assert sorted(n for _, n in seen) == [
        "Customers", "Employees", "Order Details", "Orders", "Products", "Shippers",
    ]  # fmt: skip
    assert "shippers AS " in sql and "INNER JOIN (" in sql
    assert sorted(rows) == [
        (100, "Alfreds", "Nancy Davolio", "United", "Chai", 12),
        (100, "Alfreds", "Nancy Davolio", "United", "Syrup", 5),
        (101, "Bon app", "Andrew Fuller", "Speedy", "Chai", 3),
        (102, "Alfreds", "Andrew Fuller", "Speedy", "Tea", 7),
    ]


#: Northwind's "Product Sales for 1997": two parenthesised joins joined to each other.
PRODUCT_SALES_1997 = """CREATE VIEW "Product Sales for 1997" AS
SELECT Categories.CategoryName, Products.ProductName,
    Sum(CONVERT(money,("Order Details".UnitPrice*Quantity*(1-Discount)/100))*100) AS ProductSales
FROM (Categories INNER JOIN Products ON Categories.CategoryID = Products.CategoryID)
    INNER JOIN (Orders
        INNER JOIN "Order Details" ON Orders.OrderID = "Order Details".OrderID)
    ON Products.ProductID = "Order Details".ProductID
WHERE (((Orders.ShippedDate) Between '19970101' And '19971231'))
GROUP BY Categories.CategoryName, Products.ProductName
"""


def test_product_sales_view_joins_two_parenthesised_joins_and_divides_as_float(run: Run) -> None:
    rows, seen, sql = run(PRODUCT_SALES_1997)
    assert len(seen) == 4
    assert "//" not in sql
    # Discount is real, so T-SQL divides by 100 as float: 14 * 12 * 0.8 / 100 = 1.344
    # (1.3440 as money), times 100; integer division would make it 100.
    assert sorted(rows) == [("Beverages", "Chai", 134.4), ("Condiments", "Syrup", 50.0)]


@pytest.mark.parametrize(
    ("view", "expected"),
    [
        pytest.param(
            "SELECT d.n FROM (SELECT COUNT(*) AS n FROM (Orders INNER JOIN"
            ' ("Order Details" INNER JOIN Products ON Products.ProductID ='
            ' "Order Details".ProductID) ON Orders.OrderID = "Order Details".OrderID)) d',
            [(4,)],
            id="derived-table",
        ),
        pytest.param(
            "WITH Orders AS (SELECT o.OrderID, c.CompanyName FROM (dbo.Orders o INNER JOIN"
            " (Customers c INNER JOIN Shippers s ON s.ShipperID = 1)"
            " ON c.CustomerID = o.CustomerID)), Totals AS (SELECT OrderID, COUNT(*) AS n"
            " FROM Orders GROUP BY OrderID)"
            " SELECT Orders.OrderID, Orders.CompanyName, t.n FROM Orders"
            " INNER JOIN (Totals t INNER JOIN Orders o2 ON o2.OrderID = t.OrderID)"
            " ON Orders.OrderID = t.OrderID",
            [(100, "Alfreds", 1), (101, "Bon app", 1), (102, "Alfreds", 1)],
            id="cte-body-and-cte-names-kept",
        ),
        pytest.param(
            "SELECT c.CompanyName FROM Customers c WHERE EXISTS (SELECT 1 FROM (Orders o"
            ' INNER JOIN ("Order Details" od INNER JOIN Products p ON p.ProductID ='
            " od.ProductID) ON od.OrderID = o.OrderID) WHERE o.CustomerID = c.CustomerID"
            " AND p.ProductName = 'Tea') OR c.CustomerID IN (SELECT o.CustomerID FROM"
            " (Orders o INNER JOIN (Employees e INNER JOIN Shippers s ON s.ShipperID = 1)"
            " ON e.EmployeeID = o.EmployeeID) WHERE e.LastName = 'Fuller' AND o.ShipVia = 1"
            " AND o.OrderID = 101)",
            [("Alfreds",), ("Bon app",)],
            id="exists-and-in-subqueries",
        ),
        pytest.param(
            "SELECT o.OrderID, x.n FROM Orders o OUTER APPLY (SELECT COUNT(*) AS n FROM"
            ' ("Order Details" od INNER JOIN (Products p INNER JOIN Categories c ON'
            " c.CategoryID = p.CategoryID) ON p.ProductID = od.ProductID)"
            " WHERE od.OrderID = o.OrderID AND c.CategoryName = 'Beverages') x",
            [(100, 1), (101, 1), (102, 1)],
            id="outer-apply",
        ),
        pytest.param(
            "SELECT o.OrderID FROM Orders o CROSS APPLY (SELECT TOP 1 p.ProductName FROM"
            ' (("Order Details" od INNER JOIN Products p ON p.ProductID = od.ProductID))'
            " WHERE od.OrderID = o.OrderID ORDER BY p.ProductName) x WHERE x.ProductName"
            " = 'Chai'",
            [(100,), (101,)],
            id="cross-apply-doubly-parenthesised",
        ),
        pytest.param(
            # Quantity lives in the table the outer parentheses join: smallint / int truncates.
            "SELECT o.OrderID, Quantity / 2 AS half FROM ((Orders o INNER JOIN Customers c"
            ' ON c.CustomerID = o.CustomerID) INNER JOIN "Order Details" od ON'
            " od.OrderID = o.OrderID) WHERE od.ProductID = 11",
            [(100, 6), (101, 1)],
            id="typing-sees-the-outer-parentheses-join",
        ),
    ],
)
def test_every_nesting_shape_reads_the_resolved_tables(
    run: Run, view: str, expected: list[tuple[object, ...]]
) -> None:
    rows, _, sql = run(view)
    assert sorted(rows) == expected, sql


def test_cte_names_never_go_to_the_resolver_but_qualified_names_do() -> None:
    seen: list[tuple[str, str]] = []
    sql = (
        "WITH Orders AS (SELECT OrderID FROM dbo.Orders), Later AS (SELECT OrderID FROM"
        " (Orders INNER JOIN (Products p INNER JOIN Orders o2 ON 1 = 1) ON 1 = 1))"
        " SELECT * FROM (Later INNER JOIN (Orders INNER JOIN dbo.Later x ON 1 = 1) ON 1 = 1)"
    )
    translate_query(sql, "duckdb", _resolve(seen), schema=SCHEMA)
    assert sorted(seen) == [("", "Products"), ("dbo", "Later"), ("dbo", "Orders")]


def test_a_cte_body_reads_the_table_of_a_later_cte_name() -> None:
    # T-SQL has no forward references: inside First, Products is the table, not the CTE.
    seen: list[tuple[str, str]] = []
    sql = (
        "WITH First AS (SELECT ProductID FROM (Products p INNER JOIN Categories c"
        " ON c.CategoryID = p.CategoryID)), Products AS (SELECT * FROM First)"
        " SELECT * FROM Products"
    )
    got = translate_query(sql, "duckdb", _resolve(seen), schema=SCHEMA)
    assert sorted(seen) == [("", "Categories"), ("", "Products")]
    assert got.endswith("SELECT * FROM Products")


#: A money column as the catalogue reports it, and its raw table typed as the target types it.
PAY_SCHEMA = {"dbo.Pay": {"g": "int", "price": "money", "small": "smallmoney"}}
PAY_TABLE = """CREATE TABLE {s}.pay (g INT, price DECIMAL(19, 4), small DECIMAL(10, 4));
INSERT INTO {s}.pay VALUES (1, 14.7662, 0.1), (1, 14.7663, 0.2), (2, 0.1, 0.6);"""
PAY_VIEW = "SELECT g, AVG(price) AS a, AVG(small) AS s FROM dbo.Pay GROUP BY g"
#: SQL Server: AVG(money) and AVG(smallmoney) are money, the fifth decimal dropped.
PAY_ROWS = [
    (1, decimal.Decimal("14.7662"), decimal.Decimal("0.1500")),
    (2, decimal.Decimal("0.1000"), decimal.Decimal("0.6000")),
]


def test_avg_of_catalogue_money_is_money_on_duckdb() -> None:
    sql = translate_query(PAY_VIEW, "duckdb", _resolve([]), schema=PAY_SCHEMA)
    con = duckdb.connect()
    con.execute("CREATE SCHEMA nw;" + PAY_TABLE.format(s="nw"))
    result = con.sql(f"SELECT * FROM ({sql}) AS v ORDER BY g")
    assert [str(t) for t in result.types] == ["INTEGER", "DECIMAL(19,4)", "DECIMAL(19,4)"]
    assert result.fetchall() == PAY_ROWS


@pytest.mark.postgres
def test_avg_of_catalogue_money_is_money_on_postgres(pg_connection: Any) -> None:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    sql = translate_query(PAY_VIEW, "postgres", _resolve([], schema), schema=PAY_SCHEMA)
    cursor = pg_connection.cursor()
    try:
        cursor.execute(f"CREATE SCHEMA {schema};" + PAY_TABLE.format(s=schema))
        cursor.execute(f"SELECT * FROM ({sql}) AS v ORDER BY g")
        rows = cursor.fetchall()
    finally:
        cursor.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    # str() tells 14.7662 from 14.76620000: the scale is money's 4.
    assert [tuple(map(str, r)) for r in rows] == [tuple(map(str, r)) for r in PAY_ROWS]
