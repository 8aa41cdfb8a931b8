//! `pod-runner`: a node stand-in for tests and the dev cluster. It registers a Node, binds
//! pending pods to it and runs their containers as local processes, each in its own mount
//! namespace with the pod's volumes bind-mounted at their `mountPath`s.
//!
//! State folder layout (`--state-dir`):
//! - `pods/<namespace>_<pod>_<uid>/` (0700): volumes, termination files; removed with the pod.
//! - `pvc/<namespace>/<claim>/`: a claim's data, kept until the claim is deleted.
//! - `logs/<namespace>/<pod>/<container>.log`: stdout and stderr of each container (restarts
//!   append). `kubectl logs` does not work: it needs a kubelet's API; read these files.
//!
//! On start, a pod bound to this node that had already started under an earlier runner process
//! is marked Failed (reason `PodRunnerRestarted`) when its `restartPolicy` is `Never`, and is
//! run again from the start otherwise.

mod ctx;
mod envs;
mod error;
mod expand;
mod images;
mod node;
mod pod;
mod process;
mod status;
mod termination;
mod volumes;
mod writer;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Binding, ObjectReference, PersistentVolumeClaim, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{ListParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use crate::ctx::Ctx;
use crate::error::{Error, chain};
use crate::images::ImageTable;
use crate::pod::{is_finished, ran_before};

const DEFAULT_SCHEDULER: &str = "default-scheduler";
const CLAIM_SWEEP: Duration = Duration::from_secs(10);

/// Command-line options.
#[derive(Debug, Parser)]
#[command(
    name = "pod-runner",
    about = "Runs pods bound to a test Node as local processes"
)]
struct Args {
    /// The Node to register and play.
    #[arg(long, env = "POD_RUNNER_NODE_NAME", default_value = "datamigrate-node")]
    node_name: String,
    /// Folder for pods, claims and logs.
    #[arg(long, env = "POD_RUNNER_STATE_DIR")]
    state_dir: PathBuf,
    /// `repository=bin-dir` pairs, comma separated.
    #[arg(long, env = "POD_RUNNER_IMAGES", default_value = "")]
    images: String,
    /// More `repository=bin-dir` lines, re-read at each container start [default: <state>/images].
    #[arg(long)]
    images_file: Option<PathBuf>,
    /// Host variables passed to every container, comma separated.
    #[arg(long, env = "POD_RUNNER_PASS_ENV", default_value = "LANG,TZ")]
    pass_env: String,
    /// `KUBERNETES_SERVICE_HOST` for containers [default: from the kubeconfig].
    #[arg(long)]
    service_host: Option<String>,
    /// `KUBERNETES_SERVICE_PORT` for containers [default: from the kubeconfig].
    #[arg(long)]
    service_port: Option<u16>,
    /// First restart delay in milliseconds (doubles up to the maximum).
    #[arg(long, default_value_t = 1000)]
    backoff_initial_ms: u64,
    /// Largest restart delay in milliseconds.
    #[arg(long, default_value_t = 30_000)]
    backoff_max_ms: u64,
}

