//! The Migration controller: `Context`, `run`, `reconcile`, `error_policy`.
//!
//! Watches: Migrations (cached without managed fields; only spec, reconcile-request and
//! deletion changes trigger), and the metadata only of the Jobs and ConfigMaps the operator
//! labels and owns (a progress patch by the agent triggers a reconcile, which folds it into
//! status). Referenced Secrets and the script ConfigMap are read by name in reconcile (see
//! `observe.rs`), never watched. `docs/architecture.md` lists each reconcile's round trips.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, ObjectReference, Pod};
use k8s_openapi::api::rbac::v1::RoleBinding;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::{self, Store, reflector};
use kube::runtime::{PredicateConfig, WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use rand::Rng;
use tracing::{debug, info, instrument, warn};

use crate::crd::{Migration, MigrationPhase, MigrationStatus, StepPhase};
use crate::job::{LABEL_MANAGED_BY, MANAGED_BY, WorkPodDefaults, build_job};
use crate::metrics::Metrics;
use crate::observe::{self, Reports};
use crate::owned::{self, WorkspaceSettings};
use crate::plan::{ANNOTATION_BUDGET_START, JobObservation, JobState, RetryPolicy, RunState};
use crate::pods::{self, Blockers, PodBlocker};
use crate::status::{self, InputsCheck, Observation, condition_type, reason};
use crate::steps::{Step, steps_for};
use crate::{Error, Result};

/// The one field manager of everything the operator applies, status included.
pub const FIELD_MANAGER: &str = "datamigrate-operator";
/// Periodic requeue of a finished, stalled or suspended Migration (recomputes `secretsHash`).
pub const REQUEUE_IDLE: Duration = Duration::from_secs(300);
/// Requeue while a step runs: a safety net only, since every change of the step's Job and of
/// the agent's progress ConfigMap triggers a reconcile through the watches.
pub const REQUEUE_RUNNING: Duration = Duration::from_secs(300);

/// Longest wait before a missing Secret or ConfigMap is looked for again.
pub const MISSING_INPUT_RECHECK: Duration = Duration::from_secs(20);

/// Per-object backoff of failed reconciles: exponential with jitter, capped, reset on success.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErrorBackoff {
    /// First delay.
    pub base: Duration,
    /// Longest delay.
    pub cap: Duration,
}

impl Default for ErrorBackoff {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(300),
        }
    }
}

impl ErrorBackoff {
    /// Delay after `failures` consecutive failures, scaled by `jitter` (0.8 to 1.2).
    #[must_use]
    pub fn delay(&self, failures: u32, jitter: f64) -> Duration {
        let exp = failures.saturating_sub(1).min(20);
        let raw = self.base.saturating_mul(1 << exp).min(self.cap);
        raw.mul_f64(jitter.clamp(0.5, 1.5)).min(self.cap)
    }
}

/// Controller settings, from the command line.
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// Namespaces to watch; empty watches all.
    pub namespaces: Vec<String>,
    /// Defaults of every step Job (the chart's work pod defaults).
    pub work_pod_defaults: WorkPodDefaults,
    /// Workspace PVC size and class.
    pub workspace: WorkspaceSettings,
    /// Step retry policy.
    pub retry: RetryPolicy,
    /// Reconcile error backoff.
    pub error_backoff: ErrorBackoff,
    /// Reconciles in flight at once (0: unbounded).
    pub concurrency: u16,
}

/// State shared by every reconcile.
pub struct Context {
    /// API client.
    pub client: Client,
    /// Who publishes the Events.
    pub reporter: Reporter,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Settings.
    pub config: Config,
    /// Step pods that cannot start, kept by the pod watch.
    pub blockers: Arc<Blockers>,
    failures: Mutex<HashMap<String, u32>>,
}

