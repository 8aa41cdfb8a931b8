//! Helpers of the end-to-end tests (`tests/e2e_*.rs`): the operator as a child process, the
//! examples applied into a test namespace, `kubectl get mig -w` captured, a bare git remote,
//! and waits on the Migration's conditions. Built on `tests/support` (the control plane).
//!
//! Each e2e test needs `KUBECONFIG` and `DATAMIGRATE_BIN_DIR` (from `scripts/dev-cluster env`)
//! and `DATAMIGRATE_VENV` (from `scripts/setup-agent`); under `CI=true` a missing one fails.

// Each e2e binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use datamigrate::crd::Migration;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::ListParams;
use kube::{Api, Client};

use crate::support;

/// The agent image every step Job uses when nothing overrides it.
pub const AGENT_IMAGE: &str = "ghcr.io/datamigrate-ai/datamigrate-agent";
/// The operator image of the chart (`charts/datamigrate-operator/values.yaml`).
pub const OPERATOR_IMAGE: &str = "ghcr.io/datamigrate-ai/datamigrate-operator";
/// Label of every object a Migration owns.
pub const LABEL_MIGRATION: &str = "datamigrate.ai/migration";
/// Long enough for Northwind on two busy cores (it takes about a minute when idle).
pub const RUN_TIMEOUT: Duration = Duration::from_secs(900);

/// What every e2e test needs: a client, the pinned tools and the agent's Python environment.
pub struct Env {
    /// Client of the control plane in `KUBECONFIG`.
    pub client: Client,
    /// `DATAMIGRATE_BIN_DIR`: kubectl and helm.
    pub bin_dir: PathBuf,
    /// `DATAMIGRATE_VENV`: the agent's environment (python, dbt).
    pub venv: PathBuf,
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The agent's Python environment, or `None` (test skipped) outside CI.
pub fn venv() -> Option<PathBuf> {
    match std::env::var_os("DATAMIGRATE_VENV").filter(|v| !v.is_empty()) {
        Some(v) => Some(PathBuf::from(v)),
        None if in_ci() => panic!("DATAMIGRATE_VENV is not set but CI=true: run scripts/test"),
        None => {
            let note = "note: skipping an e2e test because DATAMIGRATE_VENV is not set\n";
            let _ = std::io::stderr().write_all(note.as_bytes());
            None
        }
    }
}

/// Everything an e2e test needs, with the CRD installed and the agent image mapped to the venv
/// in the pod runner's image table; `None` (skipped) outside CI when something is missing.
pub async fn env() -> Option<Env> {
    let client = support::client().await?;
    let bin_dir = support::bin_dir()?;
    let venv = venv()?;
    install_crd();
    map_image(AGENT_IMAGE, &venv.join("bin"));
    Some(Env {
        client,
        bin_dir,
        venv,
    })
}

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Where the e2e tests leave their captured output (watch lines, describe, timings).
pub fn figures_dir() -> PathBuf {
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| repo().join("target"), PathBuf::from);
    let dir = target.join("e2e-figures");
    std::fs::create_dir_all(&dir).expect("create target/e2e-figures");
    dir
}

/// A temporary folder the step pods can also see. Not under `/tmp`: every step pod gets an
/// emptyDir at `/tmp`, which hides the host's `/tmp` inside the pod runner's mount namespace.
pub fn scratch_dir() -> tempfile::TempDir {
    let parent = figures_dir().with_file_name("e2e-scratch");
    std::fs::create_dir_all(&parent).expect("create target/e2e-scratch");
    tempfile::Builder::new()
        .prefix("run-")
        .tempdir_in(&parent)
        .expect("scratch folder")
}

