"""A migrate process killed after generate resumes at test: generate does not run again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_graph_fixtures import write_tiny_workspace

from datamigrate_agent.config import MigrateConfig
from datamigrate_agent.migrate import migrate

pytestmark = pytest.mark.slow

_ARGS = ["--target", "duckdb", "--project-name", "tiny"]


def _start(ws: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "DATAMIGRATE_MIGRATION": "tiny-resume", "PYTHONUNBUFFERED": "1"}
    env.pop("DATAMIGRATE_PROGRESS_CONFIGMAP", None)
    cmd = [sys.executable, "-m", "datamigrate_agent", "migrate", "--workspace", str(ws), *_ARGS]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env)  # fmt: skip


def _kill_once_test_starts(proc: subprocess.Popen[str]) -> list[str]:
    seen: list[str] = []
    deadline = time.monotonic() + 120
    assert proc.stdout is not None
    for line in proc.stdout:
        seen.append(line)
        event = json.loads(line) if line.startswith("{") else {}
        # The test node's first event: generate's checkpoint is on disk (durability="sync").
        if event.get("event") == "progress" and event.get("phase") == "Validating":
            proc.send_signal(signal.SIGKILL)
            break
        assert time.monotonic() < deadline, "migrate never reached the test node"
    proc.wait(timeout=30)
    return seen


def test_a_killed_migration_resumes_after_the_last_finished_node(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_tiny_workspace(tmp_path)
    proc = _start(tmp_path)
    seen = _kill_once_test_starts(proc)
    assert proc.returncode == -signal.SIGKILL
    finished = [json.loads(x)["node"] for x in seen if '"Node finished"' in x]
    assert finished == ["assess", "plan", "generate"]
    assert not (tmp_path / "results.json").exists()

    monkeypatch.setenv("DATAMIGRATE_MIGRATION", "tiny-resume")
    cfg = MigrateConfig(workspace=tmp_path, target="duckdb", project_name="tiny")
    ctx = migrate(cfg)
    assert ctx.executed[0] == "test"
    assert "generate" not in ctx.executed and "assess" not in ctx.executed
    assert ctx.executed[-1] == "report"
    results = json.loads((tmp_path / "results.json").read_text())
    assert {o["object"] for o in results["objects"]} >= {"dbo.Customers", "dbo.Order Details"}


def test_changed_input_starts_over_instead_of_resuming(tmp_path: Path) -> None:
    write_tiny_workspace(tmp_path)
    first = migrate(MigrateConfig(workspace=tmp_path, project_name="tiny", migration="m"))
    assert first.executed[0] == "assess"
    second = migrate(MigrateConfig(workspace=tmp_path, project_name="tiny", migration="m",
                                   materialization="table"))  # fmt: skip
    assert second.executed[:3] == ["assess", "plan", "generate"]
    sql = (tmp_path / "project" / "dbt_project.yml").read_text()
    assert "+materialized: table" in sql
