//! What the pod runner does for a pod, against the local control plane: volumes, env,
//! commands, restart policies, the image table and in-cluster API access.

// Test code: a failed expectation is a failed test, so panicking helpers are the point.
#![allow(clippy::panic, clippy::expect_used, clippy::unwrap_used)]

mod support;

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Pod, Secret};
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};

const TIMEOUT: Duration = Duration::from_secs(90);

async fn create<K>(client: &Client, namespace: &str, object: Value) -> K
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + serde::Serialize
        + serde::de::DeserializeOwned,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let object: K = serde_json::from_value(object).expect("object");
    api.create(&PostParams::default(), &object)
        .await
        .expect("create object")
}

fn pod(name: &str, script: &str, extra: Value) -> Value {
    let mut container =
        json!({"name": "main", "image": "busybox", "command": ["sh", "-c", script]});
    let mut spec = json!({"restartPolicy": "Never"});
    for (key, value) in extra.as_object().expect("extra is an object") {
        if key == "volumes" {
            spec[key] = value.clone();
        } else {
            container[key] = value.clone();
        }
    }
    spec["containers"] = json!([container]);
    json!({"metadata": {"name": name}, "spec": spec})
}

/// Waits for the pod to reach Succeeded or Failed and returns it.
async fn finished_pod(client: &Client, namespace: &str, name: &str) -> Pod {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    support::wait_until(&format!("pod {name} to finish"), TIMEOUT, || async {
        let pod = api.get(name).await.ok()?;
        let phase = pod.status.as_ref()?.phase.as_deref()?;
        matches!(phase, "Succeeded" | "Failed").then_some(pod)
    })
    .await
}

fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or_default()
}

fn log_of(namespace: &str, pod: &str) -> String {
    support::pod_log(namespace, pod, "main")
}

#[tokio::test]
async fn config_map_and_secret_volumes_env_from_working_dir_and_args_expansion() {
    let Some(client) = support::client().await else {
        return;
    };
    let ns = support::namespace(&client, "volumes").await;
    let _: ConfigMap = create(
        &client,
        ns.name(),
        json!({
            "metadata": {"name": "script"},
            "data": {"a.sql": "select 1;", "MODE": "fast"},
            "binaryData": {"b.bin": "AAEC"}
        }),
    )
    .await;
    let _: Secret = create(
        &client,
        ns.name(),
        json!({
            "metadata": {"name": "creds"}, "stringData": {"user": "sa", "GIT_TOKEN": "t"}
        }),
    )
    .await;
    let script = "set -e; cat /source/renamed.sql; echo; od -An -tx1 /bin-data/b.bin; \
        cat /creds/user; echo; pwd; echo \"mode=$CFG_MODE token=${#GIT_TOKEN}\"; echo \"$0\"";
    let spec = pod(
        "reader",
        script,
        json!({
            "args": ["$(CFG_MODE)-$(MISSING)"],
            "workingDir": "/tmp/pod-runner-test-wd",
            "envFrom": [{"configMapRef": {"name": "script"}, "prefix": "CFG_"},
                        {"secretRef": {"name": "creds"}}],
            "volumeMounts": [
                {"name": "source", "mountPath": "/source", "readOnly": true},
                {"name": "binary", "mountPath": "/bin-data"},
                {"name": "creds", "mountPath": "/creds"}
            ],
            "volumes": [
                {"name": "source", "configMap": {"name": "script",
                    "items": [{"key": "a.sql", "path": "renamed.sql"}]}},
                {"name": "binary", "configMap": {"name": "script"}},
                {"name": "creds", "secret": {"secretName": "creds"}}
            ]
        }),
    );
    let _: Pod = create(&client, ns.name(), spec).await;
    let done = finished_pod(&client, ns.name(), "reader").await;
    let log = log_of(ns.name(), "reader");
    assert_eq!(phase(&done), "Succeeded", "{log}");
    let expected = "select 1;\n 00 01 02\nsa\n/tmp/pod-runner-test-wd\nmode=fast token=1\n\
        fast-$(MISSING)\n";
    assert_eq!(log, expected);
}

#[tokio::test]
async fn read_only_mount_refuses_writes() {
    let Some(client) = support::client().await else {
        return;
    };
    let ns = support::namespace(&client, "readonly").await;
    let _: ConfigMap = create(
        &client,
        ns.name(),
        json!({
            "metadata": {"name": "cfg"}, "data": {"k": "v"}
        }),
    )
    .await;
    let spec = pod(
        "writer",
        "echo x > /cfg/new && echo wrote || echo refused",
        json!({
            "volumeMounts": [{"name": "cfg", "mountPath": "/cfg", "readOnly": true}],
            "volumes": [{"name": "cfg", "configMap": {"name": "cfg"}}]
        }),
    );
    let _: Pod = create(&client, ns.name(), spec).await;
    finished_pod(&client, ns.name(), "writer").await;
    assert!(log_of(ns.name(), "writer").ends_with("refused\n"));
}

