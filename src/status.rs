//! Conditions, phases, the progress fold and the desired status: all pure, with the clock as a
//! parameter.
//!
//! Conditions follow kstatus: `Ready` summarises, `Reconciling` is True while the operator is
//! working towards the spec, `Stalled` is True when it cannot make progress without a change.
//! Each carries `observedGeneration`, so `kubectl wait --for=condition=Ready` never passes on a
//! status written for an older spec.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::ResourceExt;
use serde::Deserialize;

use crate::crd::{
    MAX_STATUS_OBJECTS, Migration, MigrationPhase, MigrationStatus, ObjectResult, ObjectsSummary,
    OutputSpec, OutputStatus, Progress, StepPhase, StepStatus,
};
use crate::plan::{JobObservation, JobState, RunState, StallCause, latest_attempt};
use crate::pods::PodBlocker;
use crate::steps::{Step, steps_for, workspace_claim_name};
use crate::truncate;

/// Annotation whose new value asks for a reconcile (and restarts a stalled run).
pub const RECONCILE_REQUESTED_AT: &str = "datamigrate.ai/reconcile-requested-at";
/// Longest message kept in status per field.
const MAX_MESSAGE: usize = 512;

/// Condition types.
pub mod condition_type {
    /// Summary: True once the run succeeded for the current generation.
    pub const READY: &str = "Ready";
    /// kstatus: the operator is working towards the spec.
    pub const RECONCILING: &str = "Reconciling";
    /// kstatus: no progress is possible without a change.
    pub const STALLED: &str = "Stalled";
    /// Domain: referenced Secrets and ConfigMaps exist and hold the keys named.
    pub const INPUTS_READY: &str = "InputsReady";
}

/// Condition (and Event) reasons.
pub mod reason {
    /// Every step finished.
    pub const SUCCEEDED: &str = "Succeeded";
    /// A step's Job runs.
    pub const STEP_RUNNING: &str = "StepRunning";
    /// A step's Job is about to be created.
    pub const STEP_STARTING: &str = "StepStarting";
    /// A step failed and waits for its next attempt.
    pub const STEP_BACKOFF: &str = "StepBackoff";
    /// A step failed on bad input (exit 65).
    pub const STEP_FAILED: &str = "StepFailed";
    /// Every attempt of a step failed.
    pub const RETRIES_EXHAUSTED: &str = "RetriesExhausted";
    /// `spec.suspend` is true.
    pub const SUSPENDED: &str = "Suspended";
    /// A referenced Secret is missing.
    pub const SECRET_NOT_FOUND: &str = "SecretNotFound";
    /// A referenced Secret lacks a key.
    pub const SECRET_KEY_NOT_FOUND: &str = "SecretKeyNotFound";
    /// The script ConfigMap is missing.
    pub const CONFIGMAP_NOT_FOUND: &str = "ConfigMapNotFound";
    /// The script ConfigMap lacks its key.
    pub const CONFIGMAP_KEY_NOT_FOUND: &str = "ConfigMapKeyNotFound";
    /// All referenced inputs exist.
    pub const INPUTS_FOUND: &str = "InputsFound";
    /// The spec cannot be run.
    pub const INVALID_SPEC: &str = "InvalidSpec";
    /// The running step's pod cannot start (its container waits on a blocking reason, or no
    /// node can take it).
    pub const POD_CANNOT_START: &str = "PodCannotStart";

    /// Every reason above: Event reasons are matched back to these.
    pub const ALL: &[&str] = &[
        SUCCEEDED,
        STEP_RUNNING,
        STEP_STARTING,
        STEP_BACKOFF,
        STEP_FAILED,
        RETRIES_EXHAUSTED,
        SUSPENDED,
        SECRET_NOT_FOUND,
        SECRET_KEY_NOT_FOUND,
        CONFIGMAP_NOT_FOUND,
        CONFIGMAP_KEY_NOT_FOUND,
        INPUTS_FOUND,
        INVALID_SPEC,
        POD_CANNOT_START,
    ];
}

/// Outcome of checking the referenced Secrets and ConfigMaps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InputsCheck {
    /// Everything exists; the hash of the referenced Secret data, when there are any.
    Found {
        /// `sha256:<hex>` over the referenced keys.
        secrets_hash: Option<String>,
    },
    /// Something is missing or unusable.
    Missing {
        /// One of the [`reason`] constants.
        reason: &'static str,
        /// What is missing (names only, never values).
        message: String,
    },
}