/// Server-side applies the committed CRD (idempotent; also takes it over from a chart install)
/// and waits until it is established.
pub fn install_crd() {
    let crd = repo().join("crds/migrations.datamigrate.ai.yaml");
    let crd = crd.to_str().expect("utf-8 path");
    support::kubectl_ok(&["apply", "--server-side", "--force-conflicts", "-f", crd]);
    // A CRD created a moment ago has no conditions yet, which `kubectl wait` reports as an
    // error rather than waiting: poll instead.
    let start = Instant::now();
    let jsonpath = "jsonpath={.status.conditions[?(@.type==\"Established\")].status}";
    loop {
        let out = support::kubectl(&["get", "crd/migrations.datamigrate.ai", "-o", jsonpath]);
        if String::from_utf8_lossy(&out.stdout).trim() == "True" {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the CRD is not established"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Adds `repository=bin_dir` to the pod runner's image table unless that exact line is there
/// (a later line wins, so appending is enough; the table is re-read at each container start).
pub fn map_image(repository: &str, bin_dir: &Path) {
    let table = support::runner_dir().join("images");
    let line = format!("{repository}={}", bin_dir.display());
    let text = std::fs::read_to_string(&table).unwrap_or_default();
    let prefix = format!("{repository}=");
    let current = text
        .lines()
        .map(str::trim)
        .rfind(|l| l.starts_with(&prefix));
    if current == Some(line.as_str()) {
        return;
    }
    std::fs::create_dir_all(support::runner_dir()).expect("runner folder");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&table)
        .expect("open the image table");
    writeln!(file, "\n{line}").expect("write the image table");
}

/// A free loopback port (bound, then released).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    listener.local_addr().expect("local address").port()
}

// === the operator as a child process ===

/// `datamigrate controller` watching one namespace, killed (SIGKILL) when dropped.
pub struct Controller {
    child: Option<Child>,
    /// Its stderr (the logs), kept for failure messages.
    pub log: PathBuf,
    namespace: String,
    port: u16,
}

impl Controller {
    /// Starts the operator built for this test run, scoped to `namespace`, and waits until it
    /// answers `/readyz` (its caches synced). Step retries start after 2 s instead of 10 s.
    pub fn start(namespace: &str, log_dir: &Path) -> Self {
        let port = free_port();
        let log = log_dir.join(format!("controller-{namespace}-{port}.log"));
        let file = std::fs::File::create(&log).expect("controller log file");
        let child = Command::new(env!("CARGO_BIN_EXE_datamigrate"))
            .args(["controller", "--namespace", namespace])
            .arg(format!("--metrics-addr=127.0.0.1:{port}"))
            .args(["--step-retry-base-seconds", "2", "--log-format", "json"])
            .env("RUST_LOG", "info,kube=warn")
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log file"))
            .stderr(file)
            .spawn()
            .expect("start datamigrate controller");
        let mut controller = Self {
            child: Some(child),
            log,
            namespace: namespace.into(),
            port,
        };
        controller.wait_ready(Duration::from_secs(60));
        controller
    }

    fn wait_ready(&mut self, timeout: Duration) {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!(
                    "the controller exited with {status}:\n{}",
                    self.log_tail(40)
                );
            }
            // Ready once its caches have synced (before that /readyz answers 503)
            if http_get(self.port, "/readyz").is_some_and(|(code, _)| code == 200) {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!(
            "the controller was not ready after {timeout:?}:\n{}",
            self.log_tail(40)
        );
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Kills the process with SIGKILL (no graceful shutdown) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The last `lines` lines of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Its `/metrics` text.
    pub fn metrics(&self) -> String {
        http_get(self.port, "/metrics")
            .map(|(_, body)| body)
            .unwrap_or_default()
    }

    /// The namespace it watches.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A plain HTTP/1.0 GET on loopback: status code and body.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let code = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())?;
    Some((code, body))
}

// === applying the examples ===

/// `kubectl apply --server-side` of a manifest into `namespace`. Server-side, because the
/// Northwind ConfigMap (285 kB) does not fit client-side apply's last-applied annotation.
pub fn apply_yaml(namespace: &str, yaml: &str) -> String {
    let mut child = Command::new(
        support::bin_dir()
            .expect("DATAMIGRATE_BIN_DIR")
            .join("kubectl"),
    )
    .args(["apply", "--server-side", "-n", namespace, "-f", "-"])
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("run kubectl apply");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(yaml.as_bytes())
        .expect("write the manifest");
    let output = child.wait_with_output().expect("kubectl apply");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "kubectl apply failed: {stderr}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// An example file's text.
pub fn example(path: &str) -> String {
    let full = repo().join("examples").join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("read {}: {e}", full.display()))
}

/// The Northwind Migration with its git output pointed at `url`.
pub fn northwind_migration(url: &str) -> String {
    let mut doc: serde_yaml::Value =
        serde_yaml::from_str(&example("northwind/migration.yaml")).expect("migration YAML");
    doc["spec"]["output"]["git"]["url"] = url.into();
    serde_yaml::to_string(&doc).expect("migration YAML")
}

/// Applies `examples/northwind/` (Secret, ConfigMap, the Migration pushing to `git_url`).
pub fn apply_northwind(namespace: &str, git_url: &str) {
    apply_yaml(namespace, &example("northwind/secret.yaml"));
    apply_yaml(namespace, &example("northwind/configmap.yaml"));
    apply_yaml(namespace, &northwind_migration(git_url));
}

// === git ===

/// Runs git and returns its stdout, asserting success.
pub fn git(args: &[&str]) -> String {
    let output = Command::new("git").args(args).output().expect("run git");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "git {args:?} failed: {stderr}");
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// A bare repository `<dir>/<name>.git` and its `file://` URL.
pub fn bare_repo(dir: &Path, name: &str) -> (PathBuf, String) {
    let path = dir.join(format!("{name}.git"));
    git(&["init", "-q", "--bare", path.to_str().expect("utf-8 path")]);
    let url = format!("file://{}", path.display());
    (path, url)
}

// === reading the Migration ===

/// The Migration API of a namespace.
pub fn migrations(client: &Client, namespace: &str) -> Api<Migration> {
    Api::namespaced(client.clone(), namespace)
}

/// A condition of the Migration's status.
pub fn condition<'a>(mig: &'a Migration, type_: &str) -> Option<&'a Condition> {
    mig.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
}