fn main() -> std::process::ExitCode {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if argv.get(1).is_some_and(|a| a == "exec") {
        let code = process::exec_main(argv[2..].to_vec());
        return std::process::ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("pod-runner: cannot start the async runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(Args::parse())) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = %chain(&error), "Pod runner stopped");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), Error> {
    let ctx = Arc::new(context(&args).await?);
    info!(node = %ctx.node_name, state_dir = %ctx.state_dir.display(), "Pod runner starting");
    tokio::spawn(node::keep_alive(ctx.client.clone(), ctx.node_name.clone()));
    tokio::spawn(sweep_claims(ctx.clone()));
    let mut supervisor = Supervisor::new(ctx);
    tokio::select! {
        () = supervisor.run() => Ok(()),
        _ = shutdown_signal() => {
            info!("Pod runner stopping");
            Ok(())
        }
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

async fn context(args: &Args) -> Result<Ctx, Error> {
    let config = kube::Config::infer().await.map_err(|e| Error::Client {
        source: kube::Error::InferConfig(e),
    })?;
    let url = config.cluster_url.clone();
    let client = Client::try_from(config).map_err(|source| Error::Client { source })?;
    let state_dir =
        std::path::absolute(&args.state_dir).map_err(|e| Error::write(&args.state_dir, e))?;
    std::fs::create_dir_all(&state_dir).map_err(|e| Error::write(&state_dir, e))?;
    let images = ImageTable::parse(&args.images).map_err(|source| Error::Images { source })?;
    let helper = std::env::current_exe().map_err(|e| Error::write(Path::new("current_exe"), e))?;
    let pass_env = args.pass_env.split(',').filter(|n| !n.is_empty());
    let pass_env = pass_env.filter_map(|n| std::env::var(n).ok().map(|v| (n.to_owned(), v)));
    Ok(Ctx {
        client,
        node_name: args.node_name.clone(),
        images_file: args
            .images_file
            .clone()
            .unwrap_or_else(|| state_dir.join("images")),
        state_dir,
        service_host: args
            .service_host
            .clone()
            .or_else(|| url.host().map(str::to_owned))
            .unwrap_or_else(|| "127.0.0.1".to_owned()),
        service_port: args.service_port.or_else(|| url.port_u16()).unwrap_or(443),
        images,
        helper,
        unshare: find_program("unshare"),
        pass_env: pass_env.collect(),
        backoff_initial: Duration::from_millis(args.backoff_initial_ms),
        backoff_max: Duration::from_millis(args.backoff_max_ms),
    })
}

/// The absolute path of a program on the runner's PATH (containers get their own PATH).
fn find_program(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}

// === impl Supervisor ===

/// Watches every pod, binds the unscheduled ones and keeps one task per pod bound here.
struct Supervisor {
    ctx: Arc<Ctx>,
    tasks: HashMap<String, watch::Sender<Option<Pod>>>,
    binding: HashSet<String>,
    listed: Option<HashSet<String>>,
    done_tx: mpsc::UnboundedSender<String>,
    done_rx: mpsc::UnboundedReceiver<String>,
}

impl Supervisor {
    fn new(ctx: Arc<Ctx>) -> Self {
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        Self {
            ctx,
            tasks: HashMap::new(),
            binding: HashSet::new(),
            listed: None,
            done_tx,
            done_rx,
        }
    }

    async fn run(&mut self) {
        let api: Api<Pod> = Api::all(self.ctx.client.clone());
        let stream = watcher(api, watcher::Config::default()).default_backoff();
        let mut stream = std::pin::pin!(stream);
        loop {
            tokio::select! {
                event = stream.next() => match event {
                    Some(Ok(event)) => self.on_event(event),
                    Some(Err(error)) => warn!(error = %chain(&error), "Pod watch failed; retrying"),
                    None => return,
                },
                Some(uid) = self.done_rx.recv() => {
                    self.tasks.remove(&uid);
                }
            }
        }
    }

    fn on_event(&mut self, event: watcher::Event<Pod>) {
        match event {
            watcher::Event::Init => self.listed = Some(HashSet::new()),
            watcher::Event::InitApply(pod) => {
                if let (Some(listed), Some(uid)) = (&mut self.listed, &pod.metadata.uid) {
                    listed.insert(uid.clone());
                }
                self.on_pod(pod);
            }
            watcher::Event::InitDone => self.forget_unlisted(),
            watcher::Event::Apply(pod) => self.on_pod(pod),
            watcher::Event::Delete(pod) => {
                let uid = pod.metadata.uid.clone().unwrap_or_default();
                self.binding.remove(&uid);
                if let Some(task) = self.tasks.get(&uid) {
                    let _ = task.send(None);
                }
            }
        }
    }

    /// After a (re)list: pods that vanished meanwhile are gone, and so are the folders of pods
    /// that an earlier runner process left behind.
    fn forget_unlisted(&mut self) {
        let Some(listed) = self.listed.take() else {
            return;
        };
        for (uid, task) in &self.tasks {
            if !listed.contains(uid) {
                let _ = task.send(None);
            }
        }
        self.binding.retain(|uid| listed.contains(uid));
        let keep = |uid: &str| listed.contains(uid) || self.tasks.contains_key(uid);
        remove_orphan_pod_dirs(&self.ctx.state_dir.join("pods"), keep);
    }

    fn on_pod(&mut self, pod: Pod) {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        if let Some(task) = self.tasks.get(&uid) {
            let _ = task.send(Some(pod));
            return;
        }
        let spec = pod.spec.as_ref();
        let node = spec
            .and_then(|s| s.node_name.as_deref())
            .unwrap_or_default();
        if node.is_empty() {
            self.maybe_bind(pod, uid);
        } else if node == self.ctx.node_name && !is_finished(&pod) {
            self.start_task(pod, uid);
        }
    }

    fn maybe_bind(&mut self, pod: Pod, uid: String) {
        let spec = pod.spec.as_ref();
        let scheduler = spec
            .and_then(|s| s.scheduler_name.as_deref())
            .unwrap_or(DEFAULT_SCHEDULER);
        let wanted = scheduler == DEFAULT_SCHEDULER && pod.metadata.deletion_timestamp.is_none();
        if wanted && self.binding.insert(uid) {
            tokio::spawn(bind(self.ctx.clone(), pod));
        }
    }

    fn start_task(&mut self, pod: Pod, uid: String) {
        if ran_before(&pod) {
            info!(pod = ?pod.metadata.name, "Found a pod started by an earlier runner");
        }
        let (tx, rx) = watch::channel(Some(pod));
        self.tasks.insert(uid.clone(), tx);
        let (ctx, done) = (self.ctx.clone(), self.done_tx.clone());
        tokio::spawn(async move {
            pod::run_pod(ctx, rx).await;
            let _ = done.send(uid);
        });
    }
}

/// Binds a pod to the node through the `binding` subresource, retrying while the API server
/// is unavailable.
async fn bind(ctx: Arc<Ctx>, pod: Pod) {
    let key = pod::PodKey::of(&pod);
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &key.namespace);
    let binding = Binding {
        metadata: ObjectMeta {
            name: Some(key.name.clone()),
            uid: Some(key.uid.clone()),
            ..ObjectMeta::default()
        },
        target: ObjectReference {
            api_version: Some("v1".to_owned()),
            kind: Some("Node".to_owned()),
            name: Some(ctx.node_name.clone()),
            ..ObjectReference::default()
        },
    };
    for attempt in 0..60_u32 {
        let result: Result<serde_json::Value, kube::Error> = api
            .create_subresource("binding", &key.name, &PostParams::default(), &binding)
            .await;
        match result {
            Ok(_) => {
                info!(pod = %key.name, namespace = %key.namespace, "Bound pod");
                return;
            }
            Err(kube::Error::Api(status)) if matches!(status.code, 404 | 409) => return,
            Err(error) => {
                warn!(pod = %key.name, attempt, error = %chain(&error), "Failed to bind pod")
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Removes the folders of claims that no longer exist.
async fn sweep_claims(ctx: Arc<Ctx>) {
    let api: Api<PersistentVolumeClaim> = Api::all(ctx.client.clone());
    loop {
        tokio::time::sleep(CLAIM_SWEEP).await;
        let claims = match api.list_metadata(&ListParams::default()).await {
            Ok(list) => list.items,
            Err(error) => {
                warn!(error = %chain(&error), "Failed to list claims");
                continue;
            }
        };
        let live: HashSet<(String, String)> = claims
            .into_iter()
            .filter(|c| c.metadata.deletion_timestamp.is_none())
            .filter_map(|c| Some((c.metadata.namespace?, c.metadata.name?)))
            .collect();
        remove_dead_claims(&ctx.state_dir.join("pvc"), &live);
    }
}

/// Pod folders are `<namespace>_<name>_<uid>`; names cannot contain `_`.
fn remove_orphan_pod_dirs(root: &Path, keep: impl Fn(&str) -> bool) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some((_, uid)) = name.rsplit_once('_') else {
            continue;
        };
        if !keep(uid) {
            info!(folder = %name, "Removed the folder of a pod that is gone");
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn remove_dead_claims(root: &Path, live: &HashSet<(String, String)>) {
    let Ok(namespaces) = std::fs::read_dir(root) else {
        return;
    };
    for ns in namespaces.flatten() {
        let Ok(claims) = std::fs::read_dir(ns.path()) else {
            continue;
        };
        let ns_name = ns.file_name().to_string_lossy().into_owned();
        for claim in claims.flatten() {
            let name = claim.file_name().to_string_lossy().into_owned();
            if !live.contains(&(ns_name.clone(), name.clone())) {
                info!(namespace = %ns_name, claim = %name, "Removed data of a deleted claim");
                let _ = std::fs::remove_dir_all(claim.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_folders_of_pods_that_are_gone_are_removed() {
        let root = tempfile::tempdir().unwrap();
        for dir in ["ns_live-pod_uid-1", "ns_gone-pod_uid-2"] {
            std::fs::create_dir_all(root.path().join(dir)).unwrap();
        }
        remove_orphan_pod_dirs(root.path(), |uid| uid == "uid-1");
        assert!(root.path().join("ns_live-pod_uid-1").exists());
        assert!(!root.path().join("ns_gone-pod_uid-2").exists());
    }

    #[test]
    fn only_folders_of_deleted_claims_are_removed() {
        let root = tempfile::tempdir().unwrap();
        for claim in ["ns1/keep", "ns1/gone", "ns2/gone"] {
            std::fs::create_dir_all(root.path().join(claim)).unwrap();
        }
        let live = HashSet::from([("ns1".to_owned(), "keep".to_owned())]);
        remove_dead_claims(root.path(), &live);
        assert!(root.path().join("ns1/keep").exists());
        assert!(!root.path().join("ns1/gone").exists());
        assert!(!root.path().join("ns2/gone").exists());
    }
}