/// `progress.json` as the agent writes it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProgressReport {
    /// Step reporting.
    #[serde(default)]
    pub step: Option<String>,
    /// `Generating` or `Validating` during migrate.
    #[serde(default)]
    pub phase: Option<String>,
    /// Objects to migrate.
    #[serde(default)]
    pub total: i64,
    /// Objects done.
    #[serde(default)]
    pub completed: i64,
    /// Objects failed.
    #[serde(default)]
    pub failed: i64,
    /// Objects skipped.
    #[serde(default)]
    pub skipped: i64,
    /// Object in work.
    #[serde(default)]
    pub current: Option<String>,
}

/// `summary.json`: counts by status and at most 50 entries.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct SummaryReport {
    /// Count per status (`verified`, `flagged`, `failed`, others count as flagged).
    #[serde(default)]
    pub counts: std::collections::BTreeMap<String, i64>,
    /// Entries.
    #[serde(default)]
    pub objects: Vec<ObjectResult>,
}

/// `publish.json`: where the project went.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct PublishReport {
    /// Git URL and branch, or a folder.
    pub location: String,
    /// Commit, for git.
    #[serde(default)]
    pub commit: Option<String>,
}

/// Everything the desired status is computed from.
#[derive(Clone, Debug)]
pub struct Observation {
    /// The Migration's step Jobs.
    pub jobs: Vec<JobObservation>,
    /// The latest `progress.json`.
    pub progress: Option<ProgressReport>,
    /// `summary.json`, after migrate.
    pub summary: Option<SummaryReport>,
    /// `publish.json`, after publish.
    pub publish: Option<PublishReport>,
    /// Secrets and ConfigMaps.
    pub inputs: InputsCheck,
    /// The run's next move.
    pub run: RunState,
    /// Why the running step's pod cannot start, when it cannot.
    pub pod_blocker: Option<PodBlocker>,
}

/// Sets `new` in `conditions`, keeping the old `lastTransitionTime` unless the status flips.
pub fn set_condition(conditions: &mut Vec<Condition>, mut new: Condition) {
    if let Some(old) = conditions.iter_mut().find(|c| c.type_ == new.type_) {
        if old.status == new.status {
            new.last_transition_time = old.last_transition_time.clone();
        }
        *old = new;
    } else {
        conditions.push(new);
    }
}

/// A condition of `type_` for `generation` at `now`.
#[must_use]
pub fn condition(
    type_: &str,
    status: bool,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: &Time,
) -> Condition {
    Condition {
        type_: type_.into(),
        status: if status { "True" } else { "False" }.into(),
        reason: reason.into(),
        message: truncate(message, MAX_MESSAGE),
        observed_generation: generation,
        last_transition_time: now.clone(),
    }
}

/// The condition of `type_`, if set.
#[must_use]
pub fn find_condition<'a>(status: &'a MigrationStatus, type_: &str) -> Option<&'a Condition> {
    status.conditions.iter().find(|c| c.type_ == type_)
}

/// The phase a running `step` shows; migrate splits by what the agent reports.
#[must_use]
pub fn step_phase(step: Step, progress: Option<&ProgressReport>) -> MigrationPhase {
    match step {
        Step::Extract => MigrationPhase::Extracting,
        Step::Migrate => {
            let reported = progress.filter(|p| p.step.as_deref() == Some("migrate"));
            match reported.and_then(|p| p.phase.as_deref()) {
                Some("Validating") => MigrationPhase::Validating,
                _ => MigrationPhase::Generating,
            }
        }
        Step::Publish => MigrationPhase::Publishing,
    }
}

/// The status `kubectl get` shows: progress counts and `completed/total`.
#[must_use]
pub fn fold_progress(report: &ProgressReport) -> Progress {
    Progress {
        total: report.total,
        completed: report.completed,
        failed: report.failed,
        skipped: report.skipped,
        summary: format!("{}/{}", report.completed, report.total),
        current: report.current.as_deref().map(|c| truncate(c, 253)),
    }
}

/// The bounded per-object summary.
#[must_use]
pub fn fold_summary(report: &SummaryReport) -> ObjectsSummary {
    let count = |k: &str| report.counts.get(k).copied().unwrap_or(0);
    let known = count("verified") + count("verified-by-build") + count("failed");
    let all: i64 = report.counts.values().sum();
    let items = report
        .objects
        .iter()
        .take(MAX_STATUS_OBJECTS)
        .map(|o| ObjectResult {
            object: truncate(&o.object, 256),
            kind: truncate(&o.kind, 32),
            status: truncate(&o.status, 32),
            reason: o.reason.as_deref().map(|r| truncate(r, 256)),
        })
        .collect();
    ObjectsSummary {
        verified: count("verified"),
        verified_by_build: count("verified-by-build"),
        flagged: all - known,
        failed: count("failed"),
        items,
    }
}

