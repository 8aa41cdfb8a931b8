//! Helpers for the operator's cluster tests: the CRD, a controller process per test scoped to
//! the test's namespace, the agent image mapping for the pod runner, and status waits.

#![allow(dead_code)]

use std::fs::File;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use datamigrate::crd::Migration;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, CustomResourceExt, ResourceExt};
use serde_json::{Value, json};

use crate::support;

/// The agent image the tests use; the pod runner maps its repository to the agent's venv.
pub const AGENT_IMAGE: &str = "ghcr.io/datamigrate-ai/datamigrate-agent:test";
/// An image with no pod-runner entry: `python -m datamigrate_agent` then runs on the host's
/// Python, which lacks the package, so every step exits 1 (a retryable failure).
pub const BROKEN_IMAGE: &str = "example.invalid/no-agent-here:1";
/// Held by each test whose run reaches the agent's migrate step. Under the pod runner every
/// pod shares the host's `/dev/shm`, where the agent keeps a scratch DuckDB keyed by the
/// workspace path (`/workspace` in every pod), so two concurrent migrate steps would collide;
/// in a cluster each pod has its own `/dev/shm`.
pub static AGENT_RUNS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The minimal example's script.
pub const MINIMAL_SCRIPT: &str = include_str!("../../examples/minimal/configmap.yaml");

/// Applies the generated CRD and waits until it is established.
pub async fn install_crd(client: &Client) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let params = PatchParams::apply("datamigrate-tests").force();
    api.patch(
        "migrations.datamigrate.ai",
        &params,
        &Patch::Apply(Migration::crd()),
    )
    .await
    .expect("apply the Migration CRD");
    support::wait_until(
        "the CRD to be established",
        Duration::from_secs(30),
        || async {
            let crd = api.get("migrations.datamigrate.ai").await.ok()?;
            let established = crd
                .status?
                .conditions?
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True");
            established.then_some(())
        },
    )
    .await;
}

fn venv() -> PathBuf {
    if let Some(v) = std::env::var_os("DATAMIGRATE_VENV").filter(|v| !v.is_empty()) {
        return PathBuf::from(v);
    }
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new(format!("{root}/scripts/setup-agent"))
        .output()
        .expect("run scripts/setup-agent");
    let text = String::from_utf8_lossy(&out.stdout);
    PathBuf::from(
        text.lines()
            .last()
            .expect("setup-agent prints the venv")
            .trim(),
    )
}

/// Makes the pod runner run [`AGENT_IMAGE`] from the agent's venv (idempotent).
pub fn register_agent_image() {
    let images = support::runner_dir().join("images");
    let repo = AGENT_IMAGE.split(':').next().unwrap_or(AGENT_IMAGE);
    let existing = std::fs::read_to_string(&images).unwrap_or_default();
    if existing
        .lines()
        .any(|l| l.trim().starts_with(&format!("{repo}=")))
    {
        return;
    }
    let line = format!("{repo}={}\n", venv().join("bin").display());
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&images)
        .expect("open the pod runner's image table");
    file.write_all(line.as_bytes())
        .expect("append to the image table");
}

/// A `datamigrate controller` process watching one namespace; killed when dropped.
pub struct Operator {
    child: Option<Child>,
    /// Its combined log (JSON lines).
    pub log: PathBuf,
    namespace: String,
    dir: PathBuf,
}

impl Operator {
    /// Starts a controller for `namespace` with fast retries (extra args appended).
    pub fn start(namespace: &str, extra: &[&str]) -> Self {
        Self::start_named(namespace, "main", extra)
    }

    /// Same as [`Operator::start`], with its own log folder `tag` (for a second replica).
    pub fn start_named(namespace: &str, tag: &str, extra: &[&str]) -> Self {
        let dir = std::env::temp_dir().join(format!("datamigrate-op-{namespace}-{tag}"));
        std::fs::create_dir_all(&dir).expect("operator test folder");
        let defaults = dir.join("work-pod-defaults.yaml");
        std::fs::write(
            &defaults,
            "backoffLimit: 0\nttlSecondsAfterFinished: 3600\n",
        )
        .expect("write work pod defaults");
        let mut op = Self {
            child: None,
            log: dir.join("controller.log"),
            namespace: namespace.into(),
            dir,
        };
        op.spawn(&defaults, extra);
        op
    }

