"""The chart installed for real: the controller Deployment runs (the dev cluster's pod runner
stands in for the kubelet, with the operator image mapped to the crate's `datamigrate` binary and
the agent image to the agent's venv), becomes ready, and drives the minimal example Migration to
Ready=True with only the chart's RBAC and work pod defaults."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import socket
import uuid
from collections.abc import Iterator

import pytest
import yaml
from conftest import CHART, ROOT, argocd_health, flux_health, helm, kubectl
from test_cluster import apply, eventually

OPERATOR_IMAGE = "ghcr.io/datamigrate-ai/datamigrate-operator"
AGENT_IMAGE = "ghcr.io/datamigrate-ai/datamigrate-agent"
SUFFIX = uuid.uuid4().hex[:6]


def _need(var: str) -> str:
    value = os.environ.get(var, "")
    if not value:
        msg = f"{var} is not set (scripts/dev-cluster env sets it)"
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    return value


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def images(cluster) -> Iterator[None]:
    """Maps the two chart images to local programs in the pod runner's image table."""
    table = pathlib.Path(_need("DATAMIGRATE_CLUSTER_DIR")) / "runner" / "images"
    binary = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "debug"
    binary = binary / "datamigrate"
    if not binary.exists():
        pytest.fail(f"{binary} is missing: cargo build --bins")
    # A copy, so a concurrent cargo build cannot swap the binary under the running controller.
    # Kept out of /tmp: step pods mount an emptyDir there, hiding host paths below it.
    bin_dir = table.parent.parent / f"chart-test-bin-{SUFFIX}"
    bin_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy2(binary, bin_dir / "datamigrate")
    venv = pathlib.Path(_need("DATAMIGRATE_VENV"))
    before = table.read_text() if table.exists() else None
    table.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"{OPERATOR_IMAGE}={bin_dir}", f"{AGENT_IMAGE}={venv / 'bin'}"]
    table.write_text((before or "") + "\n" + "\n".join(lines) + "\n")
    yield
    if before is None:
        table.unlink(missing_ok=True)
    else:
        table.write_text(before)
    shutil.rmtree(bin_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def running_release(images) -> Iterator[dict[str, str]]:
    op, app = f"dme-op-{SUFFIX}", f"dme-app-{SUFFIX}"
    for ns in (op, app):
        kubectl("create", "namespace", ns)
    adopt = kubectl("get", "crd", "migrations.datamigrate.ai", check=False).returncode == 0
    extra = ["--take-ownership", "--force-conflicts"] if adopt else []
    values = {
        "watchNamespaces": [app],
        "logging": {"filter": "info"},
        "metrics": {"bindAddress": "127.0.0.1", "port": _free_port()},
    }
    values_file = pathlib.Path(os.environ.get("TMPDIR", "/tmp")) / f"dme-{SUFFIX}.json"
    values_file.write_text(json.dumps(values))
    helm("install", "dme", str(CHART), "-n", op, "--values", str(values_file), *extra)
    values_file.unlink()
    yield {"op": op, "app": app}
    helm("uninstall", "dme", "-n", op, check=False)
    for ns in (op, app):
        kubectl("delete", "namespace", ns, "--wait=false", check=False)
    kubectl(
        "label", "crd", "migrations.datamigrate.ai", "app.kubernetes.io/managed-by-", check=False
    )
    kubectl(
        "annotate",
        "crd",
        "migrations.datamigrate.ai",
        "meta.helm.sh/release-name-",
        "meta.helm.sh/release-namespace-",
        check=False,
    )


def _condition(mig: dict, kind: str) -> dict | None:
    for c in (mig.get("status") or {}).get("conditions", []):
        if c["type"] == kind:
            return c
    return None


def test_should_run_the_controller_and_finish_a_migration(running_release):
    op, app = running_release["op"], running_release["app"]
    kubectl(
        "-n",
        op,
        "rollout",
        "status",
        "deployment/dme-datamigrate-operator",
        "--timeout=90s",
        timeout=120,
    )
    for name in ("configmap.yaml", "migration.yaml"):
        doc = yaml.safe_load((ROOT / "examples/minimal" / name).read_text())
        doc["metadata"]["namespace"] = app
        apply(json.dumps(doc))

    def status():
        out = kubectl("get", "migration", "minimal", "-n", app, "-o", "json")
        mig = json.loads(out.stdout)
        ready, stalled = _condition(mig, "Ready"), _condition(mig, "Stalled")
        if stalled and stalled["status"] == "True":
            pytest.fail(f"Migration stalled: {stalled}")
        return mig if ready and ready["status"] == "True" else None

    mig = eventually(status, "the minimal Migration to be Ready", timeout=600)
    assert mig["status"]["phase"] == "Succeeded"
    assert mig["status"]["observedGeneration"] == mig["metadata"]["generation"]
    assert argocd_health(mig) == "Healthy"
    stale = json.loads(json.dumps(mig))
    stale["metadata"]["generation"] += 1
    assert argocd_health(stale) == "Progressing"
    assert flux_health(mig) == "Current"
    assert flux_health(stale) == "InProgress"
    for kind, name in (
        ("serviceaccount", "minimal-agent"),
        ("configmap", "minimal-progress"),
        ("role", "minimal-agent"),
        ("rolebinding", "minimal-agent"),
        ("persistentvolumeclaim", "minimal-workspace"),
    ):
        kubectl("get", kind, name, "-n", app)
    jobs = json.loads(kubectl("get", "jobs", "-n", app, "-o", "json").stdout)["items"]
    images = {c["image"] for j in jobs for c in j["spec"]["template"]["spec"]["containers"]}
    assert images == {f"{AGENT_IMAGE}:0.1.0"}, "step Jobs do not use the chart's agent image"