impl Context {
    /// A context for `client`.
    #[must_use]
    pub fn new(client: Client, config: Config, metrics: Arc<Metrics>) -> Self {
        let reporter = Reporter {
            controller: FIELD_MANAGER.into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Self {
            client,
            reporter,
            metrics,
            config,
            blockers: Arc::default(),
            failures: Mutex::default(),
        }
    }

    fn bump_failures(&self, key: &str) -> u32 {
        let Ok(mut map) = self.failures.lock() else {
            return 1;
        };
        let n = map.entry(key.to_string()).or_insert(0);
        *n = n.saturating_add(1);
        *n
    }

    fn reset_failures(&self, key: &str) {
        if let Ok(mut map) = self.failures.lock() {
            map.remove(key);
        }
    }
}

fn object_key(mig: &Migration) -> String {
    format!("{}/{}", mig.namespace().unwrap_or_default(), mig.name_any())
}

/// A future that resolves when the process should stop.
pub type ShutdownSignal =
    std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + Sync + 'static>>;

/// Runs the controller until `shutdown` resolves; `synced` counts the watch caches that have
/// finished their first list (ready when it equals the number of watched scopes).
pub async fn run(
    ctx: Arc<Context>,
    synced: Arc<AtomicUsize>,
    shutdown: impl Fn() -> ShutdownSignal,
) {
    let scopes: Vec<Option<String>> = if ctx.config.namespaces.is_empty() {
        vec![None]
    } else {
        ctx.config.namespaces.iter().cloned().map(Some).collect()
    };
    let mut stores = Vec::new();
    let mut runs = Vec::new();
    for scope in scopes {
        let settings = controller::Config::default().concurrency(ctx.config.concurrency);
        let controller = controller_for(&ctx, scope.as_deref())
            .with_config(settings)
            .graceful_shutdown_on(shutdown());
        let store = controller.store();
        stores.push(store.clone());
        let synced = synced.clone();
        tokio::spawn(count_when_synced(store, synced));
        runs.push(
            controller
                .run(reconcile, error_policy, ctx.clone())
                .for_each(log_result),
        );
    }
    let gauge = tokio::spawn(update_phase_gauge(stores, ctx.metrics.clone()));
    futures::future::join_all(runs).await;
    gauge.abort();
}

/// Adds one to `synced` once `store` has its first full list.
///
/// kube-runtime's readiness signal is a oneshot that wakes only the last waiter to poll it, and
/// the controller's own runner waits on it too; so this waiter re-polls on a short timeout
/// instead of relying on a wake-up.
async fn count_when_synced(store: Store<Migration>, synced: Arc<AtomicUsize>) {
    loop {
        let wait = tokio::time::timeout(Duration::from_millis(200), store.wait_until_ready());
        match wait.await {
            Ok(Ok(())) => {
                synced.fetch_add(1, Ordering::SeqCst);
                return;
            }
            Ok(Err(_)) => return,
            Err(_) => {}
        }
    }
}

fn controller_for(ctx: &Context, namespace: Option<&str>) -> Controller<Migration> {
    let client = &ctx.client;
    let (migs, jobs, cms, pods): (Api<Migration>, Api<Job>, Api<ConfigMap>, Api<Pod>) =
        match namespace {
            Some(ns) => (
                Api::namespaced(client.clone(), ns),
                Api::namespaced(client.clone(), ns),
                Api::namespaced(client.clone(), ns),
                Api::namespaced(client.clone(), ns),
            ),
            None => (
                Api::all(client.clone()),
                Api::all(client.clone()),
                Api::all(client.clone()),
                Api::all(client.clone()),
            ),
        };
    let (reader, writer) = reflector::store();
    // The cache keeps Migrations without their managed fields (they are most of an object's
    // size and never read); the operator's own status writes trigger no new reconcile.
    let triggers = reflector(
        writer,
        watcher(migs, watcher::Config::default().any_semantic())
            .modify(|m| m.managed_fields_mut().clear()),
    )
    .applied_objects()
    .predicate_filter(wants_reconcile, PredicateConfig::default());
    let managed = watcher::Config::default().labels(&format!("{LABEL_MANAGED_BY}={MANAGED_BY}"));
    // `owns` watches metadata only (kube 5 uses a metadata watcher), so Job specs and progress
    // payloads are never cached.
    // Step pods are watched, not cached: only the blocked ones are kept (see `pods`). Their
    // first list is paged from etcd: a list from the watch cache (`resourceVersion=0`) comes
    // whole, every pod at once.
    let pod_triggers = pods::triggers(watcher(pods, managed.clone()), ctx.blockers.clone());
    Controller::for_stream(triggers, reader)
        .owns(jobs, managed.clone())
        .owns(cms, managed)
        .watches_stream(pod_triggers, |pod| pods::owner_migration(&pod))
}

/// What a change must touch to need a reconcile: the spec (generation), the reconcile-request
/// annotation, or the deletion mark; or it is another object of the same name (the filter
/// remembers hashes by name, and a Migration re-created under its old name starts again at
/// generation 1). Status and managed-field updates, most of them the operator's own, hash the
/// same and are dropped; owned Jobs and ConfigMaps trigger on their own.
fn wants_reconcile(mig: &Migration) -> Option<u64> {
    let mut hasher = std::hash::DefaultHasher::new();
    mig.metadata.uid.hash(&mut hasher);
    mig.metadata.generation.hash(&mut hasher);
    status::requested_reconcile(mig).hash(&mut hasher);
    mig.metadata.deletion_timestamp.is_some().hash(&mut hasher);
    Some(hasher.finish())
}

async fn log_result<E: std::error::Error + 'static>(
    result: Result<(kube::runtime::reflector::ObjectRef<Migration>, Action), E>,
) {
    match result {
        Ok((obj, action)) => debug!(object = %obj, ?action, "Reconciled"),
        Err(e) => debug!(error = %crate::error_chain(&e), "Reconcile failed"),
    }
}