    fn spawn(&mut self, defaults: &std::path::Path, extra: &[&str]) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open controller log");
        let err = log.try_clone().expect("clone log handle");
        let mut args = vec![
            "controller".to_string(),
            format!("--namespace={}", self.namespace),
            "--metrics-addr=127.0.0.1:0".into(),
            format!("--work-pod-defaults={}", defaults.display()),
            "--step-retry-base-seconds=1".into(),
            "--step-retry-max-seconds=2".into(),
            "--error-backoff-max-seconds=3".into(),
            "--log-format=json".into(),
        ];
        args.extend(extra.iter().map(|s| (*s).to_string()));
        let child = Command::new(env!("CARGO_BIN_EXE_datamigrate"))
            .args(&args)
            .env("RUST_LOG", "info,datamigrate=debug,kube=warn")
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err))
            .spawn()
            .expect("start the controller");
        self.child = Some(child);
    }

    /// Kills the process at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the process again with the same settings.
    pub fn restart(&mut self, extra: &[&str]) {
        self.kill();
        let defaults = self.dir.join("work-pod-defaults.yaml");
        self.spawn(&defaults, extra);
    }

    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Sends SIGTERM and waits up to `timeout` for the exit status.
    pub fn terminate(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let child = self.child.as_mut()?;
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let start = std::time::Instant::now();
        while start.elapsed() < timeout {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }

    /// The address the probes and metrics server bound (read from the log).
    pub async fn probe_addr(&self) -> String {
        support::wait_until(
            "the probe server address",
            Duration::from_secs(30),
            || async {
                self.log_text()
                    .lines()
                    .filter(|l| l.contains("Serving probes and metrics"))
                    .find_map(|l| {
                        serde_json::from_str::<Value>(l).ok()?["addr"]
                            .as_str()
                            .map(String::from)
                    })
            },
        )
        .await
    }

    /// The log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            let tail: String = self
                .log_text()
                .lines()
                .rev()
                .take(40)
                .collect::<Vec<_>>()
                .join("\n");
            eprintln!("controller log (last lines, newest first):\n{tail}");
        }
    }
}

/// `GET path` on `addr` over plain HTTP/1.0: (status code, body).
pub async fn http_get(addr: &str, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect to the probe server");
    let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("send request");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .expect("read response");
    let code = response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (code, body)
}

/// Creates the minimal example's ConfigMap (`minimal-script`, key `schema.sql`).
pub async fn create_minimal_script(client: &Client, ns: &str) {
    let cm: ConfigMap = serde_yaml::from_str(MINIMAL_SCRIPT).expect("minimal configmap");
    create_configmap(client, ns, cm).await;
}

/// Creates a ConfigMap `name` with one script key.
pub async fn create_script(client: &Client, ns: &str, name: &str, key: &str, text: &str) {
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": name}, "data": {key: text}
    }))
    .expect("script configmap");
    create_configmap(client, ns, cm).await;
}

async fn create_configmap(client: &Client, ns: &str, cm: ConfigMap) {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    api.create(&PostParams::default(), &cm)
        .await
        .expect("create configmap");
}

/// The minimal example's spec with `image` as the agent image, merged with `extra`.
pub fn migration(name: &str, image: &str, extra: Value) -> Value {
    let mut spec = json!({
        "source": {"script": {"configMapKeyRef": {"name": "minimal-script", "key": "schema.sql"}}},
        // A project name per Migration: parallel runs then never share agent scratch state.
        "target": {"dialect": "duckdb", "projectName": name.replace('-', "_")},
        "agent": {"image": image},
    });
    merge(&mut spec, extra);
    json!({"apiVersion": "datamigrate.ai/v1alpha1", "kind": "Migration",
           "metadata": {"name": name}, "spec": spec})
}

