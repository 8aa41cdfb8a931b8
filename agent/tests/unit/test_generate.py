"""generate: the dbt project's files (casts, quoting, one declaration each, key tests)."""

from __future__ import annotations

from pathlib import Path

import yaml
from test_graph import run_until_test
from test_graph_fixtures import write_tiny_workspace

from datamigrate_agent.nodes._tsql import procedure_shape


def _yml(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def test_staging_model_selects_every_column_cast_and_quoted(tmp_path: Path) -> None:
    write_tiny_workspace(tmp_path)
    run_until_test(tmp_path)
    sql = (tmp_path / "project/models/staging/tiny/stg_tiny__customers.sql").read_text()
    assert 'cast("CustomerID" as VARCHAR) as "CustomerID"' in sql
    assert 'cast("Order" as INTEGER) as "Order"' in sql
    assert "{{ source('tiny', 'customers') }}" in sql


def test_each_model_and_source_table_is_declared_once(tmp_path: Path) -> None:
    write_tiny_workspace(tmp_path)
    run_until_test(tmp_path)
    models: list[str] = []
    tables: list[str] = []
    for path in (tmp_path / "project" / "models").rglob("*.yml"):
        doc = _yml(path)
        models += [m["name"] for m in doc.get("models", [])]
        tables += [t["name"] for s in doc.get("sources", []) for t in s["tables"]]
    assert sorted(models) == sorted(set(models))
    assert sorted(tables) == ["customers", "order_details"]
    ymls = sorted(p.name for p in (tmp_path / "project/models/staging/tiny").glob("*.yml"))
    assert ymls == ["_tiny__models.yml", "_tiny__sources.yml"]
    source = _yml(tmp_path / "project/models/staging/tiny/_tiny__sources.yml")["sources"][0]
    assert {t["identifier"] for t in source["tables"]} == {"Customers", "Order Details"}


def test_key_tests_cover_composite_primary_keys_and_foreign_keys(tmp_path: Path) -> None:
    write_tiny_workspace(tmp_path)
    run_until_test(tmp_path)
    doc = _yml(tmp_path / "project/models/staging/tiny/_tiny__models.yml")
    details = next(m for m in doc["models"] if m["name"] == "stg_tiny__order_details")
    combo = details["data_tests"][0]["datamigrate_unique_combination"]["arguments"]
    assert combo["columns"] == ['"OrderID"', '"CustomerID"']
    customer_id = next(c for c in details["columns"] if c["name"] == "CustomerID")
    rel = customer_id["data_tests"][0]["relationships"]["arguments"]
    assert rel == {"to": "ref('stg_tiny__customers')", "field": '"CustomerID"'}
    macros = (tmp_path / "project/macros/datamigrate_tests.sql").read_text()
    assert "{% test datamigrate_unique_combination(model, columns) %}" in macros


def test_a_comment_with_instructions_does_not_change_generated_sql(tmp_path: Path) -> None:
    clean, injected = tmp_path / "clean", tmp_path / "injected"
    write_tiny_workspace(clean, injection=False)
    write_tiny_workspace(injected, injection=True)
    a, _ = run_until_test(clean)
    b, _ = run_until_test(injected)
    assert a["sql"] == b["sql"]
    for sql in b["sql"].values():
        assert "DROP" not in sql.upper() and "ignore previous" not in sql.lower()


def test_procedure_shapes_name_the_construct_that_blocks_conversion() -> None:
    cases = {
        "create proc p as set rowcount 10 select a from t": "SET ROWCOUNT",
        "create proc p as select a from t; select b from u": "2 result sets",
        "create proc p as update t set a = 1": "modifies data (UPDATE)",
        "create proc p as select a into #t from u select * from #t": "temporary tables",
        "create proc p @x int output as select @x = count(*) from t": "assigns variables",
        "create proc p as if 1 = 1 select 1": "control flow (IF)",
    }
    for text, reason in cases.items():
        shape = procedure_shape(text, ["@x"] if "@x int" in text else [])
        assert shape.select is None, text
        assert any(reason in r for r in shape.reasons), (text, shape.reasons)
    ok = procedure_shape("create proc p as begin set nocount on; select a from t end", [])
    assert ok.select == "select a from t"
    with_param = procedure_shape("create proc p @x int as select a from t where b = @x", ["@x"])
    assert with_param.select == "select a from t where b = @x"


def test_procedure_parameters_become_dbt_vars_null_until_set(tmp_path: Path) -> None:
    from datamigrate_agent.metadata import Parameter, Routine, dump_metadata, load_metadata

    write_tiny_workspace(tmp_path)
    doc = load_metadata(tmp_path / "metadata.json")
    doc.procedures.append(Routine(
        schema="dbo", name="ByCustomer", kind="procedure",
        parameters=[Parameter(name="@Cust", ordinal=1, data_type="nchar", max_length=5)],
        definition="CREATE PROCEDURE ByCustomer @Cust nchar(5) AS "
                   "SELECT OrderID FROM [Order Details] WHERE CustomerID = @Cust",
        dependencies=["dbo.Order Details"]))  # fmt: skip
    dump_metadata(doc, tmp_path / "metadata.json")
    state, _ = run_until_test(tmp_path)
    sql = state["sql"]["dbo.bycustomer"]
    assert "{{ datamigrate_param('tiny__by_customer__cust', 'VARCHAR') }}" in sql
    assert "@Cust" not in sql and "__param_" not in sql
    assert "var('tiny__by_customer__cust')" in state["outcomes"]["dbo.bycustomer"]["note"]


def test_jinja_in_source_text_stays_literal(tmp_path: Path) -> None:
    import jinja2

    from datamigrate_agent.metadata import View, dump_metadata, load_metadata

    write_tiny_workspace(tmp_path)
    doc = load_metadata(tmp_path / "metadata.json")
    evil = '{{ run_query("drop table customers") }}'
    doc.views.append(
        View(
            schema="dbo",
            name="Evil",
            dependencies=["dbo.Customers"],
            definition=f"CREATE VIEW Evil AS SELECT '{evil}' AS t FROM Customers",
        )
    )
    doc.tables[0].columns[1].description = "{% do run_query('x') %} described"
    dump_metadata(doc, tmp_path / "metadata.json")
    state, _ = run_until_test(tmp_path)
    assert "dbo.evil" in state["sql"], state["outcomes"].get("dbo.evil")
    sql = (tmp_path / "project" / state["plan"]["dbo.evil"]["path"]).read_text()
    rendered = jinja2.Environment().from_string(sql).render(ref=lambda m: f"<{m}>")
    assert evil in rendered and "<stg_tiny__customers>" in rendered
    doc = _yml(tmp_path / "project/models/staging/tiny/_tiny__models.yml")
    column = doc["models"][0]["columns"][1]
    assert column["description"].startswith("{% raw %}{% do run_query('x') %} described")


def test_a_flagged_procedure_leaves_a_disabled_draft_with_its_tsql(tmp_path: Path) -> None:
    import jinja2

    write_tiny_workspace(tmp_path)
    state, _ = run_until_test(tmp_path)
    reason = state["outcomes"]["dbo.top two"]["reason"]
    text = (tmp_path / "project" / state["plan"]["dbo.top two"]["path"]).read_text()
    assert text.startswith("{{ config(enabled=false) }}\n")
    assert reason in text
    # The original T-SQL sits in a Jinja comment: a person sees it, dbt compiles nothing.
    assert "SET ROWCOUNT 2\nSELECT CompanyName FROM Customers ORDER BY CompanyName" in text
    rendered = jinja2.Environment().from_string(text).render(config=lambda **kw: "")
    assert "ROWCOUNT" not in rendered.split("*/", 1)[1]


def test_a_view_on_a_missing_table_keeps_its_translation_as_a_disabled_draft(
    tmp_path: Path,
) -> None:
    from datamigrate_agent.metadata import View, dump_metadata, load_metadata

    write_tiny_workspace(tmp_path)
    doc = load_metadata(tmp_path / "metadata.json")
    doc.views.append(
        View(
            schema="dbo",
            name="Orphan",
            dependencies=["dbo.Customers"],
            definition="CREATE VIEW Orphan AS SELECT c.CompanyName, n.X "
            "FROM Customers c JOIN Nowhere n ON n.Id = c.CustomerID",
        )
    )
    dump_metadata(doc, tmp_path / "metadata.json")
    state, _ = run_until_test(tmp_path)
    assert "not in the metadata" in state["outcomes"]["dbo.orphan"]["reason"]
    text = (tmp_path / "project" / state["plan"]["dbo.orphan"]["path"]).read_text()
    assert text.startswith("{{ config(enabled=false) }}\n")
    assert "{{ ref('stg_tiny__customers') }}" in text and "{#" not in text


def test_a_disabled_comment_cannot_be_closed_by_the_source_text(tmp_path: Path) -> None:
    import jinja2

    from datamigrate_agent.metadata import Routine, dump_metadata, load_metadata

    write_tiny_workspace(tmp_path)
    doc = load_metadata(tmp_path / "metadata.json")
    doc.procedures.append(Routine(
        schema="dbo", name="Sneaky", kind="procedure", parameters=[],
        definition="CREATE PROCEDURE Sneaky AS\nIF 1 = 1 SELECT '#} */ {{ run_query(1) }}'",
        dependencies=[]))  # fmt: skip
    dump_metadata(doc, tmp_path / "metadata.json")
    state, _ = run_until_test(tmp_path)
    text = (tmp_path / "project" / state["plan"]["dbo.sneaky"]["path"]).read_text()
    calls: list[object] = []
    env = jinja2.Environment()
    env.from_string(text).render(config=lambda **kw: "", run_query=calls.append)
    assert calls == [] and "run_query" in text