async fn update_phase_gauge(stores: Vec<Store<Migration>>, metrics: Arc<Metrics>) {
    loop {
        let mut counts: HashMap<MigrationPhase, i64> = HashMap::new();
        for mig in stores.iter().flat_map(Store::state) {
            let phase = mig
                .status
                .as_ref()
                .and_then(|s| s.phase)
                .unwrap_or(MigrationPhase::Pending);
            *counts.entry(phase).or_insert(0) += 1;
        }
        let counts: Vec<_> = counts.into_iter().collect();
        metrics.set_phases(&counts);
        tokio::time::sleep(Duration::from_secs(10)).await;
    }
}

fn now() -> Time {
    Time(k8s_openapi::jiff::Timestamp::now())
}

/// Reconciles one Migration: the fixed script in [`reconcile_steps`], plus metrics, backoff
/// reset and the report of permanent errors.
///
/// # Errors
/// Whatever a step of the script returns; see [`error_policy`].
#[instrument(skip_all, fields(generation = mig.metadata.generation))]
pub async fn reconcile(mig: Arc<Migration>, ctx: Arc<Context>) -> Result<Action> {
    let started = Instant::now();
    let result = reconcile_steps(&mig, &ctx).await;
    ctx.metrics.observe_reconcile(started.elapsed());
    match &result {
        Ok(_) => ctx.reset_failures(&object_key(&mig)),
        Err(e) => {
            ctx.metrics.observe_failure(e.reason());
            if e.is_permanent() {
                report_error(&mig, &ctx, e, true).await;
            } else if matches!(e, Error::ForeignObject { .. }) {
                report_error(&mig, &ctx, e, false).await;
            }
        }
    }
    result
}

async fn reconcile_steps(mig: &Migration, ctx: &Context) -> Result<Action> {
    let now = now();
    // Observe in one round trip: the step Jobs, the Secrets, the script ConfigMap and, for a
    // Migration that has not started, its ServiceAccount (the one owned object a pod cannot be
    // created without), so that its first Job is the next write; the agent's reports once a
    // step has run
    let fresh = has_not_started(mig);
    let (mut jobs, secrets, script, reports, account, _) = futures::try_join!(
        observe::observe_jobs(&ctx.client, mig),
        observe::check_secrets(&ctx.client, mig),
        when(fresh, observe::check_script(&ctx.client, mig)),
        when(!fresh, observe::read_reports(&ctx.client, mig)),
        when(fresh && !mig.spec.suspend, apply_service_account(mig, ctx)),
        when(fresh, observe::check_workspace(&ctx.client, mig)),
    )?;

    // Decide the next move
    let retry = status::retry_requested(mig);
    let mut run = crate::plan::next_move(
        &steps_for(mig),
        &jobs,
        mig.status.as_ref(),
        retry,
        &ctx.config.retry,
        &now,
    );
    let before_extract = matches!(
        run,
        RunState::Create {
            step: Step::Extract,
            ..
        }
    );
    let script = match (before_extract, fresh) {
        (false, _) => None,
        (true, true) => script.flatten(),
        (true, false) => observe::check_script(&ctx.client, mig).await?,
    };
    let inputs = match (secrets, script) {
        (InputsCheck::Found { .. }, Some(problem)) => problem,
        (secrets, _) => secrets,
    };

    // Explain a failed step with its pod's termination message, a stuck one with its pod's
    // waiting reason
    explain_failure(mig, ctx, &mut run, &mut jobs).await?;
    let pod_blocker = running_blocker(mig, ctx, &run);

    // Ensure owned objects and create the next Job, or suspend/resume the running one
    let owned = Owned {
        account_ready: account.is_some(),
        // A Job from a reconcile whose owned objects then failed: ensure them now
        // or a step runs and its progress ConfigMap is gone (deleted by hand)
        repair: !mig.spec.suspend
            && match &run {
                RunState::Create { .. } => false,
                RunState::Running { .. } => fresh || reports.as_ref().is_some_and(|r| !r.found),
                _ => fresh,
            },
    };
    let events = act(mig, ctx, &mut run, &mut jobs, &inputs, owned).await?;

    // Write the status, then the Events of this reconcile
    let mut obs = observation(jobs, reports.unwrap_or_default(), inputs, run);
    obs.pod_blocker = pod_blocker;
    write_status(mig, ctx, &status::desired_status(mig, &obs, &now)).await?;
    for event in &events {
        publish_event(mig, ctx, event).await;
    }

    // Requeue according to the run state
    next_action(mig, &obs)
}