#[tokio::test]
async fn claim_data_is_shared_by_pods_and_removed_with_the_claim() {
    let Some(client) = support::client().await else {
        return;
    };
    let ns = support::namespace(&client, "claim").await;
    let _: PersistentVolumeClaim = create(&client, ns.name(), json!({
        "metadata": {"name": "work"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
    }))
    .await;
    let mount = |name: &str, script: &str| {
        pod(
            name,
            script,
            json!({
                "volumeMounts": [{"name": "w", "mountPath": "/workspace"}],
                "volumes": [{"name": "w", "persistentVolumeClaim": {"claimName": "work"}}]
            }),
        )
    };
    let _: Pod = create(
        &client,
        ns.name(),
        mount("first", "echo data > /workspace/file"),
    )
    .await;
    assert_eq!(
        phase(&finished_pod(&client, ns.name(), "first").await),
        "Succeeded"
    );
    let _: Pod = create(&client, ns.name(), mount("second", "cat /workspace/file")).await;
    assert_eq!(
        phase(&finished_pod(&client, ns.name(), "second").await),
        "Succeeded"
    );
    assert_eq!(log_of(ns.name(), "second"), "data\n");

    let folder = support::runner_dir()
        .join("pvc")
        .join(ns.name())
        .join("work");
    assert!(folder.join("file").exists());
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns.name());
    for name in ["first", "second"] {
        pods.delete(name, &DeleteParams::default())
            .await
            .expect("delete pod");
    }
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns.name());
    claims
        .delete("work", &DeleteParams::default())
        .await
        .expect("delete claim");
    support::wait_until("the claim's folder to go", TIMEOUT, || async {
        (!folder.exists()).then_some(())
    })
    .await;
}

#[tokio::test]
async fn on_failure_job_restarts_its_container_until_it_succeeds() {
    let Some(client) = support::client().await else {
        return;
    };
    let ns = support::namespace(&client, "onfailure").await;
    let script = "if [ -f /scratch/tried ]; then echo second; else touch /scratch/tried; \
        echo first; exit 75; fi";
    let _: Job = create(
        &client,
        ns.name(),
        json!({
            "metadata": {"name": "retry"},
            "spec": {"backoffLimit": 3, "template": {"spec": {
                "restartPolicy": "OnFailure",
                "volumes": [{"name": "scratch", "emptyDir": {}}],
                "containers": [{"name": "main", "image": "busybox", "command": ["sh", "-c", script],
                    "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}]}]
            }}}
        }),
    )
    .await;
    let jobs: Api<Job> = Api::namespaced(client.clone(), ns.name());
    support::wait_until("the job to complete", TIMEOUT, || async {
        let conditions = jobs.get("retry").await.ok()?.status?.conditions?;
        conditions
            .iter()
            .any(|c| c.type_ == "Complete" && c.status == "True")
            .then_some(())
    })
    .await;
    let pods = support::job_pods(&client, ns.name(), "retry").await;
    assert_eq!(pods.len(), 1, "OnFailure restarts in place");
    let status = &pods[0]
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.clone())
        .unwrap()[0];
    assert_eq!(status.restart_count, 1);
    let last = status
        .last_state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .expect("last");
    assert_eq!(last.exit_code, 75);
    let name = pods[0].metadata.name.as_deref().unwrap();
    assert_eq!(log_of(ns.name(), name), "first\nsecond\n");
}

#[tokio::test]
async fn deployment_pod_runs_and_is_restarted_when_its_process_exits() {
    let Some(client) = support::client().await else {
        return;
    };
    let ns = support::namespace(&client, "deploy").await;
    let _: Deployment = create(
        &client,
        ns.name(),
        json!({
            "metadata": {"name": "web"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
                    {"name": "main", "image": "nginx:1.27", "command": ["sh", "-c", "sleep 1"]}
                ]}}}
        }),
    )
    .await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns.name());
    let params = kube::api::ListParams::default().labels("app=web");
    support::wait_until("the web container to restart twice", TIMEOUT, || async {
        let pod = pods.list(&params).await.ok()?.items.into_iter().next()?;
        let status = pod.status?;
        let restarts = status.container_statuses?.first()?.restart_count;
        (status.phase.as_deref() == Some("Running") && restarts >= 2).then_some(())
    })
    .await;
}