/// What the kstatus conditions and the phase say for a run state.
struct Verdict {
    phase: MigrationPhase,
    ready: bool,
    reconciling: bool,
    stalled: bool,
    reason: &'static str,
    message: String,
}

/// "Every step succeeded", with the per-object counts when the agent reported them, so a
/// flagged object is visible from `kubectl get -o wide` and `kubectl wait` output alike.
#[must_use]
pub fn done_message(summary: Option<&SummaryReport>) -> String {
    let Some(summary) = summary else {
        return "Every step succeeded, but the agent's summary never reached the progress \
                ConfigMap (deleted, or its RoleBinding was): the counts are in the project's \
                report"
            .into();
    };
    let s = fold_summary(summary);
    let mut text = format!(
        "Every step succeeded: {} verified, {} verified by build, {} flagged",
        s.verified, s.verified_by_build, s.flagged
    );
    if s.failed > 0 {
        text.push_str(&format!(", {} failed", s.failed));
    }
    if s.flagged + s.failed > 0 {
        text.push_str(" (see the report)");
    }
    text
}

fn verdict(mig: &Migration, obs: &Observation) -> Verdict {
    let progress = obs.progress.as_ref();
    let v = |phase, ready, reconciling, stalled, reason, message: String| Verdict {
        phase,
        ready,
        reconciling,
        stalled,
        reason,
        message,
    };
    match &obs.run {
        RunState::Done => v(
            MigrationPhase::Succeeded,
            true,
            false,
            false,
            reason::SUCCEEDED,
            done_message(obs.summary.as_ref()),
        ),
        RunState::Stalled { job, cause } => {
            let (reason, what) = match cause {
                StallCause::PermanentFailure => (reason::STEP_FAILED, "failed on bad input"),
                StallCause::RetriesExhausted => (reason::RETRIES_EXHAUSTED, "failed every attempt"),
            };
            let detail = job.message.as_deref().unwrap_or("no message");
            let message = format!(
                "Step {} {what} (attempt {}): {detail}; change the spec or set annotation \
                 {RECONCILE_REQUESTED_AT} to retry",
                job.step.as_str(),
                job.attempt
            );
            v(MigrationPhase::Failed, false, false, true, reason, message)
        }
        _ if mig.spec.suspend => v(
            MigrationPhase::Suspended,
            false,
            false,
            false,
            reason::SUSPENDED,
            "Suspended by spec.suspend".into(),
        ),
        RunState::Running { job } if blocker_of(job, obs.pod_blocker.as_ref()).is_some() => {
            let b = obs
                .pod_blocker
                .as_ref()
                .map(blocker_text)
                .unwrap_or_default();
            let message = format!(
                "Step {} (attempt {}) cannot start: {b}",
                job.step.as_str(),
                job.attempt
            );
            v(
                step_phase(job.step, progress),
                false,
                true,
                false,
                reason::POD_CANNOT_START,
                message,
            )
        }
        RunState::Running { job } => v(
            step_phase(job.step, progress),
            false,
            true,
            false,
            reason::STEP_RUNNING,
            format!(
                "Running step {} (attempt {})",
                job.step.as_str(),
                job.attempt
            ),
        ),
        RunState::Backoff { job, wait } => {
            let detail = job.message.as_deref().unwrap_or("no message");
            let message = format!(
                "Step {} attempt {} failed: {detail}; next attempt in {}s",
                job.step.as_str(),
                job.attempt,
                wait.as_secs()
            );
            v(
                step_phase(job.step, progress),
                false,
                true,
                false,
                reason::STEP_BACKOFF,
                message,
            )
        }
        RunState::Create { step, attempt, .. } => match &obs.inputs {
            InputsCheck::Missing { reason, message } => v(
                MigrationPhase::Pending,
                false,
                true,
                false,
                reason,
                message.clone(),
            ),
            InputsCheck::Found { .. } => {
                let phase = if *step == Step::Extract && *attempt == 1 {
                    MigrationPhase::Pending
                } else {
                    step_phase(*step, progress)
                };
                v(
                    phase,
                    false,
                    true,
                    false,
                    reason::STEP_STARTING,
                    format!("Starting step {} (attempt {attempt})", step.as_str()),
                )
            }
        },
    }
}

