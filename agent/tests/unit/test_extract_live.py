"""The live catalogue reader against recorded result sets, and against a closed port."""

from __future__ import annotations

import argparse
import base64
import decimal
import json
import logging
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from datamigrate_agent.__main__ import main
from datamigrate_agent.errors import EXIT_RETRYABLE, PermanentError, RetryableError
from datamigrate_agent.extract import cli, live
from datamigrate_agent.extract._select import Selection
from datamigrate_agent.metadata import MetadataDocument, iter_sample_rows, load_metadata

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "extract"
RECORDED = json.loads((FIXTURE / "catalogue_northwind_small.json").read_text(encoding="utf-8"))
#: A login name as a Secret would hold it: distinctive, so a leak into any output is found.
USER = "migrator-login-from-secret"


def _python_value(value: Any) -> Any:
    """Undo the fixture's tags into the objects pymssql returns."""
    if isinstance(value, dict):
        if "bytes" in value:
            return bytes.fromhex(value["bytes"])
        if "datetime" in value:
            return datetime.fromisoformat(value["datetime"])
        if "decimal" in value:
            return decimal.Decimal(value["decimal"])
    return value


class Recorded:
    """A Runner that answers from the recorded result sets and remembers what it was asked."""

    def __init__(self) -> None:
        self.queries: list[live.Query] = []

    def __call__(self, query: live.Query) -> list[dict[str, Any]]:
        self.queries.append(query)
        result = RECORDED[query.name]
        return [
            {c: _python_value(v) for c, v in zip(result["columns"], row, strict=True)}
            for row in result["rows"]
        ]


def _read(selection: Selection | None = None) -> MetadataDocument:
    return live.read_catalogue(
        Recorded(), source_name="sql1:1433", database="Northwind", selection=selection
    )


def test_every_catalogue_query_has_a_recorded_result_and_no_parameters_in_text() -> None:
    runner = Recorded()
    live.read_catalogue(runner, source_name="s", database="Northwind")
    assert [q.name for q in runner.queries] == list(live.QUERIES)
    for query in runner.queries:
        assert "%" not in query.sql and query.params == ()


def test_tables_columns_and_lengths_follow_the_metadata_conventions() -> None:
    doc = _read()
    assert doc.source.kind == "sqlserver" and doc.source.database == "Northwind"
    assert doc.source.server_version is not None and "2022" in doc.source.server_version
    assert [t.qualified_name for t in doc.tables] == [
        "dbo.Customers", "dbo.Employees", "dbo.Order Details", "dbo.Orders", "dbo.Shipments",
        "sales.Targets",
    ]  # fmt: skip
    customers = doc.table("dbo", "Customers")
    assert customers is not None and customers.description == "Customers of Northwind"
    shapes = {c.name: (c.data_type, c.max_length, c.nullable) for c in customers.columns}
    assert shapes == {
        "CustomerID": ("nchar", 5, False),  # sys.columns says 10 bytes
        "CompanyName": ("nvarchar", 40, False),
        "Region": ("nvarchar", 15, True),
        "Notes": ("nvarchar", -1, True),
    }
    assert customers.columns[0].description == "Five-letter code"
    employees = doc.table("dbo", "Employees")
    assert employees is not None
    photo = employees.column("Photo")
    assert photo is not None and (photo.data_type, photo.max_length) == ("image", None)
    orders = doc.table("dbo", "Orders")
    assert orders is not None
    ship = orders.column("ShipCode")
    assert ship is not None
    assert (ship.data_type, ship.max_length, ship.user_type) == ("varchar", 10, "shipcode")
    freight = orders.column("Freight")
    assert freight is not None
    assert (freight.precision, freight.default, freight.default_name) == (
        None,
        "((0))",
        "DF_Orders_Freight",
    )
    order_id = orders.column("OrderID")
    assert order_id is not None and order_id.identity is not None
    assert (order_id.identity.seed, order_id.identity.increment) == (10248, 1)
    assert orders.row_count == 830
    shipments = doc.table("dbo", "Shipments")
    assert shipments is not None
    shaped = {c.name: (c.data_type, c.max_length, c.precision, c.scale) for c in shipments.columns}
    assert shaped["ShippedAt"] == ("datetime2", None, None, 3)
    assert shaped["Weight"] == ("decimal", None, 9, 3)
    assert shaped["Label"] == ("nvarchar", 128, None, None)  # sysname
    guid = shipments.column("ShipmentID")
    assert guid is not None and guid.rowguidcol and guid.default == "(newid())"


