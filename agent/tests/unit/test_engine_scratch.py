"""A SIGKILLed or OOM-killed agent's scratch folder goes at the next run; a live one's stays."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from datamigrate_agent.config import MigrateConfig
from datamigrate_agent.nodes import _engine

_BUILDER = """
import sys, time
from pathlib import Path
from datamigrate_agent.config import MigrateConfig
from datamigrate_agent.nodes import _engine

_engine._SCRATCH = Path(sys.argv[1])
cfg = MigrateConfig(workspace=Path(sys.argv[2]), project_name="p")
print(_engine.duckdb_path(cfg), flush=True)
time.sleep(120)
"""


@pytest.fixture
def shm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    folder = tmp_path / "shm"
    folder.mkdir()
    monkeypatch.setattr(_engine, "_SCRATCH", folder)
    monkeypatch.delenv("DATAMIGRATE_DUCKDB_PATH", raising=False)
    yield folder
    _engine.discard_scratch()


def _builder(shm: Path, workspace: Path) -> tuple[subprocess.Popen[str], Path]:
    """An agent process that made its scratch folder and is still running."""
    workspace.mkdir()
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(_BUILDER), str(shm),
                             str(workspace)], stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdout is not None
    return proc, Path(proc.stdout.readline().strip()).parent


def test_the_next_build_removes_a_sigkilled_agents_folder_and_keeps_a_live_ones(
    shm: Path, tmp_path: Path
) -> None:
    killed, killed_dir = _builder(shm, tmp_path / "a")
    live, live_dir = _builder(shm, tmp_path / "b")
    try:
        killed.send_signal(signal.SIGKILL)
        assert killed.wait(timeout=30) == -signal.SIGKILL
        assert killed_dir.is_dir()  # nothing ran at its end

        (tmp_path / "c").mkdir()
        mine = Path(_engine.duckdb_path(MigrateConfig(workspace=tmp_path / "c", project_name="p")))
        assert not killed_dir.exists()
        assert live_dir.is_dir()
        assert sorted(shm.iterdir()) == sorted([live_dir, mine.parent])
    finally:
        live.kill()
        live.wait(timeout=30)


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait(timeout=30)
    return proc.pid


def test_only_folders_whose_owner_is_provably_gone_are_removed(shm: Path) -> None:
    owner = _engine._owner_tag()
    assert owner is not None
    namespace, pid, start = owner.split("-")
    dead = _dead_pid()
    folders = {
        "dm-agent-build-ab12_x9z": True,  # an older agent's name: owner unknown
        f"dm-agent-build-{int(namespace) + 1}-{dead}-5-r1": True,  # another PID namespace
        f"dm-agent-build-{namespace}-{pid}-{start}-r2": True,  # this very process
        f"dm-agent-build-{namespace}-{dead}-{start}-r3": False,  # its process is gone
        f"dm-agent-build-{namespace}-{pid}-{int(start) - 1}-r4": False,  # PID since reused
    }
    for name in folders:
        (shm / name).mkdir()
        (shm / name / "warehouse.duckdb").write_bytes(b"x")
    not_a_dir = shm / f"dm-agent-build-{namespace}-{dead}-{start}-r5"
    not_a_dir.write_bytes(b"x")

    removed = _engine.sweep_stale_scratch()

    assert sorted(removed) == sorted(n for n, kept in folders.items() if not kept)
    assert sorted(p.name for p in shm.iterdir()) == sorted(
        [not_a_dir.name, *(n for n, kept in folders.items() if kept)]
    )


def test_a_folder_of_another_user_is_left_alone(shm: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    owner = _engine._owner_tag()
    assert owner is not None
    namespace, _, start = owner.split("-")
    (shm / f"dm-agent-build-{namespace}-{_dead_pid()}-{start}-r6").mkdir()
    monkeypatch.setattr(os, "getuid", lambda: os.stat(shm).st_uid + 1)
    assert _engine.sweep_stale_scratch() == []
    assert len(list(shm.iterdir())) == 1