/// `pod <name>: <Reason>: <message>`.
fn blocker_text(b: &PodBlocker) -> String {
    format!("pod {}: {}: {}", b.pod, b.reason, b.message)
}

/// `blocker`, when it is about `job`'s pod and `job` runs.
fn blocker_of<'a>(job: &JobObservation, blocker: Option<&'a PodBlocker>) -> Option<&'a PodBlocker> {
    blocker.filter(|b| job.state == JobState::Running && b.job == job.name)
}

/// A failed step's reason, or why its running pod cannot start.
fn step_message(job: &JobObservation, blocker: Option<&PodBlocker>) -> Option<String> {
    let blocked = blocker_of(job, blocker).map(blocker_text);
    let text = job.message.clone().or(blocked)?;
    Some(truncate(&text, MAX_MESSAGE))
}

fn step_statuses(mig: &Migration, obs: &Observation, prev: &MigrationStatus) -> Vec<StepStatus> {
    steps_for(mig)
        .into_iter()
        .map(|step| match latest_attempt(&obs.jobs, step) {
            Some(job) => StepStatus {
                name: step.as_str().into(),
                phase: match job.state {
                    JobState::Running => StepPhase::Running,
                    JobState::Suspended => StepPhase::Suspended,
                    JobState::Succeeded => StepPhase::Succeeded,
                    JobState::FailedRetryable | JobState::FailedPermanent => StepPhase::Failed,
                },
                job_name: Some(job.name.clone()),
                attempts: job.attempt,
                start_time: job.start_time.clone(),
                completion_time: job.finish_time.clone(),
                message: step_message(job, obs.pod_blocker.as_ref()),
            },
            None => prev
                .steps
                .iter()
                .find(|s| s.name == step.as_str() && s.phase == StepPhase::Succeeded)
                .cloned()
                .unwrap_or_else(|| StepStatus {
                    name: step.as_str().into(),
                    ..StepStatus::default()
                }),
        })
        .collect()
}

/// Where the project is once the run is done, when the agent did not say.
fn default_location(mig: &Migration) -> String {
    match &mig.spec.output {
        Some(OutputSpec { git: Some(git), .. }) => {
            let path = git
                .path
                .as_deref()
                .map(|p| format!(" path {p}"))
                .unwrap_or_default();
            format!("{} branch {}{path}", git.url, git.branch)
        }
        Some(OutputSpec {
            volume: Some(v), ..
        }) => {
            format!("pvc://{}/{}", v.claim_name, v.path.as_deref().unwrap_or(""))
        }
        _ => format!("pvc://{}/project", workspace_claim_name(&mig.name_any())),
    }
}

fn output_status(
    mig: &Migration,
    obs: &Observation,
    prev: &MigrationStatus,
) -> Option<OutputStatus> {
    if let Some(report) = &obs.publish {
        // A volume's path inside the pod (`/output/...`) means nothing outside it: name the
        // claim instead. A git location is the remote's, valid everywhere.
        let is_volume = mig.spec.output.as_ref().is_some_and(|o| o.volume.is_some());
        let location = if is_volume {
            default_location(mig)
        } else {
            truncate(&report.location, 1024)
        };
        return Some(OutputStatus {
            location,
            commit: report.commit.as_deref().map(|c| truncate(c, 64)),
        });
    }
    if obs.run == RunState::Done {
        return prev.output.clone().or_else(|| {
            Some(OutputStatus {
                location: default_location(mig),
                commit: None,
            })
        });
    }
    prev.output.clone()
}

fn start_time(obs: &Observation, prev: &MigrationStatus, now: &Time) -> Option<Time> {
    prev.start_time.clone().or_else(|| {
        let earliest = obs
            .jobs
            .iter()
            .filter_map(|j| j.start_time.clone())
            .min_by_key(|t| t.0);
        earliest.or_else(|| (!obs.jobs.is_empty()).then(|| now.clone()))
    })
}

fn completion_time(obs: &Observation, prev: &MigrationStatus, now: &Time) -> Option<Time> {
    match &obs.run {
        RunState::Done | RunState::Stalled { .. } => {
            let latest = obs
                .jobs
                .iter()
                .filter_map(|j| j.finish_time.clone())
                .max_by_key(|t| t.0);
            prev.completion_time
                .clone()
                .or(latest)
                .or_else(|| Some(now.clone()))
        }
        _ => None,
    }
}