#[tokio::test]
async fn failed_start_reports_start_error_and_fallback_message_comes_from_the_log() {
    let Some(client) = support::client().await else {
        return;
    };
    let ns = support::namespace(&client, "starterr").await;
    let mut missing = pod("missing", "unused", json!({}));
    missing["spec"]["containers"][0]["command"] = json!(["/no/such/program"]);
    let _: Pod = create(&client, ns.name(), missing).await;
    let fallback = pod(
        "fallback",
        "echo first; echo 'last words'; exit 2",
        json!({
            "terminationMessagePolicy": "FallbackToLogsOnError"
        }),
    );
    let _: Pod = create(&client, ns.name(), fallback).await;

    let terminated = |pod: Pod| {
        let statuses = pod
            .status
            .and_then(|s| s.container_statuses)
            .unwrap_or_default();
        statuses[0]
            .state
            .clone()
            .and_then(|s| s.terminated)
            .expect("terminated")
    };
    let start = terminated(finished_pod(&client, ns.name(), "missing").await);
    assert_eq!(
        (start.exit_code, start.reason.as_deref()),
        (128, Some("StartError"))
    );
    assert!(
        start
            .message
            .unwrap_or_default()
            .contains("/no/such/program")
    );
    let ended = terminated(finished_pod(&client, ns.name(), "fallback").await);
    assert_eq!(ended.exit_code, 2);
    assert_eq!(ended.message.as_deref(), Some("first\nlast words"));
}

#[tokio::test]
async fn image_table_puts_the_mapped_bin_dir_first_on_path() {
    let Some(client) = support::client().await else {
        return;
    };
    let ns = support::namespace(&client, "images").await;
    let tools = tempfile::tempdir().expect("tools dir");
    let tool = tools.path().join("datamigrate-test-tool");
    std::fs::write(&tool, "#!/bin/sh\necho \"tool says $1\"\n").expect("write tool");
    let executable = std::os::unix::fs::PermissionsExt::from_mode(0o755);
    std::fs::set_permissions(&tool, executable).expect("chmod tool");
    let repo = format!("registry.test/{}/tools", ns.name());
    let line = format!("{repo}={}\n", tools.path().display());
    let images = support::runner_dir().join("images");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&images)
        .unwrap();
    std::io::Write::write_all(&mut file, line.as_bytes()).expect("append image entry");

    let mut spec = pod("tool", "unused", json!({}));
    spec["spec"]["containers"][0]["image"] = json!(format!("{repo}:1.0@sha256:abcd"));
    spec["spec"]["containers"][0]["command"] = json!(["datamigrate-test-tool", "hi"]);
    let _: Pod = create(&client, ns.name(), spec).await;
    let done = finished_pod(&client, ns.name(), "tool").await;
    assert_eq!(phase(&done), "Succeeded");
    assert_eq!(log_of(ns.name(), "tool"), "tool says hi\n");
}

#[tokio::test]
async fn in_cluster_python_client_reaches_the_api_with_the_projected_token() {
    let Some(client) = support::client().await else {
        return;
    };
    let Some(venv) = std::env::var_os("DATAMIGRATE_VENV") else {
        let note = "note: in-cluster python check skipped: DATAMIGRATE_VENV is not set\n";
        let _ = std::io::Write::write_all(&mut std::io::stderr(), note.as_bytes());
        return;
    };
    let ns = support::namespace(&client, "incluster").await;
    let _: k8s_openapi::api::rbac::v1::Role = create(
        &client,
        ns.name(),
        json!({
            "metadata": {"name": "read-configmaps"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]
        }),
    )
    .await;
    let _: k8s_openapi::api::rbac::v1::RoleBinding = create(
        &client,
        ns.name(),
        json!({
            "metadata": {"name": "read-configmaps"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                        "name": "read-configmaps"},
            "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": ns.name()}]
        }),
    )
    .await;
    let python = std::path::Path::new(&venv).join("bin/python");
    let code = "from kubernetes import client, config\n\
        config.load_incluster_config()\n\
        ns = open('/var/run/secrets/kubernetes.io/serviceaccount/namespace').read()\n\
        cm = client.CoreV1Api().read_namespaced_config_map('kube-root-ca.crt', ns)\n\
        print('ca' if 'ca.crt' in cm.data else 'no ca')\n";
    let mut spec = pod("py", "unused", json!({}));
    spec["spec"]["containers"][0]["command"] = json!([python, "-c", code]);
    let _: Pod = create(&client, ns.name(), spec).await;
    let done = finished_pod(&client, ns.name(), "py").await;
    let log = log_of(ns.name(), "py");
    assert_eq!(phase(&done), "Succeeded", "{log}");
    assert_eq!(log, "ca\n");
}
