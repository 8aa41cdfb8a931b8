"""A flagged object is a disabled draft in the project, and the rest still builds."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from test_graph_fixtures import write_tiny_workspace  # noqa: E402

from datamigrate_agent.config import MigrateConfig  # noqa: E402
from datamigrate_agent.migrate import migrate  # noqa: E402
from datamigrate_agent.progress import Progress  # noqa: E402

pytestmark = pytest.mark.slow


def _results(ws: Path) -> dict:
    return json.loads((ws / "results.json").read_text())


@pytest.mark.parametrize("target", ["duckdb", "snowflake"])
def test_every_listed_model_path_is_a_file_and_flagged_ones_are_disabled(
    tmp_path: Path, target: str
) -> None:
    write_tiny_workspace(tmp_path)
    ctx = migrate(MigrateConfig(workspace=tmp_path, project_name="tiny", target=target,
                                migration=f"drafts-{target}"), progress=Progress())  # fmt: skip
    results = _results(tmp_path)
    # The draft fails nothing (dbt skips it, the dialect check too): no repair round.
    assert ctx.executed == ["assess", "plan", "generate", "test", "evaluate", "report"]
    assert results["build"]["parseError"] is None
    entries = {e["object"]: e for e in results["objects"]}
    for e in entries.values():
        assert (tmp_path / "project" / e["path"]).is_file(), e
    top_two = entries["dbo.Top Two"]
    assert top_two["status"] == "flagged"
    text = (tmp_path / "project" / top_two["path"]).read_text()
    assert text.startswith("{{ config(enabled=false) }}\n") and "SET ROWCOUNT 2" in text
    report = (tmp_path / "report.md").read_text()
    assert f"- `{top_two['path']}` (dbo.Top Two): SET ROWCOUNT" in report
    for e in entries.values():
        if e["object"] != "dbo.Top Two":
            assert "enabled=false" not in (tmp_path / "project" / e["path"]).read_text(), e
            assert "does not parse" not in (e["reason"] or ""), e
