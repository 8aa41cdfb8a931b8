//! What the run should do next, from the observed Jobs: pure, so it is tested without a cluster.
//!
//! Each step's latest attempt decides: succeeded moves on, running waits, a retryable failure
//! gets a new attempt after a capped exponential backoff (until the retry budget is spent), a
//! permanent failure (exit 65) or a spent budget stalls the run until a retry is requested (a
//! spec change or the reconcile-request annotation), which opens a new budget.

use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::crd::{MigrationStatus, StepPhase};
use crate::job::{LABEL_ATTEMPT, LABEL_STEP};
use crate::steps::Step;

/// Annotation on a Job: the attempt that opened its retry budget.
pub const ANNOTATION_BUDGET_START: &str = "datamigrate.ai/budget-start";

/// What one step Job is doing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobState {
    /// Pods run or wait to run.
    Running,
    /// `spec.suspend` is true.
    Suspended,
    /// The Job completed.
    Succeeded,
    /// Failed in a way a new attempt may fix (pod retries spent, deadline).
    FailedRetryable,
    /// Failed on bad input (exit 65, the pod failure policy): a new attempt would fail too.
    FailedPermanent,
}

/// One observed step Job.
#[derive(Clone, Debug, PartialEq)]
pub struct JobObservation {
    /// Job name.
    pub name: String,
    /// Its step.
    pub step: Step,
    /// Its attempt number.
    pub attempt: i32,
    /// The attempt that opened its retry budget.
    pub budget_start: i32,
    /// What it is doing.
    pub state: JobState,
    /// `spec.suspend`.
    pub suspend: bool,
    /// When it started.
    pub start_time: Option<Time>,
    /// When it finished (completed or failed).
    pub finish_time: Option<Time>,
    /// Why it failed, when it did (filled in from the pod's termination message if found).
    pub message: Option<String>,
}

impl JobObservation {
    /// Reads a step Job; `None` for a Job without the step labels.
    #[must_use]
    pub fn from_job(job: &Job) -> Option<Self> {
        let labels = job.metadata.labels.as_ref()?;
        let step = Step::from_name(labels.get(LABEL_STEP)?)?;
        let attempt: i32 = labels.get(LABEL_ATTEMPT)?.parse().ok()?;
        let budget_start = job
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(ANNOTATION_BUDGET_START))
            .and_then(|v| v.parse().ok())
            .unwrap_or(1);
        let suspend = job.spec.as_ref().and_then(|s| s.suspend).unwrap_or(false);
        let status = job.status.clone().unwrap_or_default();
        let conditions = status.conditions.unwrap_or_default();
        let is_true = |t: &str| {
            conditions
                .iter()
                .find(|c| c.type_ == t && c.status == "True")
        };
        let (state, finish, message) =
            if let Some(c) = is_true("Complete").or_else(|| is_true("SuccessCriteriaMet")) {
                (
                    JobState::Succeeded,
                    status.completion_time.or(c.last_transition_time.clone()),
                    None,
                )
            } else if let Some(c) = is_true("Failed").or_else(|| is_true("FailureTarget")) {
                let permanent = c.reason.as_deref() == Some("PodFailurePolicy");
                let state = if permanent {
                    JobState::FailedPermanent
                } else {
                    JobState::FailedRetryable
                };
                (state, c.last_transition_time.clone(), c.message.clone())
            } else if suspend {
                (JobState::Suspended, None, None)
            } else {
                (JobState::Running, None, None)
            };
        Some(Self {
            name: job.metadata.name.clone()?,
            step,
            attempt,
            budget_start,
            state,
            suspend,
            start_time: status.start_time,
            finish_time: finish,
            message,
        })
    }

    /// Whether the Job has finished one way or the other.
    #[must_use]
    pub fn is_failed(&self) -> bool {
        matches!(
            self.state,
            JobState::FailedRetryable | JobState::FailedPermanent
        )
    }
}

/// Bounds of the retry policy for failed steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per budget (the first run counts).
    pub max_attempts: i32,
    /// Delay before the second attempt; doubled for each further one.
    pub base: Duration,
    /// Longest delay.
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            base: Duration::from_secs(10),
            cap: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    /// Delay before attempt number `n` of a budget (n >= 2).
    #[must_use]
    pub fn delay(&self, n: i32) -> Duration {
        let exp = u32::try_from(n.saturating_sub(2)).unwrap_or(0).min(16);
        self.base.saturating_mul(1 << exp).min(self.cap)
    }
}

/// Why a run stalled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StallCause {
    /// The step exited 65 (bad input).
    PermanentFailure,
    /// Every attempt of the budget failed.
    RetriesExhausted,
}

