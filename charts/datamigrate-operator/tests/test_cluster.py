"""Chart checks against the real API server: server-side dry runs of rendered manifests, install
and upgrade (a new CRD field is served), and RBAC (`kubectl auth can-i` and real requests made
as the controller's and the agent's ServiceAccounts)."""

from __future__ import annotations

import json
import shutil
import time
import uuid
from collections.abc import Iterator

import pytest
import yaml
from conftest import CHART, ROOT, helm, kubectl, render_text, run

CRD = "migrations.datamigrate.ai"
SUFFIX = uuid.uuid4().hex[:6]
PROBE_FIELD = "upgradeProbe"


def ns_name(base: str) -> str:
    return f"dmc-{base}-{SUFFIX}"


def apply(manifest: str, *args: str, check: bool = True):
    return kubectl("apply", "--validate=strict", *args, "-f", "-", stdin=manifest, check=check)


def eventually(probe, what: str, timeout: float = 45.0):
    """Polls `probe()` until it returns a truthy value; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(1)


def can_i(verb: str, resource: str, namespace: str | None, user: str) -> bool:
    """`kubectl auth can-i`. `resource` is `plural.group[/name][::subresource]`: kubectl reads
    `a/b` as resource a, object b, so a subresource goes through --subresource."""
    resource, _, sub = resource.partition("::")
    args = ["auth", "can-i", verb, resource, "--as", user]
    args += [f"--subresource={sub}"] if sub else []
    args += ["-n", namespace] if namespace else ["--all-namespaces"]
    out = kubectl(*args, check=False)
    answer = out.stdout.strip()
    assert answer in {"yes", "no"}, f"kubectl auth can-i: {out.stdout} {out.stderr}"
    return answer == "yes"


def sa_user(namespace: str, name: str) -> str:
    return f"system:serviceaccount:{namespace}:{name}"


@pytest.fixture(scope="module")
def namespaces(cluster) -> Iterator[dict[str, str]]:
    names = {k: ns_name(k) for k in ("op", "app", "other", "op2", "watched")}
    for n in names.values():
        kubectl("create", "namespace", n)
    yield names
    for n in names.values():
        kubectl("delete", "namespace", n, "--wait=false", "--ignore-not-found", check=False)


@pytest.fixture(scope="module")
def service_monitor_crd(cluster) -> Iterator[None]:
    """A minimal ServiceMonitor CRD (the Prometheus Operator's is not installed here): enough
    for the API server to accept a ServiceMonitor, not a check of its fields."""
    name = "servicemonitors.monitoring.coreos.com"
    existed = kubectl("get", "crd", name, check=False).returncode == 0
    if not existed:
        crd = {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": name},
            "spec": {
                "group": "monitoring.coreos.com",
                "scope": "Namespaced",
                "names": {
                    "kind": "ServiceMonitor",
                    "plural": "servicemonitors",
                    "singular": "servicemonitor",
                    "listKind": "ServiceMonitorList",
                },
                "versions": [
                    {
                        "name": "v1",
                        "served": True,
                        "storage": True,
                        "schema": {
                            "openAPIV3Schema": {
                                "type": "object",
                                "x-kubernetes-preserve-unknown-fields": True,
                            }
                        },
                    }
                ],
            },
        }
        apply(json.dumps(crd))
        kubectl("wait", "--for=condition=Established", f"crd/{name}", "--timeout=30s")
    yield
    if not existed:
        kubectl("delete", "crd", name, "--ignore-not-found", check=False)


# === server-side dry runs ===


def value_sets(ns: dict[str, str]) -> dict[str, dict]:
    return {
        "default": {},
        "watch-namespaces": {"watchNamespaces": [ns["app"], ns["other"]]},
        "two-replicas": {"replicaCount": 2, "podDisruptionBudget": {"minAvailable": 1}},
        "network-policy-and-service-monitor": {
            "networkPolicy": {
                "enabled": True,
                "workPods": {
                    "namespaces": [ns["app"]],
                    "source": [{"cidr": "10.20.0.15/32", "ports": [{"port": 1433}]}],
                    "git": [{"cidr": "192.0.2.10/32", "ports": [{"port": 443}]}],
                },
            },
            "metrics": {"serviceMonitor": {"enabled": True}},
        },
        "everything-off": {
            "networkPolicy": {"enabled": False},
            "metrics": {"service": {"enabled": False}},
            "podDisruptionBudget": {"enabled": False},
            "crds": {"enabled": False},
            "rbac": {"aggregateToDefaultRoles": False},
        },
    }


@pytest.mark.parametrize(
    "name",
    [
        "default",
        "watch-namespaces",
        "two-replicas",
        "network-policy-and-service-monitor",
        "everything-off",
    ],
)
def test_should_be_accepted_by_the_api_server(name, namespaces, service_monitor_crd):
    values = value_sets(namespaces)[name]
    manifest = render_text(values, release="dry", namespace=namespaces["op"])
    kinds = {d["kind"] for d in yaml.safe_load_all(manifest) if d}
    out = apply(manifest, "--dry-run=server")
    assert out.stdout.count("(server dry run)") == manifest.count("\nkind: ")
    if name == "network-policy-and-service-monitor":
        assert {"NetworkPolicy", "ServiceMonitor"} <= kinds


def test_should_refuse_a_mistyped_value_at_install(namespaces):
    out = helm(
        "install",
        "typo",
        str(CHART),
        "-n",
        namespaces["op"],
        "--dry-run=server",
        "--set",
        "replicaCont=2",
        check=False,
    )
    assert out.returncode != 0
    assert "replicaCont" in out.stderr


# === install, RBAC, upgrade ===


def _strip_helm_ownership() -> None:
    kubectl("label", "crd", CRD, "app.kubernetes.io/managed-by-", check=False)
    kubectl(
        "annotate",
        "crd",
        CRD,
        "meta.helm.sh/release-name-",
        "meta.helm.sh/release-namespace-",
        "helm.sh/resource-policy-",
        check=False,
    )


@pytest.fixture(scope="module")
def release(namespaces) -> Iterator[dict[str, str]]:
    """The chart installed as release `dmc` (no controller pod: replicaCount 0, since no image
    can run here), plus a second release watching one namespace (no CRD)."""
    op = namespaces["op"]
    adopt = kubectl("get", "crd", CRD, check=False).returncode == 0
    # A CRD applied before the chart (by `kubectl apply -f crds/` or other tests) is adopted.
    extra = ["--take-ownership", "--force-conflicts"] if adopt else []
    helm("install", "dmc", str(CHART), "-n", op, "--set", "replicaCount=0", *extra)
    kubectl("wait", "--for=condition=Established", f"crd/{CRD}", "--timeout=30s")
    helm(
        "install",
        "dmw",
        str(CHART),
        "-n",
        namespaces["op2"],
        "--set",
        "replicaCount=0",
        "--set",
        "crds.enabled=false",
        "--set",
        "rbac.aggregateToDefaultRoles=false",
        "--set-json",
        f'watchNamespaces=["{namespaces["watched"]}"]',
    )
    yield {
        "op": op,
        "sa": "dmc-datamigrate-operator",
        "op2": namespaces["op2"],
        "sa2": "dmw-datamigrate-operator",
    }
    helm("uninstall", "dmw", "-n", namespaces["op2"], check=False)
    helm("uninstall", "dmc", "-n", op, check=False)
    _strip_helm_ownership()


CONTROLLER_NEEDS = [
    ("get", "migrations.datamigrate.ai"),
    ("list", "migrations.datamigrate.ai"),
    ("watch", "migrations.datamigrate.ai"),
    ("patch", "migrations.datamigrate.ai"),
    ("patch", "migrations.datamigrate.ai::status"),
    ("update", "migrations.datamigrate.ai::finalizers"),
    *[
        (v, r)
        for r in (
            "jobs.batch",
            "persistentvolumeclaims",
            "configmaps",
            "serviceaccounts",
            "roles.rbac.authorization.k8s.io",
            "rolebindings.rbac.authorization.k8s.io",
        )
        for v in ("get", "list", "watch", "create", "patch", "delete")
    ],
    ("get", "secrets"),
    ("list", "pods"),
    ("create", "events"),
    ("create", "events.events.k8s.io"),
]
CONTROLLER_MUST_NOT = [
    ("list", "secrets"),
    ("watch", "secrets"),
    ("create", "secrets"),
    ("create", "pods"),
    ("delete", "namespaces"),
    ("escalate", "roles.rbac.authorization.k8s.io"),
    ("bind", "roles.rbac.authorization.k8s.io"),
    ("update", "migrations.datamigrate.ai::scale"),
    ("create", "clusterroles.rbac.authorization.k8s.io"),
]


def test_should_let_the_controller_do_what_a_migration_needs(release, namespaces):
    user = sa_user(release["op"], release["sa"])
    for ns in (namespaces["app"], namespaces["other"]):
        missing = [(v, r) for v, r in CONTROLLER_NEEDS if not can_i(v, r, ns, user)]
        assert missing == [], f"controller lacks in {ns}: {missing}"
        extra = [(v, r) for v, r in CONTROLLER_MUST_NOT if can_i(v, r, ns, user)]
        assert extra == [], f"controller may in {ns}: {extra}"
    lease = "leases.coordination.k8s.io/datamigrate-operator-leader"
    for verb in ("get", "patch", "update"):
        assert can_i(verb, lease, release["op"], user), verb
        assert not can_i(verb, lease, namespaces["app"], user), verb
    assert can_i("create", "leases.coordination.k8s.io", release["op"], user)
    assert not can_i("patch", "leases.coordination.k8s.io/other-lease", release["op"], user)
    assert not can_i("create", "leases.coordination.k8s.io", namespaces["app"], user)
    assert not can_i("list", "secrets", None, user)


def _migration(name: str, namespace: str, **spec_extra) -> dict:
    doc = yaml.safe_load((ROOT / "examples/minimal/migration.yaml").read_text())
    doc["metadata"] = {"name": name, "namespace": namespace}
    doc["spec"].update(spec_extra)
    return doc


def _agent_objects(mig: dict) -> list[dict]:
    """What the operator creates for one Migration (docs/architecture.md, Progress channel)."""
    name, ns = mig["metadata"]["name"], mig["metadata"]["namespace"]
    owner = [
        {
            "apiVersion": "datamigrate.ai/v1alpha1",
            "kind": "Migration",
            "name": name,
            "uid": mig["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    meta = {"namespace": ns, "ownerReferences": owner}
    return [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": f"{name}-agent", **meta},
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"{name}-progress", **meta},
            "data": {"progress.json": "{}"},
        },
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": f"{name}-workspace", **meta},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": f"{name}-agent", **meta},
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["configmaps"],
                    "resourceNames": [f"{name}-progress"],
                    "verbs": ["get", "patch", "update"],
                }
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": f"{name}-agent", **meta},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": f"{name}-agent",
            },
            "subjects": [{"kind": "ServiceAccount", "name": f"{name}-agent", "namespace": ns}],
        },
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": f"{name}-extract-1", **meta},
            "spec": {
                "suspend": True,
                "backoffLimit": 0,
                "template": {
                    "spec": {
                        "restartPolicy": "Never",
                        "serviceAccountName": f"{name}-agent",
                        "containers": [
                            {
                                "name": "step",
                                "image": "agent:test",
                                "command": ["python", "-m", "datamigrate_agent", "extract"],
                            }
                        ],
                    }
                },
            },
        },
    ]


def _create_migration(name: str, namespace: str) -> dict:
    apply(json.dumps(_migration(name, namespace)))
    return json.loads(kubectl("get", "migration", name, "-n", namespace, "-o", "json").stdout)


def test_should_let_the_controller_create_the_agent_objects_without_escalation(release, namespaces):
    ns = namespaces["app"]
    controller = sa_user(release["op"], release["sa"])
    mig = _create_migration("rbac-a", ns)
    for obj in _agent_objects(mig):
        # A PVC would keep the namespace Terminating without the pvc-protection controller:
        # authorization is checked the same in a server-side dry run.
        dry = ["--dry-run=server"] if obj["kind"] == "PersistentVolumeClaim" else []
        out = kubectl(
            "create", "--as", controller, *dry, "-f", "-", stdin=json.dumps(obj), check=False
        )
        assert out.returncode == 0, f"controller cannot create {obj['kind']}: {out.stderr}"
    status = {"status": {"observedGeneration": 1, "phase": "Pending"}}
    kubectl(
        "patch",
        "migration",
        "rbac-a",
        "-n",
        ns,
        "--as",
        controller,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps(status),
    )
    kubectl(
        "create",
        "secret",
        "generic",
        "src-login",
        "-n",
        ns,
        "--from-literal=username=sa",
        "--from-literal=password=hunter2",
    )
    kubectl("get", "secret", "src-login", "-n", ns, "--as", controller)
    denied = kubectl("get", "secrets", "-n", ns, "--as", controller, check=False)
    assert denied.returncode != 0 and "forbidden" in denied.stderr.lower()


def test_should_confine_the_agent_to_its_own_progress_configmap(release, namespaces):
    ns = namespaces["app"]
    controller = sa_user(release["op"], release["sa"])
    for name in ("conf-a", "conf-b"):
        mig = _create_migration(name, ns)
        for obj in _agent_objects(mig):
            if obj["kind"] != "PersistentVolumeClaim":
                kubectl("create", "--as", controller, "-f", "-", stdin=json.dumps(obj))
    agent = sa_user(ns, "conf-a-agent")
    patch = json.dumps({"data": {"progress.json": '{"step": "extract"}'}})
    kubectl("patch", "configmap", "conf-a-progress", "-n", ns, "--as", agent, "-p", patch)
    assert can_i("get", "configmaps/conf-a-progress", ns, agent)
    assert can_i("update", "configmaps/conf-a-progress", ns, agent)
    refused = [
        ("get", "configmaps/conf-b-progress"),
        ("patch", "configmaps/conf-b-progress"),
        ("list", "configmaps"),
        ("delete", "configmaps/conf-a-progress"),
        ("get", "secrets"),
        ("get", "secrets/src-login"),
        ("list", "secrets"),
        ("get", "migrations.datamigrate.ai/conf-b"),
        ("patch", "migrations.datamigrate.ai"),
        ("patch", "migrations.datamigrate.ai::status"),
        ("create", "pods"),
        ("create", "jobs.batch"),
        ("create", "roles.rbac.authorization.k8s.io"),
    ]
    allowed = [(v, r) for v, r in refused if can_i(v, r, ns, agent)]
    assert allowed == [], f"agent SA may: {allowed}"
    out = kubectl(
        "patch", "configmap", "conf-b-progress", "-n", ns, "--as", agent, "-p", patch, check=False
    )
    assert out.returncode != 0 and "forbidden" in out.stderr.lower()
    out = kubectl("get", "secret", "src-login", "-n", ns, "--as", agent, check=False)
    assert out.returncode != 0 and "forbidden" in out.stderr.lower()


def test_should_confine_a_namespaced_controller_to_its_namespaces(release, namespaces):
    user = sa_user(release["op2"], release["sa2"])
    watched = namespaces["watched"]
    missing = [(v, r) for v, r in CONTROLLER_NEEDS if not can_i(v, r, watched, user)]
    assert missing == [], f"namespaced controller lacks in {watched}: {missing}"
    assert can_i("create", "leases.coordination.k8s.io", release["op2"], user)
    for v, r in [
        ("list", "migrations.datamigrate.ai"),
        ("create", "jobs.batch"),
        ("get", "secrets"),
    ]:
        assert not can_i(v, r, namespaces["app"], user), (v, r)
        assert not can_i(v, r, None, user), (v, r)


def _selectors(role: str) -> list[dict]:
    got = json.loads(kubectl("get", "clusterrole", role, "-o", "json").stdout)
    return [sel["matchLabels"] for sel in got["aggregationRule"]["clusterRoleSelectors"]]


def _matches(labels: dict, selectors: list[dict]) -> bool:
    return any(sel.items() <= labels.items() for sel in selectors)


def test_should_label_roles_for_the_built_in_aggregation_selectors(release):
    labels = {}
    for suffix in ("view", "edit"):
        obj = kubectl("get", "clusterrole", f"dmc-datamigrate-operator-{suffix}", "-o", "json")
        labels[suffix] = json.loads(obj.stdout)["metadata"]["labels"]
    assert _matches(labels["view"], _selectors("view"))
    assert _matches(labels["view"], _selectors("edit"))
    assert _matches(labels["edit"], _selectors("edit"))
    assert _matches(labels["edit"], _selectors("admin"))
    assert not _matches(labels["edit"], _selectors("view"))


def test_should_aggregate_migrations_into_view_and_edit(release, namespaces):
    view = json.loads(kubectl("get", "clusterrole", "view", "-o", "json").stdout)
    if not view.get("rules"):
        pytest.skip(
            "kube-controller-manager runs without clusterrole-aggregation-controller: "
            "the built-in view role has no rules at all"
        )
    ns = namespaces["app"]
    for user, role in (("alice", "edit"), ("bob", "view")):
        kubectl(
            "create",
            "rolebinding",
            f"{user}-{role}",
            "-n",
            ns,
            f"--clusterrole={role}",
            f"--user={user}",
        )
    eventually(
        lambda: can_i("create", "migrations.datamigrate.ai", ns, "alice"),
        "the edit role to include Migrations",
    )
    eventually(
        lambda: can_i("list", "migrations.datamigrate.ai", ns, "bob"),
        "the view role to include Migrations",
    )
    assert can_i("delete", "migrations.datamigrate.ai", ns, "alice")
    assert not can_i("patch", "migrations.datamigrate.ai::status", ns, "alice")
    assert not can_i("create", "migrations.datamigrate.ai", ns, "bob")


def _explain(field: str) -> bool:
    return kubectl("explain", f"migrations.spec.{field}", check=False).returncode == 0


def _chart_with_probe_field(tmp_path) -> str:
    """A copy of the chart whose CRD has one more spec field, regenerated by gen-chart."""
    copy = tmp_path / "chart"
    shutil.copytree(CHART, copy, ignore=shutil.ignore_patterns("tests", "__pycache__"))
    crds = tmp_path / "crds"
    crds.mkdir()
    docs = list(yaml.safe_load_all((ROOT / "crds" / f"{CRD}.yaml").read_text()))
    crd = next(d for d in docs if d)
    for version in crd["spec"]["versions"]:
        spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
        spec["properties"][PROBE_FIELD] = {
            "type": "string",
            "description": "Field added by the chart upgrade test.",
        }
    (crds / f"{CRD}.yaml").write_text(yaml.safe_dump(crd, sort_keys=False))
    run([str(ROOT / "scripts/gen-chart"), "--chart", str(copy), "--crds", str(crds)])
    chart_yaml = yaml.safe_load((copy / "Chart.yaml").read_text())
    chart_yaml["version"] = chart_yaml["version"] + "-upgradetest"
    (copy / "Chart.yaml").write_text(yaml.safe_dump(chart_yaml, sort_keys=False))
    return str(copy)


def test_should_serve_a_new_crd_field_after_helm_upgrade(release, namespaces, tmp_path):
    ns, op = namespaces["app"], release["op"]
    assert not _explain(PROBE_FIELD), "the probe field exists before the upgrade"
    helm("upgrade", "dmc", _chart_with_probe_field(tmp_path), "-n", op, "--reuse-values")
    eventually(lambda: _explain(PROBE_FIELD), f"spec.{PROBE_FIELD} in kubectl explain")
    apply(json.dumps(_migration("probe", ns, **{PROBE_FIELD: "kept"})))
    got = kubectl(
        "get", "migration", "probe", "-n", ns, "-o", f"jsonpath={{.spec.{PROBE_FIELD}}}"
    ).stdout
    assert got == "kept", "the new field was pruned: the CRD was not upgraded"
    kubectl("delete", "migration", "probe", "-n", ns)
    helm("upgrade", "dmc", str(CHART), "-n", op, "--reuse-values")
    eventually(lambda: not _explain(PROBE_FIELD), "the probe field to go after the downgrade")


def test_should_keep_the_crd_and_migrations_on_uninstall(release, namespaces):
    ns = namespaces["app"]
    _create_migration("survivor", ns)
    helm("uninstall", "dmc", "-n", release["op"])
    crd = json.loads(kubectl("get", "crd", CRD, "-o", "json").stdout)
    assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    kubectl("get", "migration", "survivor", "-n", ns)
    assert kubectl("get", "deployment", "-n", release["op"], "-o", "name").stdout.strip() == ""


def test_should_accept_the_gitops_example_migration(release, namespaces):
    doc = yaml.safe_load((ROOT / "examples/gitops/app/migration.yaml").read_text())
    doc["metadata"]["namespace"] = namespaces["app"]
    out = apply(json.dumps(doc), "--dry-run=server")
    assert "migration.datamigrate.ai/sales created (server dry run)" in out.stdout


def test_should_switch_deployment_strategy_on_upgrade(namespaces):
    ns = namespaces["other"]
    base = [
        "-n",
        ns,
        "--set",
        "crds.enabled=false",
        "--set",
        "rbac.create=false",
        "--set",
        "rbac.aggregateToDefaultRoles=false",
        "--set",
        "replicaCount=0",
    ]

    def strategy() -> dict:
        out = kubectl(
            "get",
            "deployment",
            "dms-datamigrate-operator",
            "-n",
            ns,
            "-o",
            "jsonpath={.spec.strategy}",
        )
        return json.loads(out.stdout)

    helm("install", "dms", str(CHART), *base, "--set", "leaderElection.enabled=true")
    try:
        assert strategy()["type"] == "RollingUpdate"
        helm("upgrade", "dms", str(CHART), *base, "--set", "leaderElection.enabled=false")
        assert strategy() == {"type": "Recreate"}
        helm("upgrade", "dms", str(CHART), *base, "--set", "leaderElection.enabled=true")
        assert strategy()["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    finally:
        helm("uninstall", "dms", "-n", ns, check=False)