def test_keys_are_in_key_order_and_constraints_are_complete() -> None:
    doc = _read()
    details = doc.table("dbo", "Order Details")
    assert details is not None and details.primary_key is not None
    assert details.primary_key.columns == ["OrderID", "ProductID"]  # recorded 2 before 1
    assert details.foreign_keys[0].on_delete == "CASCADE"
    line_total = details.column("LineTotal")
    assert line_total is not None and line_total.computed == "([UnitPrice]*[Quantity])"
    assert {c.name: c.column for c in details.check_constraints} == {
        "CK_Discount": "Discount",
        "CK_Quantity": "Quantity",
    }
    discount = details.column("Discount")
    assert discount is not None and (discount.data_type, discount.precision) == ("real", 24)
    shipments = doc.table("dbo", "Shipments")
    assert shipments is not None
    fk = shipments.foreign_keys[0]
    assert (fk.columns, fk.ref_table, fk.ref_columns, fk.on_update) == (
        ["OrderID", "ProductID"],
        "Order Details",
        ["OrderID", "ProductID"],
        "SET NULL",
    )
    assert shipments.primary_key is not None and shipments.primary_key.clustered is False
    assert [u.name for u in shipments.unique_keys] == ["UQ_Shipments_TrackingNo"]
    assert shipments.indexes[0].columns == ["OrderID", "ProductID"]
    employees = doc.table("dbo", "Employees")
    assert employees is not None
    assert employees.check_constraints[0].column is None  # table-level
    assert employees.foreign_keys[0].ref_columns == ["EmployeeID"]


def test_modules_parameters_dependencies_and_unreadable_definitions() -> None:
    doc = _read()
    view = doc.views[0]
    assert (view.name, view.dependencies, view.description) == (
        "Order Subtotals",
        ["dbo.Order Details"],
        "Totals per order",
    )
    assert view.columns is not None and [c.name for c in view.columns] == ["OrderID", "Subtotal"]
    assert view.definition.startswith('create view "Order Subtotals"')
    procs = {p.name: p for p in doc.procedures}
    assert set(procs) == {"CustOrderHist"}
    hist = procs["CustOrderHist"]
    assert hist.parameters is not None
    assert [(p.name, p.data_type, p.max_length) for p in hist.parameters] == [
        ("@CustomerID", "nchar", 5)
    ]
    assert hist.dependencies == ["dbo.Customers", "dbo.Order Details", "dbo.Orders"]
    funcs = {f.name: f for f in doc.functions}
    assert (funcs["fnFreightBand"].kind, funcs["fnFreightBand"].returns) == (
        "scalar",
        "nvarchar(10)",
    )
    band_params = funcs["fnFreightBand"].parameters
    assert band_params is not None
    assert [(p.name, p.default) for p in band_params] == [("@freight", "100")]  # from the text
    assert funcs["fnOrdersOf"].kind == "inline"
    assert doc.triggers[0].table == "Orders"
    assert doc.triggers[0].events == ["INSERT", "UPDATE"]
    assert [(p.object, p.batch) for p in doc.problems] == [("dbo.SecretProc", None)]
    assert "WITH ENCRYPTION" in doc.problems[0].error
    assert doc.user_types[0].name == "shipcode" and doc.user_types[0].max_length == 10
    assert doc.schemas == ["dbo", "sales"]


def test_schema_and_glob_selection_apply_to_live_objects() -> None:
    doc = _read(Selection(schemas=("sales",)))
    assert [t.qualified_name for t in doc.tables] == ["sales.Targets"]
    assert doc.views == [] and doc.triggers == []
    doc = _read(Selection(include=("Order*",), exclude=("dbo.Orders",)))
    assert [t.name for t in doc.tables] == ["Order Details"]
    assert [v.name for v in doc.views] == ["Order Subtotals"]
    assert doc.triggers == []  # its table was not selected


def test_sample_rows_are_read_with_quoted_names_and_encoded(tmp_path: Path) -> None:
    runner = Recorded()
    doc = live.read_catalogue(runner, source_name="s", database="Northwind")
    rows = live.read_samples(runner, doc, 500)
    sample = next(q for q in runner.queries if q.name == "sample:dbo.Order Details")
    assert sample.sql == (
        "SELECT TOP (%s) [OrderID], [ProductID], [UnitPrice], [Quantity], [Discount], [LineTotal]"
        " FROM [dbo].[Order Details] ORDER BY [OrderID], [ProductID]"
    )
    assert sample.params == (500,)
    cli.write_workspace(doc, rows, tmp_path, complete=False)
    loaded = load_metadata(tmp_path / "metadata.json")
    orders = loaded.table("dbo", "Orders")
    assert orders is not None and orders.sample_data is not None
    assert orders.sample_data.complete is False  # 1 of 830 rows
    assert list(iter_sample_rows(tmp_path, orders)) == [
        [10248, "VINET", 5, "1996-07-04T00:00:00", decimal.Decimal("32.3800"), "A1",
         "00000000000007d1"],
    ]  # fmt: skip
    employees = loaded.table("dbo", "Employees")
    assert employees is not None
    assert list(iter_sample_rows(tmp_path, employees))[0][3] == "151c2f00"
    shipments = loaded.table("dbo", "Shipments")
    assert shipments is not None and shipments.sample_data is not None
    assert shipments.sample_data.row_count == 0 and shipments.sample_data.complete