/// The run's next move.
#[derive(Clone, Debug, PartialEq)]
pub enum RunState {
    /// Create this Job.
    Create {
        /// Step to run.
        step: Step,
        /// Attempt number.
        attempt: i32,
        /// The attempt that opened the retry budget.
        budget_start: i32,
    },
    /// A step failed; its next attempt starts after `wait`.
    Backoff {
        /// The failed Job.
        job: JobObservation,
        /// Time left before the next attempt.
        wait: Duration,
    },
    /// A step's Job runs (or is suspended).
    Running {
        /// The Job.
        job: JobObservation,
    },
    /// The run stopped on a failure and waits for a retry request.
    Stalled {
        /// The failed Job.
        job: JobObservation,
        /// Why.
        cause: StallCause,
    },
    /// Every step succeeded.
    Done,
}

/// The latest attempt of `step` among `jobs`.
#[must_use]
pub fn latest_attempt(jobs: &[JobObservation], step: Step) -> Option<&JobObservation> {
    jobs.iter()
        .filter(|j| j.step == step)
        .max_by_key(|j| j.attempt)
}

/// Whether the previous status records `step` as succeeded (its Job may be gone by TTL).
fn recorded_success(prev: Option<&MigrationStatus>, step: Step) -> bool {
    prev.into_iter()
        .flat_map(|s| &s.steps)
        .any(|s| s.name == step.as_str() && s.phase == StepPhase::Succeeded)
}

/// The run's next move. `retry_requested` is true when the spec changed or the reconcile
/// annotation is new since the last reconcile; it restarts a stalled step.
#[must_use]
pub fn next_move(
    steps: &[Step],
    jobs: &[JobObservation],
    prev: Option<&MigrationStatus>,
    retry_requested: bool,
    policy: &RetryPolicy,
    now: &Time,
) -> RunState {
    for &step in steps {
        let Some(latest) = latest_attempt(jobs, step) else {
            if recorded_success(prev, step) {
                continue;
            }
            return RunState::Create {
                step,
                attempt: 1,
                budget_start: 1,
            };
        };
        match latest.state {
            JobState::Succeeded => {}
            JobState::Running | JobState::Suspended => {
                return RunState::Running {
                    job: latest.clone(),
                };
            }
            JobState::FailedPermanent | JobState::FailedRetryable => {
                return after_failure(latest, retry_requested, policy, now);
            }
        }
    }
    RunState::Done
}

fn after_failure(
    job: &JobObservation,
    retry_requested: bool,
    policy: &RetryPolicy,
    now: &Time,
) -> RunState {
    let next = job.attempt + 1;
    if retry_requested {
        return RunState::Create {
            step: job.step,
            attempt: next,
            budget_start: next,
        };
    }
    if job.state == JobState::FailedPermanent {
        return RunState::Stalled {
            job: job.clone(),
            cause: StallCause::PermanentFailure,
        };
    }
    if next - job.budget_start >= policy.max_attempts {
        return RunState::Stalled {
            job: job.clone(),
            cause: StallCause::RetriesExhausted,
        };
    }
    let delay = policy.delay(next - job.budget_start + 1);
    let waited = job.finish_time.as_ref().map_or(delay, |t| elapsed(t, now));
    match delay.checked_sub(waited) {
        Some(wait) if !wait.is_zero() => RunState::Backoff {
            job: job.clone(),
            wait,
        },
        _ => RunState::Create {
            step: job.step,
            attempt: next,
            budget_start: job.budget_start,
        },
    }
}