/// Runs `fut` only when `wanted`.
async fn when<T>(wanted: bool, fut: impl Future<Output = Result<T>>) -> Result<Option<T>> {
    if wanted {
        fut.await.map(Some)
    } else {
        Ok(None)
    }
}

/// No step of the current status has a Job yet: the Migration is new (or its status was lost).
fn has_not_started(mig: &Migration) -> bool {
    mig.status
        .as_ref()
        .is_none_or(|s| s.steps.iter().all(|step| step.job_name.is_none()))
}

fn observation(
    jobs: Vec<JobObservation>,
    r: Reports,
    inputs: InputsCheck,
    run: RunState,
) -> Observation {
    Observation {
        jobs,
        progress: r.progress,
        summary: r.summary,
        publish: r.publish,
        inputs,
        run,
        pod_blocker: None,
    }
}

/// Why the running step's pod cannot start, from the pod watch.
fn running_blocker(mig: &Migration, ctx: &Context, run: &RunState) -> Option<PodBlocker> {
    match run {
        RunState::Running { job } if job.state == JobState::Running => {
            ctx.blockers.for_job(&observe::namespace(mig), &job.name)
        }
        _ => None,
    }
}

/// Which owned objects this reconcile has ensured already, or must.
#[derive(Clone, Copy, Debug)]
struct Owned {
    /// The agent's ServiceAccount was applied in the observe round trip.
    account_ready: bool,
    /// No Job is to be created, but the Migration's status shows none either: a previous
    /// reconcile created its Job and failed before the status write, maybe on an owned object.
    repair: bool,
}

/// The agent's ServiceAccount: step pods are refused admission without it.
async fn apply_service_account(mig: &Migration, ctx: &Context) -> Result<()> {
    let sa = owned::agent_service_account(mig)?;
    apply(&ctx.client, &observe::namespace(mig), &sa, "ServiceAccount").await
}

/// Creates or updates the workspace PVC, the progress ConfigMap and the agent's Role and
/// RoleBinding, the RoleBinding after its Role: without `bind` on Roles, the API server resolves
/// the Role to check the binding grants nothing the operator lacks, and refuses a binding to a
/// Role it cannot find (NotFound). A pod created before them waits for its volume, and the
/// agent reaches the API seconds later, so they may go out with the Job.
#[instrument(skip_all)]
async fn ensure_workspace_and_rbac(mig: &Migration, ctx: &Context) -> Result<()> {
    let (client, ns) = (&ctx.client, &observe::namespace(mig));
    let pvc = owned::workspace_pvc(mig, &ctx.config.workspace)?;
    let cm = owned::progress_configmap(mig)?;
    let (role, binding) = (
        owned::progress_role(mig)?,
        owned::progress_role_binding(mig)?,
    );
    futures::try_join!(
        create_if_missing(mig, client, ns, &pvc, "PersistentVolumeClaim"),
        apply(client, ns, &cm, "ConfigMap"),
        async {
            apply(client, ns, &role, "Role").await?;
            apply_binding(client, ns, &binding).await
        },
    )?;
    Ok(())
}

/// Applies the agent's RoleBinding. The API server checks a new binding against its Role as its
/// RBAC cache has it, which may trail the Role just written by milliseconds: a NotFound is
/// tried again a few times, within half a second, before it fails the reconcile.
async fn apply_binding(client: &Client, ns: &str, binding: &RoleBinding) -> Result<()> {
    let mut delay = Duration::from_millis(25);
    loop {
        match apply(client, ns, binding, "RoleBinding").await {
            Err(Error::ApplyOwned {
                source: kube::Error::Api(s),
                ..
            }) if s.code == 404 && delay < Duration::from_millis(400) => {
                debug!(
                    retry_in_ms = delay.as_millis(),
                    "RoleBinding refused: Role not seen yet"
                );
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            result => return result,
        }
    }
}

/// Creates `obj` unless it exists (a PVC's spec is immutable, so it is never re-applied).
async fn create_if_missing<K>(
    mig: &Migration,
    client: &Client,
    ns: &str,
    obj: &K,
    kind: &'static str,
) -> Result<()>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::Serialize
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    match api.create(&PostParams::default(), obj).await {
        Ok(_) => {
            info!(kind, name = %obj.name_any(), "Created owned object");
            Ok(())
        }
        Err(kube::Error::Api(s)) if s.code == 409 => {
            // A claim of an earlier Migration of this name is about to go, data and all
            let existing =
                api.get_opt(&obj.name_any())
                    .await
                    .map_err(|source| Error::ApplyOwned {
                        kind,
                        name: obj.name_any(),
                        source,
                    })?;
            match existing {
                Some(e) if e.meta().deletion_timestamp.is_some() || !owned::owned_by(&e, mig) => {
                    Err(Error::ForeignObject {
                        kind,
                        name: obj.name_any(),
                    })
                }
                _ => Ok(()),
            }
        }
        Err(source) => Err(Error::ApplyOwned {
            kind,
            name: obj.name_any(),
            source,
        }),
    }
}

