"""What the two images carry, checked without a container engine: the Dockerfiles' final
stages, the build contexts, and the pymssql wheel (from the same lock) bringing its own FreeTDS."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess

import pytest
from conftest import ROOT


def final_stage(dockerfile: pathlib.Path) -> list[str]:
    lines = [ln.strip() for ln in dockerfile.read_text().splitlines()]
    starts = [i for i, ln in enumerate(lines) if ln.startswith("FROM ")]
    return lines[starts[-1] :]


def test_should_ship_the_operator_on_distroless_as_non_root():
    stage = final_stage(ROOT / "Dockerfile")
    assert stage[0] == "FROM gcr.io/distroless/static-debian12:nonroot"
    assert "USER 65532:65532" in stage
    assert not [ln for ln in stage if ln.startswith("RUN ")], "the runtime stage runs nothing"
    assert 'ENTRYPOINT ["/usr/local/bin/datamigrate"]' in stage
    build = (ROOT / "Dockerfile").read_text()
    assert "--release --locked --bin datamigrate" in build
    assert "pod-runner" not in re.sub(r"#.*", "", build), "the test-only binary stays out"


def test_should_install_only_pinned_agent_dependencies_as_non_root():
    text = (ROOT / "agent/Dockerfile").read_text()
    assert "pip install --no-deps --only-binary pymssql -r runtime.lock" in text
    assert "pip check" in text
    assert "grep -vE '^(pytest|ruff)=='" in text
    stage = final_stage(ROOT / "agent/Dockerfile")
    assert "USER 10001:10001" in stage
    assert all(":latest" not in ln for ln in text.splitlines())


def test_should_keep_build_contexts_to_what_the_images_need():
    top = (ROOT / ".dockerignore").read_text().splitlines()
    assert top[top.index("*") + 1 :].count("!target/") == 0
    assert {"!Cargo.toml", "!Cargo.lock", "!src/", "!crds/"} <= set(top)
    agent = (ROOT / "agent/.dockerignore").read_text().splitlines()
    assert {"*", "!requirements.lock", "!pyproject.toml", "!src/"} <= set(agent)


def test_should_get_freetds_inside_the_pymssql_wheel():
    venv = os.environ.get("DATAMIGRATE_VENV")
    if not venv:
        pytest.skip("DATAMIGRATE_VENV is not set")
    python = pathlib.Path(venv) / "bin" / "python"
    code = (
        "import pymssql, glob, os; print(pymssql.get_dbversion()); "
        "print(' '.join(glob.glob(os.path.dirname(pymssql.__file__) + '/_*.so')))"
    )
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
    version, libs = out.stdout.splitlines()
    assert version.startswith("freetds v"), version
    for lib in libs.split():
        ldd = subprocess.run(["ldd", lib], capture_output=True, text=True, check=True).stdout
        assert "libsybdb" not in ldd and "not found" not in ldd, ldd