/// Time from `then` to `now`, zero when `now` is earlier.
#[must_use]
pub fn elapsed(then: &Time, now: &Time) -> Duration {
    let ms = now
        .0
        .as_millisecond()
        .saturating_sub(then.0.as_millisecond());
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::StepStatus;
    use crate::fixtures::{at, finished_job, running_job, step_job};

    const STEPS: [Step; 3] = [Step::Extract, Step::Migrate, Step::Publish];

    fn obs(job: &Job) -> JobObservation {
        JobObservation::from_job(job).unwrap()
    }

    fn failed(step: Step, attempt: i32, reason: &str, at_s: i64) -> JobObservation {
        let mut job = step_job(finished_job("j", "Failed", reason), step, attempt);
        let status = job.status.as_mut().unwrap();
        status.conditions.as_mut().unwrap()[0].last_transition_time = Some(at(at_s));
        obs(&job)
    }

    fn succeeded(step: Step) -> JobObservation {
        obs(&step_job(finished_job("j", "Complete", "Done"), step, 1))
    }

    #[test]
    fn job_states_are_read_from_conditions_and_labels() {
        let running = obs(&step_job(running_job("m-extract-1"), Step::Extract, 1));
        assert_eq!(
            (running.step, running.attempt, running.state),
            (Step::Extract, 1, JobState::Running)
        );
        assert_eq!(succeeded(Step::Migrate).state, JobState::Succeeded);
        assert_eq!(
            failed(Step::Extract, 1, "PodFailurePolicy", 0).state,
            JobState::FailedPermanent
        );
        assert_eq!(
            failed(Step::Extract, 1, "BackoffLimitExceeded", 0).state,
            JobState::FailedRetryable
        );
        assert!(JobObservation::from_job(&running_job("unlabelled")).is_none());
    }

    #[test]
    fn a_fresh_run_creates_the_first_step() {
        let policy = RetryPolicy::default();
        let state = next_move(&STEPS, &[], None, false, &policy, &at(0));
        assert_eq!(
            state,
            RunState::Create {
                step: Step::Extract,
                attempt: 1,
                budget_start: 1
            }
        );
    }

    #[test]
    fn steps_run_in_order_and_finish_done() {
        let policy = RetryPolicy::default();
        let jobs = [succeeded(Step::Extract)];
        let state = next_move(&STEPS, &jobs, None, false, &policy, &at(0));
        assert_eq!(
            state,
            RunState::Create {
                step: Step::Migrate,
                attempt: 1,
                budget_start: 1
            }
        );
        let jobs = [
            succeeded(Step::Extract),
            succeeded(Step::Migrate),
            succeeded(Step::Publish),
        ];
        assert_eq!(
            next_move(&STEPS, &jobs, None, false, &policy, &at(0)),
            RunState::Done
        );
    }

    #[test]
    fn a_running_job_is_waited_for_not_duplicated() {
        let policy = RetryPolicy::default();
        let run = obs(&step_job(running_job("m-migrate-1"), Step::Migrate, 1));
        let jobs = [succeeded(Step::Extract), run.clone()];
        assert_eq!(
            next_move(&STEPS, &jobs, None, false, &policy, &at(0)),
            RunState::Running { job: run }
        );
    }

    #[test]
    fn a_step_whose_job_was_deleted_after_success_is_not_rerun() {
        let policy = RetryPolicy::default();
        let prev = MigrationStatus {
            steps: vec![StepStatus {
                name: "extract".into(),
                phase: StepPhase::Succeeded,
                ..Default::default()
            }],
            ..Default::default()
        };
        let state = next_move(&STEPS, &[], Some(&prev), false, &policy, &at(0));
        assert_eq!(
            state,
            RunState::Create {
                step: Step::Migrate,
                attempt: 1,
                budget_start: 1
            }
        );
    }

    #[test]
    fn a_retryable_failure_waits_its_backoff_then_retries() {
        let policy = RetryPolicy::default();
        let jobs = [failed(Step::Extract, 1, "BackoffLimitExceeded", 100)];
        match next_move(&STEPS, &jobs, None, false, &policy, &at(104)) {
            RunState::Backoff { wait, .. } => assert_eq!(wait, Duration::from_secs(6)),
            other => panic!("expected backoff, got {other:?}"),
        }
        let state = next_move(&STEPS, &jobs, None, false, &policy, &at(111));
        assert_eq!(
            state,
            RunState::Create {
                step: Step::Extract,
                attempt: 2,
                budget_start: 1
            }
        );
    }

    #[test]
    fn spent_retries_stall_the_run() {
        let policy = RetryPolicy::default();
        let jobs = [failed(Step::Extract, 3, "BackoffLimitExceeded", 0)];
        let state = next_move(&STEPS, &jobs, None, false, &policy, &at(1000));
        assert!(matches!(
            state,
            RunState::Stalled {
                cause: StallCause::RetriesExhausted,
                ..
            }
        ));
    }

    #[test]
    fn exit_65_stalls_at_once_and_a_retry_request_opens_a_new_budget() {
        let policy = RetryPolicy::default();
        let jobs = [
            failed(Step::Migrate, 1, "PodFailurePolicy", 0),
            succeeded(Step::Extract),
        ];
        let state = next_move(&STEPS, &jobs, None, false, &policy, &at(1000));
        assert!(matches!(
            state,
            RunState::Stalled {
                cause: StallCause::PermanentFailure,
                ..
            }
        ));
        let state = next_move(&STEPS, &jobs, None, true, &policy, &at(1000));
        assert_eq!(
            state,
            RunState::Create {
                step: Step::Migrate,
                attempt: 2,
                budget_start: 2
            }
        );
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let policy = RetryPolicy {
            max_attempts: 10,
            base: Duration::from_secs(10),
            cap: Duration::from_secs(35),
        };
        let delays: Vec<u64> = (2..6).map(|n| policy.delay(n).as_secs()).collect();
        assert_eq!(delays, [10, 20, 35, 35]);
    }
}