fn merge(base: &mut Value, extra: Value) {
    match (base, extra) {
        (Value::Object(b), Value::Object(e)) => {
            for (k, v) in e {
                merge(b.entry(k).or_insert(Value::Null), v);
            }
        }
        (b, e) => *b = e,
    }
}

/// Creates a Migration from its JSON.
pub async fn create_migration(client: &Client, ns: &str, body: Value) -> Migration {
    let api: Api<Migration> = Api::namespaced(client.clone(), ns);
    let mig: Migration = serde_json::from_value(body).expect("migration body");
    api.create(&PostParams::default(), &mig)
        .await
        .expect("create migration")
}

/// Merge-patches a Migration's spec or metadata.
pub async fn patch_migration(client: &Client, ns: &str, name: &str, patch: Value) {
    let api: Api<Migration> = Api::namespaced(client.clone(), ns);
    api.patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .expect("patch migration");
}

/// Waits until `check` holds for the Migration, returning it.
pub async fn wait_for<F>(
    client: &Client,
    ns: &str,
    name: &str,
    what: &str,
    secs: u64,
    check: F,
) -> Migration
where
    F: Fn(&Migration) -> bool,
{
    let api: Api<Migration> = Api::namespaced(client.clone(), ns);
    let check = &check;
    support::wait_until(what, Duration::from_secs(secs), || {
        let api = api.clone();
        async move {
            let mig = api.get(name).await.ok()?;
            check(&mig).then_some(mig)
        }
    })
    .await
}

/// Attempts per step, in run order, from the Migration's status.
pub fn step_attempts(mig: &Migration) -> Vec<i32> {
    mig.status
        .iter()
        .flat_map(|s| &s.steps)
        .map(|s| s.attempts)
        .collect()
}

/// The Migration's phase as a string ("" when unset).
pub fn phase(mig: &Migration) -> String {
    mig.status
        .as_ref()
        .and_then(|s| s.phase)
        .map(|p| p.as_str().to_string())
        .unwrap_or_default()
}

/// A condition's (status, reason), if set.
pub fn condition(mig: &Migration, type_: &str) -> Option<(String, String)> {
    let c = mig
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)?;
    Some((c.status.clone(), c.reason.clone()))
}

/// The names of the step Jobs in `ns`, sorted.
pub async fn job_names(client: &Client, ns: &str) -> Vec<String> {
    let api: Api<Job> = Api::namespaced(client.clone(), ns);
    let params = ListParams::default().labels("app.kubernetes.io/managed-by=datamigrate-operator");
    let mut names: Vec<String> = api
        .list(&params)
        .await
        .expect("list jobs")
        .items
        .iter()
        .map(ResourceExt::name_any)
        .collect();
    names.sort();
    names
}

/// The Events about objects in `ns` (events.k8s.io), as (type, reason, note).
pub async fn events(client: &Client, ns: &str) -> Vec<(String, String, String)> {
    let api: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), ns);
    api.list(&ListParams::default())
        .await
        .expect("list events")
        .items
        .into_iter()
        .map(|e| {
            (
                e.type_.unwrap_or_default(),
                e.reason.unwrap_or_default(),
                e.note.unwrap_or_default(),
            )
        })
        .collect()
}

/// Everything about `ns` as JSON text: for the no-secret-values checks.
pub async fn dump_events_json(client: &Client, ns: &str) -> String {
    let api: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), ns);
    serde_json::to_string(
        &api.list(&ListParams::default())
            .await
            .expect("list events")
            .items,
    )
    .expect("events json")
}

/// Writes `text` to a file in the temp folder (for debugging failed runs).
pub fn save(name: &str, text: &str) {
    if let Ok(mut f) = File::create(std::env::temp_dir().join(name)) {
        let _ = f.write_all(text.as_bytes());
    }
}
