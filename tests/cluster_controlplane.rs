//! The local control plane is real: version, Job controller with the pod runner, namespace
//! garbage collection, Secrets kept off disk, and the pinned client tools.

// Test code: a failed expectation is a failed test, so panicking helpers are the point.
#![allow(clippy::panic, clippy::expect_used, clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::PostParams;
use kube::{Api, Client};
use serde_json::json;

const JOB_TIMEOUT: Duration = Duration::from_secs(90);

fn job(name: &str, script: &str, backoff_limit: i32) -> Job {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": backoff_limit,
            "template": {"spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "main", "image": "busybox:1.36",
                                "command": ["sh", "-c", script]}]
            }}
        }
    }))
    .expect("job object")
}

/// Waits for the Job's `Complete` or `Failed` condition and returns its type and reason.
async fn job_outcome(client: &Client, namespace: &str, name: &str) -> (String, String) {
    let api: Api<Job> = Api::namespaced(client.clone(), namespace);
    support::wait_until(&format!("job {name} to finish"), JOB_TIMEOUT, || async {
        let job = api.get(name).await.ok()?;
        let conditions = job.status?.conditions?;
        conditions
            .into_iter()
            .find(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
            .map(|c| (c.type_, c.reason.unwrap_or_default()))
    })
    .await
}

fn terminated_exit_code(pod: &Pod) -> Option<i32> {
    let statuses = pod.status.as_ref()?.container_statuses.as_ref()?;
    let terminated = statuses.first()?.state.as_ref()?.terminated.as_ref()?;
    Some(terminated.exit_code)
}

#[tokio::test]
async fn api_server_reports_version_1_37() {
    let Some(client) = support::client().await else {
        return;
    };
    let version = client.apiserver_version().await.expect("GET /version");
    assert_eq!(version.major, "1");
    assert_eq!(version.minor, "37");
    assert!(
        version.git_version.starts_with("v1.37."),
        "{}",
        version.git_version
    );
}

#[tokio::test]
async fn echo_job_completes_through_the_job_controller_and_its_log_reads_ok() {
    let Some(client) = support::client().await else {
        return;
    };
    let ns = support::namespace(&client, "echo").await;
    let api: Api<Job> = Api::namespaced(client.clone(), ns.name());
    api.create(&PostParams::default(), &job("echo", "echo ok", 0))
        .await
        .expect("create job");

    let (outcome, _) = job_outcome(&client, ns.name(), "echo").await;
    assert_eq!(outcome, "Complete");
    let pods = support::job_pods(&client, ns.name(), "echo").await;
    assert_eq!(pods.len(), 1);
    let pod = &pods[0];
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    assert_eq!(phase, Some("Succeeded"));
    assert_eq!(
        pod.spec.as_ref().and_then(|s| s.node_name.as_deref()),
        Some("datamigrate-node")
    );
    let pod_name = pod.metadata.name.as_deref().expect("pod name");
    assert_eq!(support::pod_log(ns.name(), pod_name, "main"), "ok\n");
}

#[tokio::test]
async fn job_exiting_three_fails_after_its_backoff_limit_with_exit_code_three() {
    let Some(client) = support::client().await else {
        return;
    };
    let ns = support::namespace(&client, "exit3").await;
    let api: Api<Job> = Api::namespaced(client.clone(), ns.name());
    let script = "echo 'Code: failing on purpose' > /dev/termination-log; exit 3";
    api.create(&PostParams::default(), &job("exit3", script, 1))
        .await
        .expect("create job");

    let (outcome, reason) = job_outcome(&client, ns.name(), "exit3").await;
    assert_eq!(
        (outcome.as_str(), reason.as_str()),
        ("Failed", "BackoffLimitExceeded")
    );
    let pods = support::job_pods(&client, ns.name(), "exit3").await;
    assert_eq!(pods.len(), 2, "backoffLimit 1 means two attempts");
    for pod in &pods {
        assert_eq!(
            pod.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Failed")
        );
        assert_eq!(terminated_exit_code(pod), Some(3));
        let statuses = pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref());
        let terminated = statuses.and_then(|s| s[0].state.as_ref()?.terminated.clone());
        let message = terminated.and_then(|t| t.message).unwrap_or_default();
        assert_eq!(message.trim(), "Code: failing on purpose");
    }
}

