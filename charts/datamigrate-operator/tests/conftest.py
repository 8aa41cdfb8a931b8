"""Shared helpers for the chart tests: helm and kubectl from the control-plane folder, rendering,
and the cluster fixture (KUBECONFIG from `scripts/dev-cluster env`)."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import tempfile

import pytest
import yaml

CHART = pathlib.Path(__file__).resolve().parents[1]
ROOT = CHART.parents[1]
RELEASE = "dm"
NAMESPACE = "datamigrate"


def _tool(name: str) -> str:
    folder = os.environ.get("DATAMIGRATE_BIN_DIR")
    if not folder:
        pytest.fail("DATAMIGRATE_BIN_DIR is not set (scripts/test-chart sets it)")
    path = pathlib.Path(folder) / name
    if not path.exists():
        pytest.fail(f"{path} is missing: run scripts/build-controlplane")
    return str(path)


def run(
    cmd: list[str], *, check: bool = True, stdin: str | None = None, timeout: int = 120
) -> subprocess.CompletedProcess[str]:
    """Runs a command, failing the test with its output when it fails and `check` is set."""
    proc = subprocess.run(
        cmd, input=stdin, capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and proc.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def helm(*args: str, check: bool = True, **kw) -> subprocess.CompletedProcess[str]:
    return run([_tool("helm"), *args], check=check, **kw)


def kubectl(*args: str, check: bool = True, **kw) -> subprocess.CompletedProcess[str]:
    return run([_tool("kubectl"), *args], check=check, **kw)


def template(
    values: dict | None = None,
    *,
    chart: pathlib.Path = CHART,
    release: str = RELEASE,
    namespace: str = NAMESPACE,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """`helm template` with the given values (written to a temporary values file)."""
    args = ["template", release, str(chart), "--namespace", namespace]
    with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
        json.dump(values or {}, f)
        f.flush()
        return helm(*args, "--values", f.name, check=check)


def render_text(values: dict | None = None, **kw) -> str:
    return template(values, **kw).stdout


def render(values: dict | None = None, **kw) -> list[dict]:
    """The rendered manifests as a list of objects (empty documents dropped)."""
    return [d for d in yaml.safe_load_all(render_text(values, **kw)) if d]


def render_fails(values: dict) -> str:
    """Renders expecting a failure; returns helm's error output."""
    proc = template(values, check=False)
    assert proc.returncode != 0, f"render unexpectedly passed with {values}"
    return proc.stderr


def one(docs: list[dict], kind: str, name: str | None = None, namespace: str | None = None) -> dict:
    found = [
        d
        for d in docs
        if d["kind"] == kind
        and (name is None or d["metadata"]["name"] == name)
        and (namespace is None or d["metadata"].get("namespace") == namespace)
    ]
    assert len(found) == 1, f"want one {kind} {name or ''}, got {len(found)}"
    return found[0]


def kinds(docs: list[dict]) -> set[str]:
    return {d["kind"] for d in docs}


def _lua(value) -> str:
    """A Lua literal of a JSON value (what Argo CD hands its health scripts as `obj`)."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"[{_lua(k)}] = {_lua(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "{" + ", ".join(_lua(v) for v in value) + "}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "nil"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(value)


def argocd_health(mig: dict) -> str:
    """The Argo CD health status of a live object, from the chart's health.lua under lua5.4."""
    lua = shutil.which("lua5.4")
    if lua is None:
        pytest.fail("lua5.4 is not installed (scripts/test-chart installs it)")
    script = CHART / "argocd" / "health.lua"
    code = f"obj = {_lua(mig)}\nlocal hs = dofile({json.dumps(str(script))})\nprint(hs.status)"
    out = subprocess.run([lua, "-"], input=code, capture_output=True, text=True, check=True)
    return out.stdout.strip()


def flux_health(mig: dict) -> str:
    """kstatus' verdict (what Flux waits on) for a live object, from the tests' kstatus tool."""
    tool = os.environ.get("DATAMIGRATE_KSTATUS", "")
    if not tool:
        pytest.fail("DATAMIGRATE_KSTATUS is not set (scripts/test-chart builds the tool)")
    out = subprocess.run([tool], input=json.dumps(mig), capture_output=True, text=True, check=True)
    return out.stdout.split(" ", 1)[0]


@pytest.fixture(scope="session")
def cluster() -> str:
    """The KUBECONFIG of the local control plane; fails under CI when there is none."""
    path = os.environ.get("KUBECONFIG", "")
    if not path or not pathlib.Path(path).exists():
        msg = "KUBECONFIG is not set to the local control plane (scripts/dev-cluster env)"
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    kubectl("version", "--request-timeout=10s")
    return path