async fn apply<K>(client: &Client, ns: &str, obj: &K, kind: &'static str) -> Result<()>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::Serialize
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    let mut value =
        serde_json::to_value(obj).map_err(|source| Error::Serialize { what: kind, source })?;
    value["apiVersion"] = K::api_version(&K::DynamicType::default()).into();
    value["kind"] = K::kind(&K::DynamicType::default()).into();
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api.patch(&obj.name_any(), &params, &Patch::Apply(value))
        .await
        .map(|_| ())
        .map_err(|source| Error::ApplyOwned {
            kind,
            name: obj.name_any(),
            source,
        })
}

/// Puts the failed pod's termination message on the Job that stalled or backs off (read once:
/// the previous status keeps it for the same Job).
async fn explain_failure(
    mig: &Migration,
    ctx: &Context,
    run: &mut RunState,
    jobs: &mut [JobObservation],
) -> Result<()> {
    let (RunState::Backoff { job, .. } | RunState::Stalled { job, .. }) = run else {
        return Ok(());
    };
    let known =
        mig.status.iter().flat_map(|s| &s.steps).find(|s| {
            s.job_name.as_deref() == Some(job.name.as_str()) && s.phase == StepPhase::Failed
        });
    let message = match known.and_then(|s| s.message.clone()) {
        Some(message) => Some(message),
        None => {
            observe::termination_message(&ctx.client, &observe::namespace(mig), &job.name).await?
        }
    };
    if let Some(message) = message {
        job.message = Some(message.clone());
        if let Some(j) = jobs.iter_mut().find(|j| j.name == job.name) {
            j.message = Some(message);
        }
    }
    Ok(())
}

/// Creates the next Job (after the owned objects where needed) or suspends/resumes the running
/// one; returns the Events to publish once the status is written.
async fn act(
    mig: &Migration,
    ctx: &Context,
    run: &mut RunState,
    jobs: &mut Vec<JobObservation>,
    inputs: &InputsCheck,
    owned: Owned,
) -> Result<Vec<Event>> {
    if owned.repair {
        apply_service_account(mig, ctx).await?;
        ensure_workspace_and_rbac(mig, ctx).await?;
    }
    match run.clone() {
        RunState::Create {
            step,
            attempt,
            budget_start,
        } => {
            if mig.spec.suspend || matches!(inputs, InputsCheck::Missing { .. }) {
                return Ok(Vec::new());
            }
            let create = create_job(mig, ctx, step, attempt, budget_start);
            let (job, event) = if needs_owned_objects(step, attempt) {
                if !owned.account_ready {
                    apply_service_account(mig, ctx).await?;
                }
                futures::try_join!(ensure_workspace_and_rbac(mig, ctx), create)?.1
            } else {
                create.await?
            };
            jobs.retain(|j| j.name != job.name);
            jobs.push(job.clone());
            *run = match job.state {
                JobState::Running | JobState::Suspended => RunState::Running { job },
                // A Job that exists already and has finished: the next reconcile moves on.
                _ => run.clone(),
            };
            Ok(event.into_iter().collect())
        }
        RunState::Running { job } if job.suspend != mig.spec.suspend => {
            set_job_suspend(mig, ctx, &job.name, mig.spec.suspend).await?;
            let state = if mig.spec.suspend {
                JobState::Suspended
            } else {
                JobState::Running
            };
            let updated = JobObservation {
                suspend: mig.spec.suspend,
                state,
                ..job
            };
            if let Some(j) = jobs.iter_mut().find(|j| j.name == updated.name) {
                *j = updated.clone();
            }
            *run = RunState::Running { job: updated };
            Ok(Vec::new())
        }
        _ => Ok(Vec::new()),
    }
}

/// The workspace, progress ConfigMap and RBAC are ensured before the first step and before
/// every retry (which also repairs an owned object someone deleted); later steps' first
/// attempts then cost no writes but their Job.
fn needs_owned_objects(step: Step, attempt: i32) -> bool {
    step == Step::Extract || attempt > 1
}