fn is_true(mig: &Migration, type_: &str) -> bool {
    condition(mig, type_).is_some_and(|c| c.status == "True")
}

/// Waits for `Ready=True` whose `observedGeneration` is the current generation; panics at once
/// if the Migration stalls (with the status and the controller's log tail).
pub async fn wait_ready(client: &Client, ns: &str, name: &str, ctl: &[&Controller]) -> Migration {
    let api = migrations(client, ns);
    let start = Instant::now();
    loop {
        let mig = api.get_opt(name).await.ok().flatten();
        if let Some(mig) = mig {
            let generation = mig.metadata.generation;
            let ready = condition(&mig, "Ready")
                .is_some_and(|c| c.status == "True" && c.observed_generation == generation);
            if ready {
                return mig;
            }
            if is_true(&mig, "Stalled") {
                panic!("{name} stalled: {}\n{}", status_yaml(&mig), logs(ctl));
            }
        }
        if start.elapsed() > RUN_TIMEOUT {
            panic!("{name} not Ready after {RUN_TIMEOUT:?}\n{}", logs(ctl));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Waits for `Stalled=True` for the current generation.
pub async fn wait_stalled(client: &Client, ns: &str, name: &str, ctl: &[&Controller]) -> Migration {
    let api = migrations(client, ns);
    let what = format!("{name} to stall");
    let found = tokio::time::timeout(RUN_TIMEOUT, async {
        loop {
            if let Some(mig) = api.get_opt(name).await.ok().flatten() {
                let generation = mig.metadata.generation;
                let stalled = condition(&mig, "Stalled")
                    .is_some_and(|c| c.status == "True" && c.observed_generation == generation);
                if stalled {
                    return mig;
                }
                if is_true(&mig, "Ready") {
                    panic!(
                        "{name} became Ready instead of stalling: {}",
                        status_yaml(&mig)
                    );
                }
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("timed out waiting for {what}\n{}", logs(ctl)))
}

/// The status as YAML, for failure messages.
pub fn status_yaml(mig: &Migration) -> String {
    serde_yaml::to_string(&mig.status).unwrap_or_default()
}

fn logs(ctl: &[&Controller]) -> String {
    ctl.iter()
        .map(|c| {
            format!(
                "--- controller log ({}):\n{}",
                c.log.display(),
                c.log_tail(30)
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The step Jobs of a Migration.
pub async fn jobs(client: &Client, ns: &str, name: &str) -> Vec<Job> {
    let api: Api<Job> = Api::namespaced(client.clone(), ns);
    let params = ListParams::default().labels(&format!("{LABEL_MIGRATION}={name}"));
    api.list(&params).await.expect("list jobs").items
}

/// `(step, attempt)` label pairs of the Jobs, sorted, with their names.
pub fn job_keys(jobs: &[Job]) -> Vec<(String, String, String)> {
    let mut keys: Vec<_> = jobs
        .iter()
        .map(|j| {
            let labels = j.metadata.labels.clone().unwrap_or_default();
            let label = |k: &str| labels.get(k).cloned().unwrap_or_default();
            let name = j.metadata.name.clone().unwrap_or_default();
            (
                label("datamigrate.ai/step"),
                label("datamigrate.ai/attempt"),
                name,
            )
        })
        .collect();
    keys.sort();
    keys
}

/// The pods of every step Job of a Migration.
pub async fn step_pods(client: &Client, ns: &str, name: &str) -> Vec<Pod> {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let params = ListParams::default().labels(&format!("{LABEL_MIGRATION}={name}"));
    api.list(&params).await.expect("list pods").items
}

/// The exit code of a pod's terminated `step` container.
pub fn exit_code(pod: &Pod) -> Option<i32> {
    let statuses = pod.status.as_ref()?.container_statuses.as_ref()?;
    let status = statuses.iter().find(|s| s.name == "step")?;
    Some(status.state.as_ref()?.terminated.as_ref()?.exit_code)
}

/// The pid of a pod's running `step` container (the pod runner's `pod-runner://<pid>` id).
pub fn running_pid(pod: &Pod) -> Option<u32> {
    let statuses = pod.status.as_ref()?.container_statuses.as_ref()?;
    let status = statuses.iter().find(|s| s.name == "step")?;
    status.state.as_ref()?.running.as_ref()?;
    status
        .container_id
        .as_ref()?
        .strip_prefix("pod-runner://")?
        .parse()
        .ok()
}

/// A process's command line, NUL separators as spaces.
pub fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

/// The Events about one object, as `type reason note` lines (via kubectl).
pub fn events(ns: &str, name: &str) -> Vec<(String, String, String)> {
    let selector = format!("involvedObject.name={name},involvedObject.kind=Migration");
    let out = support::kubectl_ok(&[
        "get",
        "events",
        "-n",
        ns,
        "--field-selector",
        &selector,
        "-o",
        "json",
    ]);
    let list: serde_json::Value = serde_json::from_str(&out).expect("events JSON");
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap_or_default().to_string();
            (s("type"), s("reason"), s("message"))
        })
        .collect()
}

// === kubectl get mig -w ===

/// `kubectl get mig -w` on a namespace running in the background, its lines collected (the
/// whole namespace: a watch on a name that does not exist yet ends at once).
pub struct Watch {
    child: Child,
    lines: Arc<Mutex<Vec<(Duration, String)>>>,
}

impl Watch {
    /// Starts watching the namespace's Migrations (none need exist yet).
    pub fn start(ns: &str) -> Self {
        let kubectl = support::bin_dir()
            .expect("DATAMIGRATE_BIN_DIR")
            .join("kubectl");
        let mut child = Command::new(kubectl)
            .args(["get", "mig", "-n", ns, "-w"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("run kubectl get -w");
        let stdout = child.stdout.take().expect("stdout");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let start = Instant::now();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(mut v) = sink.lock() {
                    v.push((start.elapsed(), line));
                }
            }
        });
        Self { child, lines }
    }

    /// Stops the watch and returns its lines with the time each arrived.
    pub fn stop(mut self) -> Vec<(Duration, String)> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::thread::sleep(Duration::from_millis(100));
        self.lines.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

/// One row of `kubectl get mig`: NAME PHASE PROGRESS READY AGE (empty cells are `<none>`...
/// or missing, so the row is read by its known vocabulary, not by position).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// PHASE, if shown.
    pub phase: Option<String>,
    /// PROGRESS `N/M`, if shown.
    pub progress: Option<(i64, i64)>,
}

/// Parses the data rows of a `kubectl get mig -w` capture (the header is skipped).
pub fn rows(lines: &[(Duration, String)]) -> Vec<Row> {
    const PHASES: [&str; 8] = [
        "Pending",
        "Extracting",
        "Generating",
        "Validating",
        "Publishing",
        "Succeeded",
        "Failed",
        "Suspended",
    ];
    lines
        .iter()
        .filter(|(_, l)| !l.starts_with("NAME"))
        .map(|(_, line)| {
            let cells: Vec<&str> = line.split_whitespace().collect();
            let phase = cells
                .iter()
                .find(|c| PHASES.contains(c))
                .map(|c| (*c).to_string());
            let progress = cells.iter().find_map(|c| {
                let (n, m) = c.split_once('/')?;
                Some((n.parse().ok()?, m.parse().ok()?))
            });
            Row { phase, progress }
        })
        .collect()
}

/// The phases in the order they were shown, repeats folded.
pub fn phase_sequence(rows: &[Row]) -> Vec<String> {
    let mut seq: Vec<String> = Vec::new();
    for phase in rows.iter().filter_map(|r| r.phase.clone()) {
        if seq.last() != Some(&phase) {
            seq.push(phase);
        }
    }
    seq
}