#[tokio::test]
async fn deleting_a_namespace_removes_its_jobs_pods_and_processes() {
    let Some(client) = support::client().await else {
        return;
    };
    let ns = support::namespace(&client, "gc").await;
    let api: Api<Job> = Api::namespaced(client.clone(), ns.name());
    api.create(&PostParams::default(), &job("sleeper", "sleep 300", 0))
        .await
        .expect("create job");
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns.name());
    let pid = support::wait_until("the sleeper pod to run", JOB_TIMEOUT, || async {
        let pod = support::job_pods(&client, ns.name(), "sleeper")
            .await
            .into_iter()
            .next()?;
        let status = pod.status?.container_statuses?.into_iter().next()?;
        status.state?.running?;
        status
            .container_id?
            .strip_prefix("pod-runner://")?
            .parse::<u32>()
            .ok()
    })
    .await;
    assert!(
        Path::new(&format!("/proc/{pid}")).exists(),
        "the container runs as pid {pid}"
    );

    support::delete_namespace_and_wait(&client, ns.name(), Duration::from_secs(120)).await;
    let left = pods
        .list(&Default::default())
        .await
        .map(|l| l.items.len())
        .unwrap_or(0);
    assert_eq!(left, 0);
    assert!(
        api.list(&Default::default())
            .await
            .map(|l| l.items.is_empty())
            .unwrap_or(true)
    );
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "process {pid} outlived its pod"
    );
}

#[tokio::test]
async fn secret_in_env_reaches_the_process_but_no_file_outside_the_pod_folder() {
    let Some(client) = support::client().await else {
        return;
    };
    let ns = support::namespace(&client, "secret").await;
    let value = format!("s3cr3t-{}", rand::random::<u64>());
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "db"}, "stringData": {"password": value}
    }))
    .expect("secret object");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns.name());
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .expect("create secret");
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "reader"},
        "spec": {
            "restartPolicy": "Never",
            "volumes": [{"name": "scratch", "emptyDir": {}}],
            "containers": [{
                "name": "main", "image": "busybox",
                "command": ["sh", "-c",
                    "printf %s \"$PASSWORD\" > /scratch/seen; echo length=${#PASSWORD}"],
                "env": [{"name": "PASSWORD",
                         "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}],
                "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}]
            }]
        }
    }))
    .expect("pod object");
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns.name());
    let created = pods
        .create(&PostParams::default(), &pod)
        .await
        .expect("create pod");
    let uid = created.metadata.uid.expect("uid");
    support::wait_until("the reader pod to succeed", JOB_TIMEOUT, || async {
        let pod = pods.get("reader").await.ok()?;
        (pod.status?.phase.as_deref() == Some("Succeeded")).then_some(())
    })
    .await;

    assert_eq!(
        support::pod_log(ns.name(), "reader", "main"),
        format!("length={}\n", value.len())
    );
    let pod_dir = support::runner_dir()
        .join("pods")
        .join(format!("{}_reader_{uid}", ns.name()));
    let seen = std::fs::read_to_string(pod_dir.join("volumes/scratch/seen")).expect("seen file");
    assert_eq!(seen, value, "the process read the secret from its env");
    let leaks = files_containing(&support::cluster_dir(), value.as_bytes(), &pod_dir);
    assert!(
        leaks.is_empty(),
        "secret value found outside the pod folder in {leaks:?}"
    );
}

/// Every file under `root` (except under `skip`) whose bytes contain `needle`.
fn files_containing(root: &Path, needle: &[u8], skip: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if path.starts_with(skip) {
                continue;
            }
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file() {
                let bytes = std::fs::read(&path).unwrap_or_default();
                if bytes.windows(needle.len()).any(|w| w == needle) {
                    found.push(path.display().to_string());
                }
            }
        }
    }
    found
}

#[tokio::test]
async fn kubectl_get_nodes_shows_the_test_node_ready() {
    let Some(_client) = support::client().await else {
        return;
    };
    let out = support::kubectl_ok(&["get", "nodes", "--no-headers"]);
    let line = out
        .lines()
        .find(|l| l.starts_with("datamigrate-node "))
        .expect("node listed");
    let columns: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(columns[1], "Ready", "{line}");
    assert_eq!(columns.last().copied(), Some("v1.37.2"), "{line}");
}

#[test]
fn helm_and_kubectl_report_the_pinned_versions() {
    let Some(bin) = support::bin_dir() else {
        return;
    };
    let run = |program: &str, args: &[&str]| {
        let output = std::process::Command::new(bin.join(program))
            .args(args)
            .output();
        let output = output.unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
        assert!(output.status.success(), "{program} {args:?} failed");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let helm = run("helm", &["version", "--short"]);
    assert!(helm.starts_with("v4.3.2"), "helm version: {helm}");
    let kubectl: serde_json::Value =
        serde_json::from_str(&run("kubectl", &["version", "--client", "-o", "json"]))
            .expect("kubectl version json");
    assert_eq!(kubectl["clientVersion"]["gitVersion"], "v1.37.2");
}