#[instrument(skip_all, fields(step = step.as_str(), attempt))]
async fn create_job(
    mig: &Migration,
    ctx: &Context,
    step: Step,
    attempt: i32,
    budget_start: i32,
) -> Result<(JobObservation, Option<Event>)> {
    let mut job = build_job(mig, step, attempt, &ctx.config.work_pod_defaults)?;
    job.metadata
        .annotations
        .get_or_insert_default()
        .insert(ANNOTATION_BUDGET_START.into(), budget_start.to_string());
    let name = job.name_any();
    let api: Api<Job> = Api::namespaced(ctx.client.clone(), &observe::namespace(mig));
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    };
    let created = JobObservation {
        name: name.clone(),
        step,
        attempt,
        budget_start,
        state: JobState::Running,
        suspend: mig.spec.suspend,
        start_time: None,
        finish_time: None,
        message: None,
    };
    match api.create(&params, &job).await {
        Ok(_) => {
            info!(job = %name, "Created step job");
            ctx.metrics.observe_job_created(step.as_str());
            Ok((created, Some(job_created_event(mig, step, attempt, &name))))
        }
        Err(kube::Error::Api(s)) if s.code == 409 => {
            // The Job list trailed a Job that exists: read it, so status shows where it is.
            debug!(job = %name, "Job already exists");
            let existing = api.get_opt(&name).await.map_err(|source| Error::Observe {
                what: "jobs",
                source,
            })?;
            if let Some(job) = existing.as_ref().filter(|j| !owned::owned_by(*j, mig)) {
                return Err(Error::ForeignObject {
                    kind: "Job",
                    name: job.name_any(),
                });
            }
            let seen = existing.as_ref().and_then(JobObservation::from_job);
            Ok((seen.unwrap_or(created), None))
        }
        Err(source) => Err(Error::CreateJob { name, source }),
    }
}

/// The step's Job as the related object: each Event names the Job it is about.
fn job_created_event(mig: &Migration, step: Step, attempt: i32, name: &str) -> Event {
    let note = format!(
        "Created Job {name} for step {} (attempt {attempt})",
        step.as_str()
    );
    Event {
        type_: EventType::Normal,
        reason: reason::STEP_RUNNING.into(),
        note: Some(note),
        action: "CreateJob".into(),
        secondary: Some(job_reference(mig, name)),
    }
}

