//! One pod's life on the runner: prepare its folder and volumes, run the init containers in
//! order and then the containers together (restarting them as `restartPolicy` says), write its
//! status as things change, and on deletion stop the processes and remove the pod.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::future::join_all;
use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, Secret};
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::DeleteParams;
use rustix::process::Signal;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::ctx::Ctx;
use crate::envs::{self, Sources};
use crate::error::{Error, chain, is_not_found};
use crate::expand::expand_with;
use crate::process::{self, Launch, Mount, START_ERROR_EXIT};
use crate::status::{ContainerRun, Exit, Forced, Phase, PodRun, RestartPolicy, RunState};
use crate::termination::termination_message;
use crate::volumes::{self, PodDir};
use crate::writer::StatusWriter;

const DEFAULT_TERMINATION_PATH: &str = "/dev/termination-log";
const DEFAULT_GRACE: Duration = Duration::from_secs(30);
/// How long a run must last for the restart backoff to start over.
const BACKOFF_RESET_AFTER: Duration = Duration::from_secs(120);
const CONFIG_RETRY: Duration = Duration::from_secs(2);

/// Identity of a pod.
#[derive(Clone, Debug)]
pub struct PodKey {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// UID.
    pub uid: String,
}

impl PodKey {
    /// The key of a pod object.
    pub fn of(pod: &Pod) -> Self {
        let meta = &pod.metadata;
        Self {
            namespace: meta.namespace.clone().unwrap_or_default(),
            name: meta.name.clone().unwrap_or_default(),
            uid: meta.uid.clone().unwrap_or_default(),
        }
    }
}

/// Whether a pod bound here already ran, under an earlier runner process: some container
/// status says running or terminated.
pub fn ran_before(pod: &Pod) -> bool {
    let Some(status) = &pod.status else {
        return false;
    };
    let statuses = status
        .init_container_statuses
        .iter()
        .chain(&status.container_statuses);
    statuses.flatten().any(|cs| {
        cs.state
            .as_ref()
            .is_some_and(|s| s.running.is_some() || s.terminated.is_some())
    })
}

/// Whether the phase in the pod's status is Succeeded or Failed.
pub fn is_finished(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    matches!(phase, Some("Succeeded" | "Failed"))
}

/// Runs a pod bound to this node until it is deleted. `updates` carries the latest object,
/// `None` once it is gone from the API.
pub async fn run_pod(ctx: Arc<Ctx>, mut updates: watch::Receiver<Option<Pod>>) {
    let Some(pod) = updates.borrow().clone() else {
        return;
    };
    let key = PodKey::of(&pod);
    let dir = PodDir::new(&ctx.state_dir, &key.namespace, &key.name, &key.uid);
    let shared = Arc::new(Mutex::new(initial_run(&pod)));
    let writer = StatusWriter::spawn(ctx.clone(), key.clone(), shared.clone());
    let (stop_tx, stop_rx) = watch::channel(None::<Duration>);
    let task = PodTask {
        ctx: ctx.clone(),
        pod,
        key,
        dir,
        shared,
        writer,
        stop: stop_rx,
    };
    let deletion = async {
        let grace = wait_deleted(&mut updates).await;
        let _ = stop_tx.send(Some(grace));
    };
    tokio::join!(task.work(), deletion);
    let exists = updates.borrow().is_some();
    task.finish(exists).await;
}

fn initial_run(pod: &Pod) -> PodRun {
    let spec = pod.spec.clone().unwrap_or_default();
    let policy = RestartPolicy::from_spec(spec.restart_policy.as_deref());
    let first = if spec.init_containers.as_ref().is_some_and(|c| !c.is_empty()) {
        "PodInitializing"
    } else {
        "ContainerCreating"
    };
    let init = spec.init_containers.iter().flatten();
    let init = init
        .map(|c| ContainerRun::new(&c.name, image(c), "PodInitializing"))
        .collect();
    let main = spec
        .containers
        .iter()
        .map(|c| ContainerRun::new(&c.name, image(c), first))
        .collect();
    let mut run = PodRun::new(policy, init, main);
    run.start_time = Some(Timestamp::now());
    run
}

fn image(container: &Container) -> &str {
    container.image.as_deref().unwrap_or_default()
}

