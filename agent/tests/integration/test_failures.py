"""Bad input and failing builds: a clear error or a flagged object, never a crash."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from conftest import agent

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from test_graph_fixtures import write_tiny_workspace  # noqa: E402

from datamigrate_agent.metadata import View, dump_metadata, load_metadata  # noqa: E402

pytestmark = pytest.mark.slow


def test_malformed_metadata_is_a_permanent_error_naming_the_field(tmp_path: Path) -> None:
    write_tiny_workspace(tmp_path)
    doc = json.loads((tmp_path / "metadata.json").read_text())
    del doc["tables"][0]["columns"][0]["dataType"]
    (tmp_path / "metadata.json").write_text(json.dumps(doc))
    term = tmp_path / "termination"
    run = agent(
        "migrate",
        "--workspace",
        str(tmp_path),
        "--target",
        "duckdb",
        "--project-name",
        "tiny",
        env={"DATAMIGRATE_TERMINATION_LOG": str(term)},
    )
    assert run.code == 65, run.text[-2000:]
    message = term.read_text()
    assert message.startswith("MetadataMalformed: ") and "tables[0].columns[0]" in message
    assert not (tmp_path / "project").exists()


def test_missing_metadata_is_a_permanent_error(tmp_path: Path) -> None:
    run = agent(
        "migrate",
        "--workspace",
        str(tmp_path),
        "--target",
        "duckdb",
        "--project-name",
        "x",
        env={"DATAMIGRATE_TERMINATION_LOG": str(tmp_path / "t")},
    )
    assert run.code == 65
    assert "not found" in (tmp_path / "t").read_text()


def test_a_model_that_fails_dbt_build_is_flagged_and_the_rest_verified(tmp_path: Path) -> None:
    write_tiny_workspace(tmp_path)
    doc = load_metadata(tmp_path / "metadata.json")
    doc.views.append(View(schema="dbo", name="Broken",
                          definition="CREATE VIEW Broken AS SELECT NoSuchColumn FROM Customers",
                          dependencies=["dbo.Customers"]))  # fmt: skip
    dump_metadata(doc, tmp_path / "metadata.json")
    run = agent(
        "migrate",
        "--workspace",
        str(tmp_path),
        "--target",
        "duckdb",
        "--project-name",
        "tiny",
        "--max-repair-attempts",
        "1",
    )
    assert run.code == 0, run.text[-3000:]
    results = {o["object"]: o for o in json.loads((tmp_path / "results.json").read_text())[
        "objects"]}  # fmt: skip
    broken = results["dbo.Broken"]
    assert broken["status"] == "flagged"
    assert "nosuchcolumn" in broken["reason"].lower()
    assert broken["attempts"] <= 1
    assert results["dbo.Customers"]["status"] == "verified"
    assert results["dbo.Order Details"]["status"] == "verified"
    model = tmp_path / "project" / broken["path"]
    assert model.read_text().startswith("{{ config(enabled=false) }}")


def test_an_llm_repair_goes_back_through_dbt_build(tmp_path: Path) -> None:
    from test_llm import ScriptedChat

    from datamigrate_agent.config import MigrateConfig
    from datamigrate_agent.migrate import migrate
    from datamigrate_agent.progress import Progress

    write_tiny_workspace(tmp_path)
    doc = load_metadata(tmp_path / "metadata.json")
    doc.views.append(View(schema="dbo", name="Broken",
                          definition="CREATE VIEW Broken AS SELECT NoSuchColumn FROM Customers",
                          dependencies=["dbo.Customers"]))  # fmt: skip
    dump_metadata(doc, tmp_path / "metadata.json")
    fixed = '```sql\nselect "CompanyName" from __ref_stg_tiny__customers\n```'
    chat = ScriptedChat(replies=[fixed], prompts=[])
    cfg = MigrateConfig(workspace=tmp_path, project_name="tiny", provider="openai",
                        migration="llm-e2e")  # fmt: skip
    ctx = migrate(cfg, progress=Progress(), chat=chat)
    assert ctx.executed.count("test") == 2 and "repair" in ctx.executed
    results = {o["object"]: o for o in json.loads((tmp_path / "results.json").read_text())[
        "objects"]}  # fmt: skip
    broken = results["dbo.Broken"]
    assert broken["status"] == "verified-by-build", broken
    assert broken["fixes"] == ["LLM repair 1"]
    assert len(chat.prompts) == 1