async fn set_job_suspend(mig: &Migration, ctx: &Context, name: &str, suspend: bool) -> Result<()> {
    let api: Api<Job> = Api::namespaced(ctx.client.clone(), &observe::namespace(mig));
    let patch = serde_json::json!({"spec": {"suspend": suspend}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .map_err(|source| Error::PatchJob {
            name: name.into(),
            source,
        })?;
    info!(job = %name, suspend, "Set job suspend");
    Ok(())
}

/// Applies `desired` on `/status` unless it equals the current status, then publishes an Event
/// if the phase or the Ready reason moved, and records finished steps' durations.
async fn write_status(mig: &Migration, ctx: &Context, desired: &MigrationStatus) -> Result<()> {
    let prev = mig.status.clone().unwrap_or_default();
    if &prev == desired {
        debug!("Status unchanged");
        return Ok(());
    }
    patch_status(mig, ctx, desired).await?;
    record_finished_steps(ctx, &prev, desired);
    if let Some((why, note)) = status::transition(&prev, desired) {
        let phase = desired.phase.map_or("", MigrationPhase::as_str);
        info!(phase, reason = %why, "Migration moved");
        // The current step's Job as the related object, as on the CreateJob Events
        let event = Event {
            type_: event_type(&why),
            reason: leak(&why).into(),
            note: Some(crate::truncate(&note, 1024)),
            action: "UpdateStatus".into(),
            secondary: current_job(desired).map(|name| job_reference(mig, name)),
        };
        publish_event(mig, ctx, &event).await;
    }
    Ok(())
}

async fn patch_status(mig: &Migration, ctx: &Context, status: &MigrationStatus) -> Result<()> {
    let api: Api<Migration> = Api::namespaced(ctx.client.clone(), &observe::namespace(mig));
    let body = serde_json::json!({
        "apiVersion": Migration::api_version(&()),
        "kind": Migration::kind(&()),
        "status": status,
    });
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api.patch_status(&mig.name_any(), &params, &Patch::Apply(body))
        .await
        .map(|_| ())
        .map_err(|source| Error::PatchStatus { source })
}

fn record_finished_steps(ctx: &Context, prev: &MigrationStatus, next: &MigrationStatus) {
    for step in &next.steps {
        let finished = matches!(step.phase, StepPhase::Succeeded | StepPhase::Failed);
        let was = prev.steps.iter().find(|s| s.name == step.name);
        let new = was.is_none_or(|w| w.phase != step.phase || w.job_name != step.job_name);
        if let (true, true, Some(start), Some(end)) =
            (finished, new, &step.start_time, &step.completion_time)
        {
            let took = crate::plan::elapsed(start, end);
            ctx.metrics
                .observe_step(&step.name, step.phase == StepPhase::Succeeded, took);
        }
    }
}

/// The Job of the latest step that has one (steps are listed in run order).
fn current_job(status: &MigrationStatus) -> Option<&str> {
    status
        .steps
        .iter()
        .rev()
        .find_map(|s| s.job_name.as_deref())
}

fn event_type(why: &str) -> EventType {
    let warnings = [
        reason::STEP_FAILED,
        reason::RETRIES_EXHAUSTED,
        reason::STEP_BACKOFF,
        reason::SECRET_NOT_FOUND,
        reason::SECRET_KEY_NOT_FOUND,
        reason::CONFIGMAP_NOT_FOUND,
        reason::CONFIGMAP_KEY_NOT_FOUND,
        reason::INVALID_SPEC,
        reason::POD_CANNOT_START,
    ];
    if warnings.contains(&why) {
        EventType::Warning
    } else {
        EventType::Normal
    }
}

/// Reasons are one of the `reason` constants; match back to the static one.
fn leak(why: &str) -> &'static str {
    reason::ALL
        .iter()
        .copied()
        .find(|r| *r == why)
        .unwrap_or("StatusChanged")
}

async fn publish(
    mig: &Migration,
    ctx: &Context,
    type_: EventType,
    why: &'static str,
    action: &'static str,
    note: String,
) {
    let event = Event {
        type_,
        reason: why.into(),
        note: Some(crate::truncate(&note, 1024)),
        action: action.into(),
        secondary: None,
    };
    publish_event(mig, ctx, &event).await;
}

fn job_reference(mig: &Migration, name: &str) -> ObjectReference {
    ObjectReference {
        api_version: Some("batch/v1".into()),
        kind: Some("Job".into()),
        name: Some(name.into()),
        namespace: mig.metadata.namespace.clone(),
        ..ObjectReference::default()
    }
}

async fn publish_event(mig: &Migration, ctx: &Context, event: &Event) {
    // A recorder per Event: kube's recorder keeps every Event it published for six minutes to
    // fold repeats into a series, which cost 9 MB of its cache at 1,000 Migrations (heaptrack);
    // this operator publishes on transitions only, so there is little to fold.
    let recorder = Recorder::new(ctx.client.clone(), ctx.reporter.clone());
    if let Err(e) = recorder.publish(event, &mig.object_ref(&())).await {
        warn!(
            error = %crate::error_chain(&e),
            "Failed to publish event"
        );
    }
}

/// Marks the Migration Stalled (a permanent error) or waiting (an object of an earlier
/// Migration of its name is in the way) with the error's reason and a Warning Event, once per
/// reason.
async fn report_error(mig: &Migration, ctx: &Context, err: &Error, stalled: bool) {
    let prev = mig.status.clone().unwrap_or_default();
    let already = status::find_condition(&prev, condition_type::READY)
        .is_some_and(|c| c.status == "False" && c.reason == err.reason());
    if already {
        return;
    }
    let mut next = prev.clone();
    let (now, generation, message) = (now(), mig.metadata.generation, err.chain(1024));
    for (t, value) in [
        (condition_type::READY, false),
        (condition_type::RECONCILING, !stalled),
        (condition_type::STALLED, stalled),
    ] {
        let c = status::condition(t, value, err.reason(), &message, generation, &now);
        status::set_condition(&mut next.conditions, c);
    }
    next.observed_generation = generation;
    next.phase = Some(if stalled {
        MigrationPhase::Failed
    } else {
        prev.phase.unwrap_or(MigrationPhase::Pending)
    });
    next.message = Some(crate::truncate(&message, 512));
    if let Err(e) = patch_status(mig, ctx, &next).await {
        warn!(error = %crate::error_chain(&e), "Failed to report an error in status");
    }
    warn!(error = %crate::error_chain(err), stalled, "Migration cannot go on");
    publish(
        mig,
        ctx,
        EventType::Warning,
        err.reason(),
        "Reconcile",
        message,
    )
    .await;
}

fn next_action(mig: &Migration, obs: &Observation) -> Result<Action> {
    if let (RunState::Create { .. }, InputsCheck::Missing { reason, message }) =
        (&obs.run, &obs.inputs)
    {
        return Err(Error::MissingInput {
            reason,
            message: message.clone(),
        });
    }
    Ok(match &obs.run {
        _ if mig.spec.suspend => Action::requeue(REQUEUE_IDLE),
        RunState::Done | RunState::Stalled { .. } => Action::requeue(REQUEUE_IDLE),
        RunState::Backoff { wait, .. } => Action::requeue(*wait + Duration::from_millis(200)),
        RunState::Running { .. } => Action::requeue(REQUEUE_RUNNING),
        // Still Create after `act`: the Job existed and had finished (no watch event will come
        // for it), so decide again at once from a fresh list
        RunState::Create { .. } => Action::requeue(Duration::from_secs(1)),
    })
}

/// Requeue after a failed reconcile: capped exponential backoff with jitter per object for
/// transient errors; the cap for permanent ones (they wait for a change, which triggers a
/// reconcile at once, but are never dropped for good).
pub fn error_policy(mig: Arc<Migration>, err: &Error, ctx: Arc<Context>) -> Action {
    let backoff = ctx.config.error_backoff;
    if err.is_permanent() {
        return Action::requeue(backoff.cap);
    }
    let failures = ctx.bump_failures(&object_key(&mig));
    let mut delay = backoff.delay(failures, rand::rng().random_range(0.8..1.2));
    if matches!(
        err,
        Error::MissingInput { .. } | Error::ForeignObject { .. }
    ) {
        // Referenced Secrets and ConfigMaps, and claims, are not watched: look again soon, not
        // in minutes
        delay = delay.min(MISSING_INPUT_RECHECK);
    }
    warn!(
        error = %crate::error_chain(err),
        reason = err.reason(),
        failures,
        retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
        "Reconcile failed, will retry"
    );
    Action::requeue(delay)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{MigrationExt, at, script_migration};

    #[test]
    fn error_backoff_doubles_with_jitter_and_stops_at_the_cap() {
        let b = ErrorBackoff {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(60),
        };
        assert_eq!(b.delay(1, 1.0), Duration::from_secs(1));
        assert_eq!(b.delay(4, 1.0), Duration::from_secs(8));
        assert_eq!(b.delay(4, 1.2), Duration::from_millis(9600));
        assert_eq!(b.delay(30, 1.2), Duration::from_secs(60));
    }

    #[test]
    fn only_spec_annotation_and_deletion_changes_trigger_a_reconcile() {
        let base = script_migration().with_generation(1);
        let mut with_status = base.clone();
        with_status.status = Some(MigrationStatus {
            phase: Some(MigrationPhase::Extracting),
            ..MigrationStatus::default()
        });
        with_status.metadata.resource_version = Some("42".into());
        assert_eq!(wants_reconcile(&base), wants_reconcile(&with_status));
        let respec = base.clone().with_generation(2);
        assert_ne!(wants_reconcile(&base), wants_reconcile(&respec));
        let requested = base
            .clone()
            .with_annotation(status::RECONCILE_REQUESTED_AT, "2026-12-03T10:00:00Z");
        assert_ne!(wants_reconcile(&base), wants_reconcile(&requested));
        let mut deleting = base.clone();
        deleting.metadata.deletion_timestamp = Some(at(5));
        assert_ne!(wants_reconcile(&base), wants_reconcile(&deleting));
        // The same name and generation, re-created: another object
        let mut again = base.clone();
        again.metadata.uid = Some("another-uid".into());
        assert_ne!(wants_reconcile(&base), wants_reconcile(&again));
    }

    #[test]
    fn owned_objects_come_before_extract_and_every_retry_only() {
        assert!(needs_owned_objects(Step::Extract, 1));
        assert!(needs_owned_objects(Step::Migrate, 2));
        assert!(!needs_owned_objects(Step::Migrate, 1));
        assert!(!needs_owned_objects(Step::Publish, 1));
    }

    #[test]
    fn a_migration_has_started_once_a_step_has_a_job() {
        let mut mig = script_migration();
        assert!(has_not_started(&mig));
        let step = |phase, job: Option<&str>| crate::crd::StepStatus {
            name: "extract".into(),
            phase,
            job_name: job.map(Into::into),
            ..crate::crd::StepStatus::default()
        };
        mig.status = Some(MigrationStatus {
            steps: vec![step(StepPhase::Pending, None)],
            ..MigrationStatus::default()
        });
        assert!(has_not_started(&mig));
        mig.status = Some(MigrationStatus {
            steps: vec![step(StepPhase::Succeeded, Some("m-extract-1"))],
            ..MigrationStatus::default()
        });
        assert!(!has_not_started(&mig));
    }

    #[test]
    fn only_failures_and_missing_inputs_are_warnings() {
        assert_eq!(event_type(reason::SECRET_NOT_FOUND), EventType::Warning);
        assert_eq!(event_type(reason::RETRIES_EXHAUSTED), EventType::Warning);
        assert_eq!(event_type(reason::SUCCEEDED), EventType::Normal);
        assert_eq!(leak("Succeeded"), reason::SUCCEEDED);
        assert_eq!(leak("Other"), "StatusChanged");
    }
}