/// Waits until the pod has a deletion timestamp or is gone; returns its grace period.
async fn wait_deleted(updates: &mut watch::Receiver<Option<Pod>>) -> Duration {
    loop {
        let grace = match &*updates.borrow_and_update() {
            None => Some(Duration::ZERO),
            Some(pod) if pod.metadata.deletion_timestamp.is_some() => Some(grace_of(pod)),
            Some(_) => None,
        };
        if let Some(grace) = grace {
            return grace;
        }
        if updates.changed().await.is_err() {
            return Duration::ZERO;
        }
    }
}

fn grace_of(pod: &Pod) -> Duration {
    let seconds = pod.metadata.deletion_grace_period_seconds.or_else(|| {
        pod.spec
            .as_ref()
            .and_then(|s| s.termination_grace_period_seconds)
    });
    seconds.map_or(DEFAULT_GRACE, |s| {
        Duration::from_secs(u64::try_from(s).unwrap_or(0))
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Init,
    Main,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Succeeded,
    Failed,
    Stopped,
}

struct PodTask {
    ctx: Arc<Ctx>,
    pod: Pod,
    key: PodKey,
    dir: PodDir,
    shared: Arc<Mutex<PodRun>>,
    writer: StatusWriter,
    stop: watch::Receiver<Option<Duration>>,
}

/// What a prepared pod's containers need: the sources read once and the volume folders.
struct Prepared {
    sources: Sources,
    volumes: BTreeMap<String, PathBuf>,
}

impl PodTask {
    fn run(&self) -> MutexGuard<'_, PodRun> {
        self.shared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn stopped(&self) -> bool {
        self.stop.borrow().is_some()
    }

    /// Sleeps for `pause`; returns false if the pod was deleted meanwhile.
    async fn pause(&self, pause: Duration) -> bool {
        let mut stop = self.stop.clone();
        tokio::select! {
            () = tokio::time::sleep(pause) => true,
            _ = stop.wait_for(Option::is_some) => false,
        }
    }

    async fn work(&self) {
        if is_finished(&self.pod) {
            return;
        }
        if ran_before(&self.pod) && self.run().restart_policy == RestartPolicy::Never {
            self.abandon();
            return;
        }
        let Some(prepared) = self.prepare().await else {
            return;
        };
        info!(pod = %self.key.name, namespace = %self.key.namespace, "Started pod");
        let spec = self.pod.spec.clone().unwrap_or_default();
        for (index, container) in spec.init_containers.iter().flatten().enumerate() {
            let outcome = self
                .run_container(&prepared, Kind::Init, index, container)
                .await;
            if outcome != Outcome::Succeeded {
                return;
            }
        }
        self.set_main_waiting("ContainerCreating", None);
        let mains = spec.containers.iter().enumerate();
        join_all(mains.map(|(i, c)| self.run_container(&prepared, Kind::Main, i, c))).await;
    }

    /// A pod that ran under an earlier runner process and may not be restarted: Failed.
    fn abandon(&self) {
        let now = Timestamp::now();
        {
            let mut guard = self.run();
            let run = &mut *guard;
            for container in run.init.iter_mut().chain(run.main.iter_mut()) {
                abandon_container(container, now);
            }
            run.forced = Some(Forced {
                phase: Phase::Failed,
                reason: Some("PodRunnerRestarted".to_owned()),
                message: Some("the pod runner restarted while this pod ran".to_owned()),
            });
        }
        let (pod, namespace) = (&self.key.name, &self.key.namespace);
        warn!(%pod, %namespace, "Failed a pod left running by an earlier runner");
        self.writer.notify();
    }

    async fn prepare(&self) -> Option<Prepared> {
        loop {
            if self.stopped() {
                return None;
            }
            match self.try_prepare().await {
                Ok(prepared) => {
                    self.run().sandbox_ready = true;
                    self.writer.notify();
                    return Some(prepared);
                }
                Err(error) => self.report_config_error(&error),
            }
            if !self.pause(CONFIG_RETRY).await {
                return None;
            }
        }
    }

    async fn try_prepare(&self) -> Result<Prepared, Error> {
        self.dir.create()?;
        let sources = read_sources(&self.ctx.client, &self.key.namespace, &self.pod).await?;
        let volumes = volumes::prepare(
            &self.ctx.client,
            &self.ctx.state_dir,
            &self.pod,
            &self.dir,
            &sources,
        )
        .await?;
        Ok(Prepared { sources, volumes })
    }

    fn report_config_error(&self, error: &Error) {
        let (reason, message) = match error {
            Error::Config { message } => ("CreateContainerConfigError", message.clone()),
            other => ("ContainerCreating", chain(other)),
        };
        debug!(pod = %self.key.name, reason, message = %message, "Pod not ready to start");
        self.set_main_waiting(reason, Some(message));
    }

    fn set_main_waiting(&self, reason: &str, message: Option<String>) {
        let mut run = self.run();
        for container in &mut run.main {
            if matches!(container.state, RunState::Waiting { .. }) {
                container.state = RunState::Waiting {
                    reason: reason.to_owned(),
                    message: message.clone(),
                };
            }
        }
        drop(run);
        self.writer.notify();
    }

    fn with_container<T>(
        &self,
        kind: Kind,
        index: usize,
        f: impl FnOnce(&mut ContainerRun) -> T,
    ) -> T {
        let mut run = self.run();
        let list = if kind == Kind::Init {
            &mut run.init
        } else {
            &mut run.main
        };
        f(&mut list[index])
    }

    async fn run_container(
        &self,
        prepared: &Prepared,
        kind: Kind,
        index: usize,
        c: &Container,
    ) -> Outcome {
        let policy = self.run().restart_policy;
        let mut backoff = self.ctx.backoff_initial;
        loop {
            if self.stopped() {
                return Outcome::Stopped;
            }
            let launch = match self.launch(prepared, c) {
                Ok(launch) => launch,
                Err(error) => {
                    let message = Some(error.to_string());
                    let state = RunState::Waiting {
                        reason: "CreateContainerConfigError".into(),
                        message,
                    };
                    self.with_container(kind, index, |run| run.state = state);
                    self.writer.notify();
                    if !self.pause(CONFIG_RETRY).await {
                        return Outcome::Stopped;
                    }
                    continue;
                }
            };
            let began = Instant::now();
            let exit = self.run_once(kind, index, c, &launch).await;
            let code = exit.exit_code;
            self.with_container(kind, index, |run| run.state = RunState::Terminated(exit));
            self.writer.notify();
            if self.stopped() {
                return Outcome::Stopped;
            }
            let restarts = match kind {
                Kind::Init => code != 0 && policy != RestartPolicy::Never,
                Kind::Main => policy.restarts(code),
            };
            if !restarts {
                return if code == 0 {
                    Outcome::Succeeded
                } else {
                    Outcome::Failed
                };
            }
            if began.elapsed() > BACKOFF_RESET_AFTER {
                backoff = self.ctx.backoff_initial;
            }
            let message = format!(
                "back-off {}s restarting container {}",
                backoff.as_secs(),
                c.name
            );
            self.with_container(kind, index, |run| {
                run.back_off("CrashLoopBackOff", Some(message))
            });
            self.writer.notify();
            if !self.pause(backoff).await {
                return Outcome::Stopped;
            }
            backoff = (backoff * 2).min(self.ctx.backoff_max);
        }
    }

    fn launch(&self, prepared: &Prepared, c: &Container) -> Result<Launch, Error> {
        let images = self.ctx.image_table()?;
        let base = self.ctx.base_env(&self.pod, images.bin_dir(image(c)));
        let env = envs::container_env(&self.pod, c, &prepared.sources, base)?;
        let mut argv: Vec<String> = c
            .command
            .iter()
            .flatten()
            .chain(c.args.iter().flatten())
            .map(|part| expand_with(part, &env))
            .collect();
        if argv.is_empty() {
            return Err(Error::config(format!(
                "container {} has no command; the pod runner cannot read image entrypoints",
                c.name
            )));
        }
        argv.shrink_to_fit();
        let mut mounts = Vec::new();
        for mount in c.volume_mounts.iter().flatten() {
            let Some(folder) = prepared.volumes.get(&mount.name) else {
                return Err(Error::config(format!("volume {} not found", mount.name)));
            };
            let sub = mount.sub_path.as_deref().filter(|s| !s.is_empty());
            let source = sub.map_or_else(|| folder.clone(), |s| folder.join(s));
            let read_only = mount.read_only.unwrap_or(false);
            mounts.push(Mount {
                source,
                target: PathBuf::from(&mount.mount_path),
                read_only,
            });
        }
        let termination_target = c
            .termination_message_path
            .as_deref()
            .unwrap_or(DEFAULT_TERMINATION_PATH);
        let termination = self.dir.termination_file(&c.name);
        mounts.push(Mount {
            source: termination,
            target: termination_target.into(),
            read_only: false,
        });
        Ok(Launch {
            argv,
            env,
            working_dir: c.working_dir.clone().filter(|d| !d.is_empty()),
            mounts,
            log: self
                .ctx
                .log_path(&self.key.namespace, &self.key.name, &c.name),
            start_error_file: self.dir.start_error_file(&c.name),
        })
    }

    /// Starts the process, waits for it (or stops it on deletion) and says how it ended.
    async fn run_once(&self, kind: Kind, index: usize, c: &Container, launch: &Launch) -> Exit {
        let first = self.with_container(kind, index, |run| {
            run.restart_count == 0 && run.last.is_none()
        });
        let log_start = match prepare_files(launch, &self.dir.termination_file(&c.name), first) {
            Ok(offset) => offset,
            Err(error) => return start_error(None, chain(&error)),
        };
        let started = Timestamp::now();
        let mut child = match process::spawn(&self.ctx.unshare, &self.ctx.helper, launch) {
            Ok(child) => child,
            Err(error) => return start_error(Some(started), error.to_string()),
        };
        let pid = child.id().unwrap_or_default();
        self.with_container(kind, index, |run| run.start(Some(pid), started));
        self.writer.notify();
        info!(pod = %self.key.name, container = %c.name, pid, "Started container");
        let status = self.wait_or_stop(&mut child, pid).await;
        // Whatever the command left running in its process group goes with it.
        process::signal_group(pid, Signal::KILL);
        let finished = Timestamp::now();
        let (code, signal) = match status {
            Ok(status) => process::exit_code(status),
            Err(_) => (START_ERROR_EXIT, None),
        };
        if let Ok(message) = std::fs::read_to_string(&launch.start_error_file) {
            let _ = std::fs::remove_file(&launch.start_error_file);
            return start_error(Some(started), message);
        }
        let mut exit = Exit::new(code, Some(started), finished);
        exit.signal = signal;
        exit.message = termination_message(
            c,
            &self.dir.termination_file(&c.name),
            &launch.log,
            log_start,
            code,
        );
        info!(pod = %self.key.name, container = %c.name, exit_code = code, "Container ended");
        exit
    }

    async fn wait_or_stop(
        &self,
        child: &mut tokio::process::Child,
        pid: u32,
    ) -> std::io::Result<std::process::ExitStatus> {
        let mut stop = self.stop.clone();
        let grace = tokio::select! {
            status = child.wait() => return status,
            grace = stop.wait_for(Option::is_some) => {
                grace.ok().and_then(|g| *g).unwrap_or_default()
            }
        };
        process::signal_group(pid, Signal::TERM);
        match tokio::time::timeout(grace, child.wait()).await {
            Ok(status) => status,
            Err(_) => {
                process::signal_group(pid, Signal::KILL);
                child.wait().await
            }
        }
    }

    /// After deletion: a terminal phase, a last status, the pod removed, its folder deleted.
    async fn finish(mut self, exists: bool) {
        let now = Timestamp::now();
        {
            let mut guard = self.run();
            let run = &mut *guard;
            if !run.phase().is_terminal() {
                for container in run.init.iter_mut().chain(run.main.iter_mut()) {
                    abandon_container(container, now);
                }
                let all_ok = run
                    .main
                    .iter()
                    .all(|c| matches!(&c.state, RunState::Terminated(e) if e.exit_code == 0));
                let phase = if all_ok {
                    Phase::Succeeded
                } else {
                    Phase::Failed
                };
                run.forced = Some(Forced {
                    phase,
                    reason: None,
                    message: None,
                });
            }
        }
        if exists {
            self.writer.notify();
            self.writer.flush().await;
            self.delete_now().await;
        }
        if let Err(error) = std::fs::remove_dir_all(&self.dir.root)
            && error.kind() != std::io::ErrorKind::NotFound
        {
            warn!(pod = %self.key.name, error = %error, "Failed to remove pod folder");
        }
        info!(pod = %self.key.name, namespace = %self.key.namespace, "Removed pod");
    }

    async fn delete_now(&self) {
        let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), &self.key.namespace);
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            ..DeleteParams::default()
        };
        for attempt in 0..30_u32 {
            match api.delete(&self.key.name, &params).await {
                Ok(_) => return,
                Err(error) if is_not_found(&error) => return,
                Err(error) => {
                    let error = chain(&error);
                    warn!(pod = %self.key.name, attempt, error = %error, "Failed to delete pod");
                }
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

fn abandon_container(container: &mut ContainerRun, now: Timestamp) {
    if matches!(container.state, RunState::Terminated(_)) {
        return;
    }
    let started_at = container.started_at();
    let mut exit = Exit::new(137, started_at, now);
    exit.reason = "ContainerStatusUnknown".to_owned();
    exit.message = Some("the container was not running when the pod ended".to_owned());
    container.state = RunState::Terminated(exit);
}

fn start_error(started: Option<Timestamp>, message: String) -> Exit {
    let mut exit = Exit::new(START_ERROR_EXIT, started, Timestamp::now());
    exit.reason = "StartError".to_owned();
    exit.message = Some(message.trim().to_owned());
    exit
}

/// Creates the log and an empty termination file; returns where this run's log starts.
fn prepare_files(
    launch: &Launch,
    termination: &std::path::Path,
    truncate_log: bool,
) -> Result<u64, Error> {
    for path in [&launch.log, termination, &launch.start_error_file] {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::write(parent, e))?;
        }
    }
    std::fs::write(termination, b"").map_err(|e| Error::write(termination, e))?;
    let _ = std::fs::remove_file(&launch.start_error_file);
    if truncate_log {
        std::fs::write(&launch.log, b"").map_err(|e| Error::write(&launch.log, e))?;
    }
    Ok(std::fs::metadata(&launch.log).map(|m| m.len()).unwrap_or(0))
}

/// Reads the ConfigMaps and Secrets the pod refers to; a missing one is recorded as `None`.
async fn read_sources(client: &kube::Client, namespace: &str, pod: &Pod) -> Result<Sources, Error> {
    let refs = envs::references(pod);
    let mut sources = Sources::default();
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    for name in refs.config_maps {
        let found = config_maps
            .get_opt(&name)
            .await
            .map_err(|source| Error::Api {
                action: "get configmap",
                name: name.clone(),
                source,
            })?;
        sources.config_maps.insert(name, found);
    }
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    for name in refs.secrets {
        let found = secrets.get_opt(&name).await.map_err(|source| Error::Api {
            action: "get secret",
            name: name.clone(),
            source,
        })?;
        sources.secrets.insert(name, found);
    }
    Ok(sources)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pods_that_ran_before_are_recognised_by_their_container_states() {
        let fresh: Pod = serde_json::from_value(json!({"metadata": {"name": "p"},
            "status": {"phase": "Pending", "containerStatuses": [{"name": "c", "image": "i",
            "imageID": "", "ready": false, "restartCount": 0,
            "state": {"waiting": {"reason": "ContainerCreating"}}}]}}))
        .unwrap();
        assert!(!ran_before(&fresh));
        let ran: Pod = serde_json::from_value(json!({"metadata": {"name": "p"},
            "status": {"phase": "Running", "containerStatuses": [{"name": "c", "image": "i",
            "imageID": "", "ready": true, "restartCount": 0,
            "state": {"running": {}}}]}}))
        .unwrap();
        assert!(ran_before(&ran));
        assert!(!is_finished(&ran));
    }

    #[test]
    fn grace_period_comes_from_the_deletion_then_the_spec() {
        let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "p",
            "deletionGracePeriodSeconds": 3}, "spec": {"containers": [],
            "terminationGracePeriodSeconds": 9}}))
        .unwrap();
        assert_eq!(grace_of(&pod), Duration::from_secs(3));
        let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "p"},
            "spec": {"containers": [], "terminationGracePeriodSeconds": 9}}))
        .unwrap();
        assert_eq!(grace_of(&pod), Duration::from_secs(9));
    }
}
