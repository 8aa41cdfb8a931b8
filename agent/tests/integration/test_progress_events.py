"""The progress a migration reports: a total from the first event, counts that never go
back through build and repair rounds, and final counts that are the results'."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from test_graph_fixtures import write_tiny_workspace  # noqa: E402

from datamigrate_agent.config import MigrateConfig  # noqa: E402
from datamigrate_agent.metadata import View, dump_metadata, load_metadata  # noqa: E402
from datamigrate_agent.migrate import migrate  # noqa: E402
from datamigrate_agent.progress import Progress  # noqa: E402

pytestmark = pytest.mark.slow

CATEGORY = {"verified": "completed", "verified-by-build": "completed", "flagged": "skipped",
            "failed": "failed"}  # fmt: skip


def test_counts_never_go_back_and_end_as_the_results(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_tiny_workspace(tmp_path)
    doc = load_metadata(tmp_path / "metadata.json")
    doc.views.append(View(schema="dbo", name="Broken",
                          definition="CREATE VIEW Broken AS SELECT NoSuchColumn FROM Customers",
                          dependencies=["dbo.Customers"]))  # fmt: skip
    dump_metadata(doc, tmp_path / "metadata.json")
    caplog.set_level(logging.INFO, logger="datamigrate_agent")
    cfg = MigrateConfig(workspace=tmp_path, project_name="tiny", migration="progress-e2e",
                        max_repair_attempts=1)  # fmt: skip
    ctx = migrate(cfg, progress=Progress())
    assert ctx.executed.count("test") == 2  # a repair round rebuilt the project

    progress = [r for r in caplog.records if r.getMessage() == "Progress"]
    events = [r.fields for r in progress]  # type: ignore[attr-defined]
    assert events and all(e["total"] == 6 for e in events), events[0]
    positions = [e["completed"] + e["failed"] + e["skipped"] for e in events]
    assert positions == sorted(positions), positions
    phases = [e["phase"] for e in events]
    assert phases == sorted(phases, key=["Generating", "Validating"].index)
    results = json.loads((tmp_path / "results.json").read_text())
    expected = dict.fromkeys(CATEGORY.values(), 0)
    for o in results["objects"]:
        expected[CATEGORY[o["status"]]] += 1
    last = events[-1]
    assert {k: last[k] for k in expected} == expected and positions[-1] == 6
