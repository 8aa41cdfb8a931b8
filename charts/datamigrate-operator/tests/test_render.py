"""Assertions on `helm template` output (no cluster needed)."""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest
import yaml
from conftest import CHART, NAMESPACE, ROOT, kinds, one, render, render_fails, render_text

FULL = "dm-datamigrate-operator"
AGENT_SA_VERBS = {"get", "patch", "update"}


def controller(docs: list[dict]) -> dict:
    return one(docs, "Deployment", FULL)["spec"]["template"]["spec"]["containers"][0]


def rules_of(role: dict) -> list[dict]:
    return role["rules"]


def grants(rules: list[dict], group: str, resource: str) -> set[str]:
    verbs: set[str] = set()
    for r in rules:
        if group in r["apiGroups"] and resource in r["resources"]:
            verbs |= set(r["verbs"])
    return verbs


def test_should_render_the_default_set_of_objects():
    docs = render()
    assert kinds(docs) == {
        "CustomResourceDefinition",
        "ServiceAccount",
        "ConfigMap",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "Service",
        "Deployment",
        "PodDisruptionBudget",
    }
    for d in docs:
        if d["kind"] not in {"CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding"}:
            assert d["metadata"]["namespace"] == NAMESPACE, d["metadata"]["name"]


def test_should_render_the_crd_from_crds_folder_with_keep_policy():
    crd_file = next((ROOT / "crds").glob("*.yaml"))
    want = yaml.safe_load(crd_file.read_text())
    crd = one(render(), "CustomResourceDefinition")
    assert crd["spec"] == want["spec"]
    assert crd["metadata"]["name"] == want["metadata"]["name"]
    assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert crd["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"


def test_should_drop_keep_policy_and_crd_when_asked():
    crd = one(render({"crds": {"keep": False}}), "CustomResourceDefinition")
    assert "helm.sh/resource-policy" not in (crd["metadata"].get("annotations") or {})
    assert "CustomResourceDefinition" not in kinds(render({"crds": {"enabled": False}}))


def test_should_run_the_controller_with_a_restricted_security_context():
    docs = render()
    pod = one(docs, "Deployment", FULL)["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert "add" not in sc["capabilities"]
    assert c["resources"]["requests"]["memory"] and c["resources"]["limits"]["memory"]
    assert pod["serviceAccountName"] == FULL


def test_should_probe_healthz_and_readyz_on_the_metrics_port():
    c = controller(render({"metrics": {"port": 9100}}))
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http-metrics"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http-metrics"}
    assert c["ports"] == [{"name": "http-metrics", "containerPort": 9100, "protocol": "TCP"}]
    assert "--metrics-addr=0.0.0.0:9100" in c["args"]
    assert "--log-format=json" in c["args"]
    c = controller(render({"livenessProbe": {"enabled": False}}))
    assert "livenessProbe" not in c and "readinessProbe" in c


def test_should_elect_a_leader_only_with_several_replicas_or_when_asked():
    one_replica = render()
    c = controller(one_replica)
    assert c["command"] == ["datamigrate"] and c["args"][0] == "controller"
    assert "--leader-elect" not in c["args"]
    assert one(one_replica, "Deployment")["spec"]["strategy"]["type"] == "Recreate"
    two = render({"replicaCount": 2})
    assert "--leader-elect" in controller(two)["args"]
    deploy = one(two, "Deployment")["spec"]
    assert deploy["replicas"] == 2 and deploy["strategy"]["type"] == "RollingUpdate"
    assert "--leader-elect" in controller(render({"leaderElection": {"enabled": True}}))["args"]


def test_should_pass_workspace_and_retry_settings_as_flags():
    args = controller(render())["args"]
    assert "--workspace-size=1Gi" in args
    assert not [a for a in args if a.startswith("--workspace-storage-class")]
    assert {
        "--max-step-attempts=3",
        "--step-retry-base-seconds=10",
        "--step-retry-max-seconds=300",
        "--error-backoff-max-seconds=300",
    } <= set(args)
    args = controller(
        render(
            {
                "agent": {
                    "workspace": {"size": "20Gi", "storageClassName": "fast"},
                    "retry": {"maxAttempts": 5},
                }
            }
        )
    )["args"]
    assert {
        "--workspace-size=20Gi",
        "--workspace-storage-class=fast",
        "--max-step-attempts=5",
    } <= set(args)
    render_fails({"agent": {"workspace": {"size": "lots"}}})


def test_should_pass_log_filter_extra_args_and_extra_env():
    c = controller(
        render(
            {
                "logging": {"filter": "debug"},
                "extraArgs": ["--extra=1"],
                "extraEnv": [{"name": "TZ", "value": "UTC"}],
            }
        )
    )
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["RUST_LOG"] == "debug" and env["TZ"] == "UTC"
    assert c["args"][-1] == "--extra=1"


def test_should_mount_work_pod_defaults_and_pass_the_flag():
    docs = render()
    c = controller(docs)
    assert "--work-pod-defaults=/etc/datamigrate/work-pod-defaults.yaml" in c["args"]
    mount = next(m for m in c["volumeMounts"] if m["name"] == "work-pod-defaults")
    assert mount["mountPath"] == "/etc/datamigrate" and mount["readOnly"] is True
    cm = one(docs, "ConfigMap", f"{FULL}-work-pod-defaults")
    defaults = yaml.safe_load(cm["data"]["work-pod-defaults.yaml"])
    assert defaults["image"] == "ghcr.io/datamigrate-ai/datamigrate-agent:0.1.0"
    assert defaults["backoffLimit"] == 2
    assert set(defaults) == {
        "image",
        "imagePullPolicy",
        "ttlSecondsAfterFinished",
        "backoffLimit",
        "template",
    }
    assert "metadata" not in defaults["template"]
    pod = defaults["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    step = pod["containers"][0]
    assert step["name"] == "step"
    assert step["securityContext"]["readOnlyRootFilesystem"] is True
    assert step["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert step["resources"]["limits"]["memory"] == "4Gi"
    assert defaults["ttlSecondsAfterFinished"] == 86400


def test_should_render_work_pod_scheduling_defaults():
    docs = render(
        {
            "agent": {
                "tolerations": [{"key": "batch", "operator": "Exists", "effect": "NoSchedule"}],
                "nodeSelector": {"workload": "batch"},
                "imagePullSecrets": [{"name": "regcred"}],
                "extraEnv": [{"name": "HTTPS_PROXY", "value": "http://proxy:3128"}],
                "podLabels": {"cost-center": "data"},
            }
        }
    )
    cm = one(docs, "ConfigMap", f"{FULL}-work-pod-defaults")
    defaults = yaml.safe_load(cm["data"]["work-pod-defaults.yaml"])
    spec = defaults["template"]["spec"]
    assert spec["tolerations"][0]["key"] == "batch"
    assert spec["nodeSelector"] == {"workload": "batch"}
    assert spec["imagePullSecrets"] == [{"name": "regcred"}]
    step = spec["containers"][0]
    assert step["name"] == "step"
    assert step["env"] == [{"name": "HTTPS_PROXY", "value": "http://proxy:3128"}]
    assert defaults["template"]["metadata"]["labels"] == {"cost-center": "data"}


def test_should_roll_the_controller_when_work_pod_defaults_change():
    def checksum(values):
        pod = one(render(values), "Deployment")["spec"]["template"]
        return pod["metadata"]["annotations"]["checksum/work-pod-defaults"]

    assert checksum({}) == checksum({})
    assert checksum({}) != checksum({"agent": {"backoffLimit": 5}})


def test_should_build_image_references_from_registry_repository_tag_and_digest():
    digest = "sha256:" + "ab" * 32
    assert controller(render())["image"] == "ghcr.io/datamigrate-ai/datamigrate-operator:0.1.0"
    c = controller(render({"image": {"tag": "1.2.3", "registry": "r.example.com"}}))
    assert c["image"] == "r.example.com/datamigrate-ai/datamigrate-operator:1.2.3"
    c = controller(render({"image": {"tag": "1.2.3", "digest": digest}}))
    assert c["image"] == f"ghcr.io/datamigrate-ai/datamigrate-operator@{digest}"
    docs = render({"global": {"imageRegistry": "mirror.example.com"}})
    assert controller(docs)["image"].startswith("mirror.example.com/datamigrate-ai/")
    cm = one(docs, "ConfigMap", f"{FULL}-work-pod-defaults")
    assert "image: mirror.example.com/datamigrate-ai/datamigrate-agent:0.1.0" in str(cm["data"])
    c = controller(render({"image": {"registry": ""}}))
    assert c["image"] == "datamigrate-ai/datamigrate-operator:0.1.0"


def test_should_keep_selector_labels_to_name_and_instance():
    docs = render({"commonLabels": {"team": "data"}, "podLabels": {"extra": "x"}})
    deploy = one(docs, "Deployment")
    selector = {
        "app.kubernetes.io/name": "datamigrate-operator",
        "app.kubernetes.io/instance": "dm",
    }
    assert deploy["spec"]["selector"]["matchLabels"] == selector
    assert one(docs, "Service")["spec"]["selector"] == selector
    assert one(docs, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"] == selector
    pod_labels = deploy["spec"]["template"]["metadata"]["labels"]
    assert pod_labels["team"] == "data" and pod_labels["extra"] == "x"
    for d in docs:
        assert d["metadata"]["labels"]["team"] == "data", d["kind"]


def test_should_truncate_names_to_63_characters():
    docs = render(release="r" * 53)
    name = one(docs, "Deployment")["metadata"]["name"]
    assert name == ("r" * 53 + "-datamigrate-operator")[:63]
    assert one(docs, "ServiceAccount")["metadata"]["name"] == name
    labels = one(docs, "Deployment")["metadata"]["labels"]
    assert all(len(v) <= 63 for v in labels.values())
    assert one(render({"fullnameOverride": "dmig"}), "Deployment")["metadata"]["name"] == "dmig"


def test_should_grant_the_controller_what_a_migration_needs():
    rules = rules_of(one(render(), "ClusterRole", f"{FULL}-controller"))
    crud = {"get", "list", "watch", "create", "patch", "update", "delete"}
    assert grants(rules, "datamigrate.ai", "migrations") >= {"get", "list", "watch", "patch"}
    assert grants(rules, "datamigrate.ai", "migrations/status") >= {"patch"}
    assert grants(rules, "datamigrate.ai", "migrations/finalizers") >= {"update"}
    assert grants(rules, "batch", "jobs") >= crud
    for res in ("persistentvolumeclaims", "configmaps", "serviceaccounts"):
        assert grants(rules, "", res) >= crud, res
    for res in ("roles", "rolebindings"):
        assert grants(rules, "rbac.authorization.k8s.io", res) >= crud, res
    assert grants(rules, "", "events") >= {"create", "patch"}
    assert grants(rules, "events.k8s.io", "events") >= {"create", "patch"}
    # The agent's Role grants these on its ConfigMap; holding them avoids `escalate`.
    assert grants(rules, "", "configmaps") >= AGENT_SA_VERBS


def test_should_grant_only_get_on_secrets_and_no_wildcards_or_escalation():
    for values in ({}, {"watchNamespaces": ["a", "b"]}):
        for d in render(values):
            if d["kind"] not in {"ClusterRole", "Role"}:
                continue
            for r in d["rules"]:
                assert "*" not in r["verbs"] and "*" not in r["resources"], d["metadata"]
                assert "*" not in r["apiGroups"], d["metadata"]
                assert not {"escalate", "bind", "impersonate"} & set(r["verbs"])
                if "secrets" in r["resources"]:
                    assert r["verbs"] == ["get"], d["metadata"]["name"]


def test_should_use_roles_per_namespace_when_watching_namespaces():
    docs = render({"watchNamespaces": ["team-a", "team-b"]})
    assert not [
        d
        for d in docs
        if d["kind"] == "ClusterRole" and d["metadata"]["name"].endswith("-controller")
    ]
    assert "ClusterRoleBinding" not in kinds(docs)
    for ns in ("team-a", "team-b"):
        role = one(docs, "Role", f"{FULL}-controller", ns)
        assert grants(role["rules"], "batch", "jobs") >= {"create", "watch"}
        binding = one(docs, "RoleBinding", f"{FULL}-controller", ns)
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": f"{FULL}-controller",
        }
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": FULL, "namespace": NAMESPACE}
        ]
    args = controller(docs)["args"]
    assert "--namespace=team-a" in args and "--namespace=team-b" in args


def test_should_keep_leases_in_the_controller_namespace():
    for values in ({}, {"watchNamespaces": ["team-a"]}):
        docs = render(values)
        lease_roles = [
            d
            for d in docs
            if d["kind"] in {"Role", "ClusterRole"}
            and grants(d["rules"], "coordination.k8s.io", "leases")
        ]
        assert [(d["kind"], d["metadata"].get("namespace")) for d in lease_roles] == [
            ("Role", NAMESPACE)
        ]


def test_should_aggregate_view_and_edit_roles():
    docs = render()
    view = one(docs, "ClusterRole", f"{FULL}-view")
    edit = one(docs, "ClusterRole", f"{FULL}-edit")
    assert view["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"] == "true"
    assert edit["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"
    assert "rbac.authorization.k8s.io/aggregate-to-view" not in edit["metadata"]["labels"]
    assert grants(view["rules"], "datamigrate.ai", "migrations") == {"get", "list", "watch"}
    assert grants(edit["rules"], "datamigrate.ai", "migrations") >= {"create", "delete", "patch"}
    assert not grants(edit["rules"], "datamigrate.ai", "migrations/status")
    off = render({"rbac": {"aggregateToDefaultRoles": False}})
    assert not [d for d in off if d["metadata"]["name"].endswith(("-view", "-edit"))]


def test_should_render_no_network_policy_or_service_monitor_by_default():
    assert not kinds(render()) & {"NetworkPolicy", "ServiceMonitor"}


NETPOL_VALUES = {
    "networkPolicy": {
        "enabled": True,
        "apiServer": {"cidrs": ["10.0.0.1/32"], "ports": [6443]},
        "workPods": {
            "source": [{"cidr": "10.20.0.15/32", "ports": [{"port": 1433}]}],
            "target": [{"cidr": "10.30.0.0/24", "ports": [{"port": 5432}]}],
            "llm": [{"cidr": "0.0.0.0/0", "ports": [{"port": 443}]}],
            "git": [{"cidr": "192.0.2.10/32", "ports": [{"port": 22}, {"port": 443}]}],
        },
    },
}


def test_should_limit_controller_egress_to_dns_and_the_api_server():
    pol = one(render(NETPOL_VALUES), "NetworkPolicy", f"{FULL}-controller")
    assert pol["spec"]["policyTypes"] == ["Ingress", "Egress"]
    egress = pol["spec"]["egress"]
    assert len(egress) == 2
    dns, api = egress
    assert {p["port"] for p in dns["ports"]} == {53}
    assert api == {
        "ports": [{"port": 6443, "protocol": "TCP"}],
        "to": [{"ipBlock": {"cidr": "10.0.0.1/32"}}],
    }
    assert pol["spec"]["ingress"] == [{"ports": [{"port": "http-metrics", "protocol": "TCP"}]}]


def test_should_limit_work_pod_egress_to_the_listed_destinations():
    docs = render({**NETPOL_VALUES, "watchNamespaces": ["team-a", "team-b"]})
    for ns in ("team-a", "team-b"):
        pol = one(docs, "NetworkPolicy", f"{FULL}-work-pods", ns)
        assert pol["spec"]["ingress"] == []
        cidrs = {
            (rule["to"][0]["ipBlock"]["cidr"], p["port"])
            for rule in pol["spec"]["egress"]
            if "to" in rule and "ipBlock" in rule["to"][0]
            for p in rule["ports"]
        }
        assert cidrs == {
            ("10.0.0.1/32", 6443),
            ("10.20.0.15/32", 1433),
            ("10.30.0.0/24", 5432),
            ("0.0.0.0/0", 443),
            ("192.0.2.10/32", 22),
            ("192.0.2.10/32", 443),
        }
        assert pol["spec"]["podSelector"] == {
            "matchLabels": {"app.kubernetes.io/managed-by": "datamigrate-operator"},
            "matchExpressions": [{"key": "datamigrate.ai/step", "operator": "Exists"}],
        }
    default_ns = render(NETPOL_VALUES)
    assert (
        one(default_ns, "NetworkPolicy", f"{FULL}-work-pods")["metadata"]["namespace"] == NAMESPACE
    )


def test_should_render_a_service_monitor_on_the_metrics_service():
    docs = render(
        {
            "metrics": {
                "serviceMonitor": {"enabled": True, "labels": {"r": "x"}, "scrapeTimeout": "10s"}
            }
        }
    )
    sm = one(docs, "ServiceMonitor")
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    assert sm["metadata"]["labels"]["r"] == "x"
    assert sm["spec"]["endpoints"] == [
        {"port": "http-metrics", "path": "/metrics", "interval": "30s", "scrapeTimeout": "10s"}
    ]
    svc = one(docs, "Service")
    assert sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    err = render_fails(
        {"metrics": {"service": {"enabled": False}, "serviceMonitor": {"enabled": True}}}
    )
    assert "needs metrics.service.enabled" in err


def test_should_set_either_min_available_or_max_unavailable():
    pdb = one(render(), "PodDisruptionBudget")["spec"]
    assert pdb["maxUnavailable"] == 1 and "minAvailable" not in pdb
    pdb = one(render({"podDisruptionBudget": {"minAvailable": 1}}), "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1 and "maxUnavailable" not in pdb["spec"]
    assert "PodDisruptionBudget" not in kinds(render({"podDisruptionBudget": {"enabled": False}}))


def test_should_reject_unknown_and_mistyped_values():
    assert "replicaCont" in render_fails({"replicaCont": 2})
    assert "tga" in render_fails({"image": {"tga": "1"}})
    assert "networkPolicy" in render_fails({"networkPolicy": {"workPods": {"sources": []}}})
    render_fails({"replicaCount": "two"})
    render_fails({"image": {"pullPolicy": "Sometimes"}})
    render_fails({"image": {"digest": "latest"}})
    render_fails({"networkPolicy": {"workPods": {"source": [{"cidr": "db.example.com"}]}}})


def test_should_require_a_service_account_name_when_not_created():
    err = render_fails({"serviceAccount": {"create": False}})
    assert "serviceAccount.name is required" in err
    docs = render({"serviceAccount": {"create": False, "name": "existing"}})
    assert "ServiceAccount" not in kinds(docs)
    assert one(docs, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == "existing"


def test_should_render_extra_objects():
    docs = render(
        {
            "extraObjects": [
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": "{{ .Release.Name }}-x"},
                },
            ]
        }
    )
    assert one(docs, "ConfigMap", "dm-x")


def _resolve(node: dict, defs: dict) -> dict:
    while "$ref" in node:
        node = defs[node["$ref"].rsplit("/", 1)[-1]]
    return node


def _schema_paths(node: dict, defs: dict, prefix: str = "") -> dict[str, dict]:
    """Every key the schema names, by dotted path, with its resolved schema node."""
    out = {}
    for key, sub in _resolve(node, defs).get("properties", {}).items():
        resolved = _resolve(sub, defs)
        out[f"{prefix}{key}"] = resolved
        if resolved.get("additionalProperties") is False:
            out |= _schema_paths(resolved, defs, f"{prefix}{key}.")
    return out


def _value_paths(values: dict, prefix: str = "") -> set[str]:
    out = set()
    for key, sub in values.items():
        out.add(f"{prefix}{key}")
        if isinstance(sub, dict) and sub:
            out |= _value_paths(sub, f"{prefix}{key}.")
    return out


def test_should_keep_values_and_schema_in_step():
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    in_schema = _schema_paths(schema, schema["definitions"])
    in_values = _value_paths(values)
    assert set(in_schema) - in_values == set(), "schema keys missing from values.yaml"
    strict = {p for p, node in in_schema.items() if node.get("additionalProperties") is False}
    under_strict = {p for p in in_values if "." not in p or p.rsplit(".", 1)[0] in strict}
    assert under_strict - set(in_schema) == set(), "values.yaml keys missing from the schema"
    assert schema["additionalProperties"] is False


def test_should_keep_the_chart_readme_and_crd_generated():
    text = (CHART / "README.md").read_text()
    assert text.startswith("<!-- Generated by scripts/gen-chart")
    for key in (
        "watchNamespaces",
        "networkPolicy.workPods.source",
        "crds.keep",
        "agent.ttlSecondsAfterFinished",
    ):
        assert f"`{key}`" in text, key
    assert "{{" not in render_text().split("kind: CustomResourceDefinition")[1][:200]


def test_should_use_every_value_in_some_template():
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    text = "\n".join(p.read_text() for p in (CHART / "templates").iterdir())
    free_form = {
        "resources",
        "podSecurityContext",
        "securityContext",
        "nodeSelector",
        "namespaceSelector",
        "podSelector",
    }

    def leaves(tree: dict, prefix: str = ""):
        for key, sub in tree.items():
            if isinstance(sub, dict) and sub and key not in free_form:
                yield from leaves(sub, f"{prefix}{key}.")
            else:
                yield f"{prefix}{key}"

    unused = [p for p in leaves(values) if not re.search(rf"\b{p.rsplit('.', 1)[-1]}\b", text)]
    assert unused == [], f"values no template reads: {unused}"


def test_should_pass_only_flags_the_controller_binary_knows():
    binary = ROOT / "target" / "debug" / "datamigrate"
    if not binary.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{binary} is missing (cargo build --bins)")
        pytest.skip(f"{binary} is missing")
    help_text = subprocess.run(
        [binary, "controller", "--help"], capture_output=True, text=True, check=True
    ).stdout
    known = set(re.findall(r"--[a-z][a-z-]+", help_text))
    values = {
        "watchNamespaces": ["a"],
        "replicaCount": 2,
        "agent": {"workspace": {"storageClassName": "fast"}},
    }
    args = controller(render(values))["args"]
    assert args[0] == "controller"
    flags = {a.split("=", 1)[0] for a in args[1:]}
    assert flags - known == set(), f"flags the binary does not accept: {flags - known}"
