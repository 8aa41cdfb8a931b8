//! Shared helpers for the tests that run against the local control plane (`scripts/dev-cluster
//! up`, then `eval "$(scripts/dev-cluster env)"`).
//!
//! ```ignore
//! mod support;
//!
//! #[tokio::test]
//! async fn something_against_the_cluster() {
//!     let Some(client) = support::client().await else { return };
//!     let ns = support::namespace(&client, "jobs").await; // deleted when `ns` drops
//!     let jobs: kube::Api<Job> = kube::Api::namespaced(client, ns.name());
//!     ...
//! }
//! ```
//!
//! Without `KUBECONFIG` a test is skipped with a note on stderr, except under `CI=true`, where
//! it panics: a missing control plane must fail CI, never pass it silently.

// Test code: a failed expectation is a failed test, so panicking helpers are the point.
#![allow(clippy::panic, clippy::expect_used, clippy::unwrap_used)]
// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client};

/// Label put on every namespace a test creates, so leftovers are easy to find.
pub const TEST_LABEL: &str = "datamigrate.dev/test";

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Panics under CI, prints a note and returns `None` elsewhere.
fn missing(what: &str) -> Option<()> {
    let hint = "start one with: scripts/dev-cluster up && eval \"$(scripts/dev-cluster env)\"";
    if in_ci() {
        panic!("{what} is not set but CI=true: the cluster tests need a control plane; {hint}");
    }
    // Straight to stderr: libtest captures `eprintln!`, and a skip must be visible.
    let note = format!("note: skipping a cluster test because {what} is not set; {hint}\n");
    let _ = std::io::Write::write_all(&mut std::io::stderr(), note.as_bytes());
    None
}

/// A client for the control plane in `KUBECONFIG`, or `None` (test skipped) when it is unset.
pub async fn client() -> Option<Client> {
    if std::env::var_os("KUBECONFIG").is_none_or(|v| v.is_empty()) {
        missing("KUBECONFIG")?;
    }
    let client = Client::try_default()
        .await
        .expect("cannot build a client from KUBECONFIG");
    Some(client)
}

/// The folder with the pinned `kubectl` and `helm`, or `None` (test skipped) when
/// `DATAMIGRATE_BIN_DIR` is unset.
pub fn bin_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("DATAMIGRATE_BIN_DIR").filter(|v| !v.is_empty());
    if dir.is_none() {
        missing("DATAMIGRATE_BIN_DIR")?;
    }
    dir.map(PathBuf::from)
}

fn kubectl_program() -> PathBuf {
    std::env::var_os("DATAMIGRATE_BIN_DIR")
        .map(|dir| Path::new(&dir).join("kubectl"))
        .unwrap_or_else(|| PathBuf::from("kubectl"))
}

/// Runs the pinned kubectl (`$DATAMIGRATE_BIN_DIR/kubectl`, else `kubectl` on PATH).
pub fn kubectl(args: &[&str]) -> Output {
    Command::new(kubectl_program())
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run kubectl {args:?}: {e}"))
}

/// Runs kubectl, asserts it succeeded and returns its stdout.
pub fn kubectl_ok(args: &[&str]) -> String {
    let output = kubectl(args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "kubectl {args:?} failed: {stderr}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The dev cluster's state folder: `DATAMIGRATE_CLUSTER_DIR`, else the kubeconfig's folder.
pub fn cluster_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("DATAMIGRATE_CLUSTER_DIR").filter(|v| !v.is_empty()) {
        return PathBuf::from(dir);
    }
    let kubeconfig = std::env::var_os("KUBECONFIG").expect("KUBECONFIG is not set");
    let kubeconfig = PathBuf::from(kubeconfig);
    kubeconfig
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// The pod runner's state folder (pods, claims, logs).
pub fn runner_dir() -> PathBuf {
    cluster_dir().join("runner")
}

/// A container's log as the pod runner keeps it (`kubectl logs` needs a kubelet and does not
/// work here): `<cluster>/runner/logs/<namespace>/<pod>/<container>.log`.
pub fn pod_log(namespace: &str, pod: &str, container: &str) -> String {
    let path = runner_dir()
        .join("logs")
        .join(namespace)
        .join(pod)
        .join(format!("{container}.log"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// A namespace made for one test, deleted (without waiting) when dropped.
#[derive(Debug)]
pub struct TestNamespace {
    name: String,
}

impl TestNamespace {
    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        // Drop cannot await; kubectl is synchronous and quick.
        let _ = kubectl(&[
            "delete",
            "namespace",
            &self.name,
            "--wait=false",
            "--ignore-not-found",
        ]);
    }
}

/// Creates a namespace `<prefix>-<random>` labelled for tests.
pub async fn namespace(client: &Client, prefix: &str) -> TestNamespace {
    let suffix: String = (0..6)
        .map(|_| char::from(b'a' + rand::random_range(0..26_u8)))
        .collect();
    let name = format!("{prefix}-{suffix}");
    let namespace: Namespace = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "labels": {TEST_LABEL: "true"}}
    }))
    .expect("namespace object");
    let api: Api<Namespace> = Api::all(client.clone());
    api.create(&PostParams::default(), &namespace)
        .await
        .expect("create test namespace");
    wait_for_default_service_account(client, &name).await;
    TestNamespace { name }
}

/// Pods cannot be created before the namespace's `default` ServiceAccount exists.
async fn wait_for_default_service_account(client: &Client, namespace: &str) {
    let api: Api<k8s_openapi::api::core::v1::ServiceAccount> =
        Api::namespaced(client.clone(), namespace);
    wait_until(
        "the default service account",
        Duration::from_secs(30),
        || async { api.get_opt("default").await.ok().flatten() },
    )
    .await;
}

/// Polls `check` every 250 ms until it returns `Some`, panicking after `timeout`.
pub async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The pods of a Job, by the `job-name` label.
pub async fn job_pods(client: &Client, namespace: &str, job: &str) -> Vec<Pod> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let params = kube::api::ListParams::default().labels(&format!("job-name={job}"));
    api.list(&params).await.expect("list job pods").items
}

/// Deletes a namespace and waits until it is gone.
pub async fn delete_namespace_and_wait(client: &Client, name: &str, timeout: Duration) {
    let api: Api<Namespace> = Api::all(client.clone());
    let _ = api.delete(name, &DeleteParams::default()).await;
    wait_until(&format!("namespace {name} to be gone"), timeout, || async {
        match api.get_opt(name).await {
            Ok(None) => Some(()),
            _ => None,
        }
    })
    .await;
}

/// Runs `scripts/dev-cluster <command>` on the cluster the tests use and asserts it succeeded.
pub fn dev_cluster(command: &str) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/dev-cluster");
    let output = Command::new(&script)
        .arg(command)
        .env("DATAMIGRATE_CLUSTER_DIR", cluster_dir())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "dev-cluster {command} failed: {stderr}"
    );
}