def test_quote_name_doubles_closing_brackets() -> None:
    assert live.quote_name("a]b") == "[a]]b]"
    table = _read().tables[0].model_copy(update={"name": "100% ]odd"})
    assert "[100%% ]]odd]" in live.sample_query(table, 5).sql


def test_a_failing_sample_query_is_a_problem_not_a_failure() -> None:
    doc = _read()

    def run(query: live.Query) -> list[dict[str, Any]]:
        if query.name == "sample:dbo.Orders":
            raise ValueError("permission denied")
        return Recorded()(query)

    rows = live.read_samples(run, doc, 10)
    assert "dbo.orders" not in rows and "dbo.customers" in rows
    assert doc.problems[-1].object == "dbo.Orders"
    assert "permission denied" in doc.problems[-1].error


def test_unreachable_server_is_retryable_and_the_password_never_shows(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = base64.b64encode(b"do-not-log-me").decode()
    options = live.ServerOptions(
        host="127.0.0.1", port=1, database="Northwind", user=USER, password=secret,
        login_timeout=2,
    )  # fmt: skip
    assert secret not in repr(options) and USER not in repr(options)
    started = time.monotonic()
    with caplog.at_level(logging.DEBUG), pytest.raises(RetryableError) as err:
        live.extract_server(options, selection=Selection(), sample_rows=0)
    assert time.monotonic() - started < 30
    assert err.value.code == "SourceUnreachable"
    assert "127.0.0.1:1" in str(err.value)
    assert err.value.__cause__ is None  # the driver's text is not chained into the message
    out = capsys.readouterr()
    fields = json.dumps([getattr(r, "fields", {}) for r in caplog.records])
    for value in (secret, USER):
        assert value not in caplog.text + fields + out.out + out.err + str(err.value)


@pytest.fixture
def restore_root_logging() -> Iterator[None]:
    """``main`` replaces the root logger's handlers; put them back after the test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("restore_root_logging")
def test_cli_with_server_maps_unreachable_to_retryable_and_logs_no_login(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = "hunter2-do-not-log"
    monkeypatch.setenv(live.USER_ENV, USER)
    monkeypatch.setenv(live.PASSWORD_ENV, secret)
    termination = tmp_path / "termination-log"
    monkeypatch.setenv("DATAMIGRATE_TERMINATION_LOG", str(termination))
    status = main(
        ["extract", "--workspace", str(tmp_path / "ws"), "--server", "127.0.0.1", "--port", "1",
         "--database", "Northwind", "--login-timeout", "2", "--no-encrypt"]
    )  # fmt: skip
    assert status == EXIT_RETRYABLE
    assert not (tmp_path / "ws" / "metadata.json").exists()
    out = capsys.readouterr()
    lines = [json.loads(line) for line in out.out.splitlines()]  # the step pod's log
    connecting = [line for line in lines if line["msg"] == "Connecting to SQL Server"]
    assert len(connecting) == 1
    assert (connecting[0]["server"], connecting[0]["database"]) == ("127.0.0.1:1", "Northwind")
    assert "user" not in connecting[0]
    assert [line["code"] for line in lines if line["msg"] == "Step failed"] == ["SourceUnreachable"]
    for value in (secret, USER):
        assert value not in out.out + out.err + termination.read_text(encoding="utf-8")


def test_cli_with_server_needs_a_database_and_a_user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(["--workspace", str(tmp_path), "--server", "db"])
    with pytest.raises(PermanentError, match="--database"):
        cli.run(args)
    monkeypatch.delenv(live.USER_ENV, raising=False)
    args = parser.parse_args(["--workspace", str(tmp_path), "--server", "db", "--database", "x"])
    with pytest.raises(PermanentError, match=live.USER_ENV):
        cli.run(args)


class _FailingCursor:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def __enter__(self) -> _FailingCursor:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def execute(self, sql: str, params: object) -> None:
        raise self.error


class _FailingConnection:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def cursor(self) -> _FailingCursor:
        return _FailingCursor(self.error)


def test_query_failures_are_classified_retryable_or_permanent() -> None:
    import pymssql

    denied = pymssql.ProgrammingError(
        (229, b"The SELECT permission was denied on the object 'sql_modules'.")
    )
    run = live.pymssql_runner(_FailingConnection(denied))
    with pytest.raises(PermanentError, match="permission was denied"):
        run(live.Query("modules", live.QUERIES["modules"]))
    lost = pymssql.OperationalError((20047, b"DB-Lib error message 20047:\nDBPROCESS is dead"))
    run = live.pymssql_runner(_FailingConnection(lost))
    with pytest.raises(RetryableError, match="DBPROCESS is dead"):
        run(live.Query("tables", live.QUERIES["tables"]))
