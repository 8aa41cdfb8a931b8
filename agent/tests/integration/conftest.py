"""Fixtures for the end-to-end agent tests: the sample scripts, PostgreSQL, and CLI runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[3]
#: Where the public sample scripts may be: the repository's copy first, then the shared one.
SCRIPT_DIRS = [REPO / "examples" / "data", REPO / "examples" / "northwind",
               REPO / "examples" / "pubs", Path("/work/shared/data/sqlserver-samples")]  # fmt: skip


def sample_script(name: str) -> Path:
    """Path of ``instnwnd.sql`` or ``instpubs.sql``; fails when neither place has it."""
    for folder in SCRIPT_DIRS:
        if (folder / name).is_file():
            return folder / name
    pytest.fail(f"{name} not found in {', '.join(map(str, SCRIPT_DIRS))}")


@dataclass
class Run:
    """One CLI invocation."""

    code: int
    lines: list[dict[str, Any]]
    text: str


def agent(*args: str, env: dict[str, str] | None = None, timeout: int = 600) -> Run:
    """Run ``python -m datamigrate_agent ARGS`` and parse its JSON log lines."""
    full_env = {**os.environ, **(env or {})}
    full_env.pop("DATAMIGRATE_PROGRESS_CONFIGMAP", None)
    done = subprocess.run([sys.executable, "-m", "datamigrate_agent", *args], env=full_env,
                          capture_output=True, text=True, timeout=timeout, check=False)  # fmt: skip
    lines = [json.loads(x) for x in done.stdout.splitlines() if x.startswith("{")]
    return Run(done.returncode, lines, done.stdout + done.stderr)


@pytest.fixture(scope="session")
def pg_dsn() -> str:
    """The PostgreSQL started by ``scripts/postgres``; a missing one fails in CI."""
    dsn = os.environ.get("DATAMIGRATE_PG_DSN")
    if not dsn:
        message = 'DATAMIGRATE_PG_DSN unset: run `eval "$(scripts/postgres)"` first'
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return dsn


def extracted(tmp: Path, script: str) -> Path:
    """A workspace with the script extracted into metadata.json."""
    ws = tmp / "workspace"
    run = agent("extract", "--workspace", str(ws), "--script", str(sample_script(script)))
    assert run.code == 0, run.text[-3000:]
    return ws
