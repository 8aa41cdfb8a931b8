"""The build's scratch folder (memory-backed DuckDB copy) never outlives the migrate run."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from test_graph_fixtures import write_tiny_workspace  # noqa: E402

from datamigrate_agent import graph  # noqa: E402
from datamigrate_agent.config import MigrateConfig  # noqa: E402
from datamigrate_agent.migrate import migrate  # noqa: E402
from datamigrate_agent.nodes import _engine  # noqa: E402
from datamigrate_agent.progress import Progress  # noqa: E402

pytestmark = pytest.mark.slow


def _scratch(folder: Path) -> list[Path]:
    return sorted(folder.glob("dm-agent-build-*"))


def test_a_run_failing_after_the_build_leaves_no_scratch_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shm = tmp_path / "shm"
    shm.mkdir()
    monkeypatch.setattr(_engine, "_SCRATCH", shm)
    seen: list[list[Path]] = []

    def broken_evaluate(state: object, runtime: object) -> dict:
        seen.append(_scratch(shm))
        raise RuntimeError("evaluate broke")

    monkeypatch.setattr(graph, "evaluate_results", broken_evaluate)
    ws = tmp_path / "ws"
    write_tiny_workspace(ws)
    with pytest.raises(RuntimeError, match="evaluate broke"):
        migrate(MigrateConfig(workspace=ws, project_name="tiny", migration="scratch-fail"),
                progress=Progress())  # fmt: skip
    assert len(seen) == 1 and len(seen[0]) == 1  # the build ran on a scratch copy
    assert _scratch(shm) == []
    assert _engine._SCRATCH_DIRS == {}


_SIGTERMED = """
import sys, time
from pathlib import Path
from datamigrate_agent import graph, migrate
from datamigrate_agent.nodes import _engine

_engine._SCRATCH = Path(sys.argv[1])

def stuck_evaluate(state, runtime):
    print("evaluating", flush=True)
    time.sleep(60)

graph.evaluate_results = stuck_evaluate
parser = __import__("argparse").ArgumentParser()
migrate.add_arguments(parser)
migrate.run(parser.parse_args(["--workspace", sys.argv[2], "--target", "duckdb",
                               "--project-name", "tiny"]))
"""


def test_sigterm_removes_the_scratch_folder_and_still_kills(tmp_path: Path) -> None:
    shm, ws = tmp_path / "shm", tmp_path / "ws"
    shm.mkdir()
    write_tiny_workspace(ws)
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(_SIGTERMED), str(shm),
                             str(ws)], stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.strip() == "evaluating":
            break
    assert len(_scratch(shm)) == 1
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == -signal.SIGTERM
    assert _scratch(shm) == []