fn conditions(
    verdict: &Verdict,
    inputs: &InputsCheck,
    prev: &MigrationStatus,
    generation: Option<i64>,
    now: &Time,
) -> Vec<Condition> {
    use condition_type::{INPUTS_READY, READY, RECONCILING, STALLED};
    let mut out = prev.conditions.clone();
    let msg = verdict.message.as_str();
    let not = |flag: bool, r: &'static str| if flag { verdict.reason } else { r };
    set_condition(
        &mut out,
        condition(READY, verdict.ready, verdict.reason, msg, generation, now),
    );
    let reconciling_reason = not(verdict.reconciling, verdict.reason);
    set_condition(
        &mut out,
        condition(
            RECONCILING,
            verdict.reconciling,
            reconciling_reason,
            msg,
            generation,
            now,
        ),
    );
    let stalled_msg = if verdict.stalled { msg } else { "" };
    set_condition(
        &mut out,
        condition(
            STALLED,
            verdict.stalled,
            verdict.reason,
            stalled_msg,
            generation,
            now,
        ),
    );
    let inputs_condition = match inputs {
        InputsCheck::Found { .. } => condition(
            INPUTS_READY,
            true,
            reason::INPUTS_FOUND,
            "Referenced Secrets and ConfigMaps exist",
            generation,
            now,
        ),
        InputsCheck::Missing { reason, message } => {
            condition(INPUTS_READY, false, reason, message, generation, now)
        }
    };
    set_condition(&mut out, inputs_condition);
    out
}

/// The status the Migration should have, given what was observed.
#[must_use]
pub fn desired_status(mig: &Migration, obs: &Observation, now: &Time) -> MigrationStatus {
    let prev = mig.status.clone().unwrap_or_default();
    let generation = mig.metadata.generation;
    let verdict = verdict(mig, obs);
    let secrets_hash = match &obs.inputs {
        InputsCheck::Found { secrets_hash } => secrets_hash.clone(),
        InputsCheck::Missing { .. } => prev.secrets_hash.clone(),
    };
    MigrationStatus {
        observed_generation: generation,
        phase: Some(verdict.phase),
        conditions: conditions(&verdict, &obs.inputs, &prev, generation, now),
        progress: obs
            .progress
            .as_ref()
            .map(fold_progress)
            .or_else(|| prev.progress.clone()),
        steps: step_statuses(mig, obs, &prev),
        objects: obs
            .summary
            .as_ref()
            .map(fold_summary)
            .or_else(|| prev.objects.clone()),
        output: output_status(mig, obs, &prev),
        start_time: start_time(obs, &prev, now),
        completion_time: completion_time(obs, &prev, now),
        last_handled_reconcile_at: requested_reconcile(mig)
            .map(str::to_string)
            .or(prev.last_handled_reconcile_at),
        secrets_hash,
        message: Some(verdict.message),
    }
}

/// The value of the reconcile-request annotation, if set.
#[must_use]
pub fn requested_reconcile(mig: &Migration) -> Option<&str> {
    mig.metadata
        .annotations
        .as_ref()?
        .get(RECONCILE_REQUESTED_AT)
        .map(String::as_str)
}

/// Whether a stalled run should start a new attempt: the spec changed since the last
/// reconcile, or the reconcile-request annotation carries a value not handled yet.
#[must_use]
pub fn retry_requested(mig: &Migration) -> bool {
    let Some(status) = &mig.status else {
        return false;
    };
    let new_generation = mig.metadata.generation > status.observed_generation;
    let new_request = requested_reconcile(mig)
        .is_some_and(|v| Some(v) != status.last_handled_reconcile_at.as_deref());
    new_generation || new_request
}

/// A short name for what changed, when the phase or the Ready reason moved (Events are
/// published only on such transitions).
#[must_use]
pub fn transition(prev: &MigrationStatus, next: &MigrationStatus) -> Option<(String, String)> {
    let reason_of = |s: &MigrationStatus| {
        find_condition(s, condition_type::READY)
            .map(|c| c.reason.clone())
            .unwrap_or_default()
    };
    let (old, new) = (reason_of(prev), reason_of(next));
    if prev.phase == next.phase && old == new {
        return None;
    }
    Some((new, next.message.clone().unwrap_or_default()))
}

#[cfg(test)]
#[path = "status_tests.rs"]
mod tests;
