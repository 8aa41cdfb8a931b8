use std::time::Duration;

use super::*;
use crate::fixtures::{
    MigrationExt, at, finished_job, full_migration, running_job, script_migration, step_job,
};
use crate::plan::JobObservation;

fn obs(run: RunState, jobs: Vec<JobObservation>) -> Observation {
    Observation {
        jobs,
        progress: None,
        summary: None,
        publish: None,
        inputs: InputsCheck::Found { secrets_hash: None },
        run,
        pod_blocker: None,
    }
}

fn observed(job: k8s_openapi::api::batch::v1::Job, step: Step, attempt: i32) -> JobObservation {
    JobObservation::from_job(&step_job(job, step, attempt)).unwrap()
}

fn cond<'a>(s: &'a MigrationStatus, t: &str) -> &'a Condition {
    find_condition(s, t).unwrap()
}

#[test]
fn set_condition_moves_the_transition_time_only_on_a_flip() {
    let mut conditions = vec![condition(
        "Ready",
        false,
        "StepRunning",
        "a",
        Some(1),
        &at(10),
    )];
    set_condition(
        &mut conditions,
        condition("Ready", false, "StepRunning", "b", Some(2), &at(20)),
    );
    assert_eq!(conditions.len(), 1);
    assert_eq!(conditions[0].last_transition_time, at(10));
    assert_eq!(
        (
            conditions[0].message.as_str(),
            conditions[0].observed_generation
        ),
        ("b", Some(2))
    );
    set_condition(
        &mut conditions,
        condition("Ready", true, "Succeeded", "c", Some(2), &at(30)),
    );
    assert_eq!(conditions[0].last_transition_time, at(30));
    set_condition(
        &mut conditions,
        condition("Stalled", false, "x", "", Some(2), &at(40)),
    );
    assert_eq!(conditions.len(), 2);
}

#[test]
fn running_extract_is_extracting_and_reconciling() {
    let mig = script_migration().with_generation(3);
    let job = observed(running_job("minimal-extract-1"), Step::Extract, 1);
    let status = desired_status(
        &mig,
        &obs(RunState::Running { job: job.clone() }, vec![job]),
        &at(5),
    );
    assert_eq!(status.phase, Some(MigrationPhase::Extracting));
    assert_eq!(status.observed_generation, Some(3));
    let ready = cond(&status, condition_type::READY);
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", reason::STEP_RUNNING)
    );
    assert_eq!(ready.observed_generation, Some(3));
    assert_eq!(cond(&status, condition_type::RECONCILING).status, "True");
    assert_eq!(cond(&status, condition_type::STALLED).status, "False");
    assert_eq!(status.steps[0].phase, StepPhase::Running);
    assert_eq!(
        status.steps[0].job_name.as_deref(),
        Some("minimal-extract-1")
    );
    assert_eq!(status.steps[1].phase, StepPhase::Pending);
    assert_eq!(status.start_time, Some(at(5)));
    assert!(status.completion_time.is_none());
}

#[test]
fn a_running_step_whose_pod_cannot_start_says_why_in_ready_and_the_step() {
    let mig = script_migration();
    let job = observed(running_job("minimal-extract-1"), Step::Extract, 1);
    let mut o = obs(RunState::Running { job: job.clone() }, vec![job]);
    let running = desired_status(&mig, &o, &at(1));
    o.pod_blocker = Some(crate::pods::PodBlocker {
        migration: "minimal".into(),
        job: "minimal-extract-1".into(),
        pod: "minimal-extract-1-x7k2p".into(),
        reason: "CreateContainerConfigError".into(),
        message: "secret \"sql-login\" not found".into(),
    });
    let stuck = desired_status(&mig, &o, &at(2));
    assert_eq!(stuck.phase, Some(MigrationPhase::Extracting));
    let ready = cond(&stuck, condition_type::READY);
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", reason::POD_CANNOT_START)
    );
    let why = "pod minimal-extract-1-x7k2p: CreateContainerConfigError: \
               secret \"sql-login\" not found";
    assert_eq!(
        ready.message,
        format!("Step extract (attempt 1) cannot start: {why}")
    );
    assert_eq!(cond(&stuck, condition_type::STALLED).status, "False");
    assert_eq!(stuck.steps[0].message.as_deref(), Some(why));
    assert_eq!(stuck.steps[0].phase, StepPhase::Running);
    // Entering and leaving the state are transitions, so each gets an Event
    let (entered, _) = transition(&running, &stuck).expect("a transition");
    assert_eq!(entered, reason::POD_CANNOT_START);
    let (left, _) = transition(&stuck, &running).expect("a transition");
    assert_eq!(left, reason::STEP_RUNNING);
    // A blocker of another Job (an older attempt) says nothing of this step
    if let Some(b) = o.pod_blocker.as_mut() {
        b.job = "minimal-extract-0".into();
    }
    let other = desired_status(&mig, &o, &at(3));
    assert_eq!(other.steps[0].message, None);
    let ready = cond(&other, condition_type::READY);
    assert_eq!(ready.reason, reason::STEP_RUNNING);
}

#[test]
fn migrate_phase_follows_the_agent_report() {
    let report = ProgressReport {
        step: Some("migrate".into()),
        phase: Some("Validating".into()),
        ..ProgressReport::default()
    };
    assert_eq!(
        step_phase(Step::Migrate, Some(&report)),
        MigrationPhase::Validating
    );
    assert_eq!(step_phase(Step::Migrate, None), MigrationPhase::Generating);
    let extract_report = ProgressReport {
        step: Some("extract".into()),
        ..report
    };
    assert_eq!(
        step_phase(Step::Migrate, Some(&extract_report)),
        MigrationPhase::Generating
    );
    assert_eq!(step_phase(Step::Publish, None), MigrationPhase::Publishing);
}

#[test]
fn progress_folds_into_counts_and_n_of_m() {
    let report: ProgressReport = serde_json::from_str(
        r#"{"step": "migrate", "phase": "Generating", "total": 29, "completed": 12,
            "failed": 1, "skipped": 2, "current": "stg_orders", "updatedAt": "x"}"#,
    )
    .unwrap();
    let p = fold_progress(&report);
    assert_eq!((p.total, p.completed, p.failed, p.skipped), (29, 12, 1, 2));
    assert_eq!(p.summary, "12/29");
    assert_eq!(p.current.as_deref(), Some("stg_orders"));
}

#[test]
fn summary_is_bounded_and_counts_unknown_statuses_as_flagged() {
    let objects: Vec<_> = (0..80)
        .map(|i| {
            let object = format!("dbo.t{i}");
            serde_json::json!({"object": object, "kind": "table", "status": "verified"})
        })
        .collect();
    let report: SummaryReport = serde_json::from_value(serde_json::json!({
        "total": 84,
        "counts": {"verified": 80, "flagged": 1, "failed": 1, "verified-by-build": 1, "odd": 1},
        "objects": objects,
    }))
    .unwrap();
    let s = fold_summary(&report);
    assert_eq!(
        (s.verified, s.verified_by_build, s.flagged, s.failed),
        (80, 1, 2, 1)
    );
    assert_eq!(s.items.len(), MAX_STATUS_OBJECTS);
}

#[test]
fn done_run_is_ready_with_output_location_and_completion_time() {
    let mig = full_migration();
    let jobs: Vec<_> = [Step::Extract, Step::Migrate, Step::Publish]
        .into_iter()
        .map(|s| observed(finished_job("j", "Complete", "Done"), s, 1))
        .collect();
    let mut o = obs(RunState::Done, jobs);
    o.publish = Some(PublishReport {
        location: "https://git.example.com/x.git#b".into(),
        commit: Some("abc".into()),
    });
    let status = desired_status(&mig, &o, &at(50));
    assert_eq!(status.phase, Some(MigrationPhase::Succeeded));
    let ready = cond(&status, condition_type::READY);
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("True", reason::SUCCEEDED)
    );
    assert_eq!(cond(&status, condition_type::RECONCILING).status, "False");
    assert_eq!(status.output.unwrap().commit.as_deref(), Some("abc"));
    assert_eq!(status.completion_time, Some(at(50)));
    assert!(status.steps.iter().all(|s| s.phase == StepPhase::Succeeded));
}

#[test]
fn done_without_output_points_at_the_workspace() {
    let mig = script_migration();
    let status = desired_status(&mig, &obs(RunState::Done, vec![]), &at(1));
    assert_eq!(
        status.output.unwrap().location,
        "pvc://minimal-workspace/project"
    );
}

#[test]
fn permanent_failure_is_stalled_failed_with_its_message() {
    let mig = script_migration();
    let mut job = observed(
        finished_job("minimal-extract-1", "Failed", "PodFailurePolicy"),
        Step::Extract,
        1,
    );
    job.message = Some("InvalidScript: no CREATE TABLE found".into());
    let run = RunState::Stalled {
        job: job.clone(),
        cause: StallCause::PermanentFailure,
    };
    let status = desired_status(&mig, &obs(run, vec![job]), &at(9));
    assert_eq!(status.phase, Some(MigrationPhase::Failed));
    let stalled = cond(&status, condition_type::STALLED);
    assert_eq!(
        (stalled.status.as_str(), stalled.reason.as_str()),
        ("True", reason::STEP_FAILED)
    );
    assert!(
        stalled
            .message
            .contains("InvalidScript: no CREATE TABLE found")
    );
    assert!(stalled.message.contains(RECONCILE_REQUESTED_AT));
    assert_eq!(cond(&status, condition_type::READY).status, "False");
    assert_eq!(cond(&status, condition_type::RECONCILING).status, "False");
    assert_eq!(status.steps[0].phase, StepPhase::Failed);
    assert_eq!(status.completion_time, Some(at(9)));
}

#[test]
fn retries_exhausted_has_its_own_reason() {
    let mig = script_migration();
    let job = observed(
        finished_job("j", "Failed", "BackoffLimitExceeded"),
        Step::Migrate,
        3,
    );
    let run = RunState::Stalled {
        job: job.clone(),
        cause: StallCause::RetriesExhausted,
    };
    let status = desired_status(&mig, &obs(run, vec![job]), &at(9));
    assert_eq!(
        cond(&status, condition_type::STALLED).reason,
        reason::RETRIES_EXHAUSTED
    );
}

#[test]
fn backoff_keeps_reconciling_and_says_when() {
    let mig = script_migration();
    let job = observed(
        finished_job("j", "Failed", "BackoffLimitExceeded"),
        Step::Extract,
        1,
    );
    let run = RunState::Backoff {
        job: job.clone(),
        wait: Duration::from_secs(7),
    };
    let status = desired_status(&mig, &obs(run, vec![job]), &at(9));
    let ready = cond(&status, condition_type::READY);
    assert_eq!(ready.reason, reason::STEP_BACKOFF);
    assert!(ready.message.ends_with("next attempt in 7s"));
    assert_eq!(cond(&status, condition_type::STALLED).status, "False");
    assert_eq!(cond(&status, condition_type::RECONCILING).status, "True");
}

#[test]
fn missing_secret_is_pending_with_its_reason_and_keeps_the_old_hash() {
    let mut mig = full_migration();
    mig.status = Some(MigrationStatus {
        secrets_hash: Some("sha256:old".into()),
        ..Default::default()
    });
    let mut o = obs(
        RunState::Create {
            step: Step::Extract,
            attempt: 1,
            budget_start: 1,
        },
        vec![],
    );
    o.inputs = InputsCheck::Missing {
        reason: reason::SECRET_NOT_FOUND,
        message: "Secret northwind-login not found".into(),
    };
    let status = desired_status(&mig, &o, &at(1));
    assert_eq!(status.phase, Some(MigrationPhase::Pending));
    let inputs = cond(&status, condition_type::INPUTS_READY);
    assert_eq!(
        (inputs.status.as_str(), inputs.reason.as_str()),
        ("False", reason::SECRET_NOT_FOUND)
    );
    assert_eq!(
        cond(&status, condition_type::READY).reason,
        reason::SECRET_NOT_FOUND
    );
    assert_eq!(status.secrets_hash.as_deref(), Some("sha256:old"));
}

#[test]
fn suspended_run_shows_suspended() {
    let mut mig = script_migration();
    mig.spec.suspend = true;
    let job = observed(running_job("j"), Step::Migrate, 1);
    let status = desired_status(
        &mig,
        &obs(RunState::Running { job: job.clone() }, vec![job]),
        &at(1),
    );
    assert_eq!(status.phase, Some(MigrationPhase::Suspended));
    assert_eq!(
        cond(&status, condition_type::READY).reason,
        reason::SUSPENDED
    );
    assert_eq!(cond(&status, condition_type::RECONCILING).status, "False");
}

#[test]
fn unchanged_state_yields_an_identical_status() {
    let mut mig = script_migration();
    let job = observed(running_job("j"), Step::Extract, 1);
    let o = obs(RunState::Running { job: job.clone() }, vec![job]);
    let first = desired_status(&mig, &o, &at(1));
    mig.status = Some(first.clone());
    assert_eq!(desired_status(&mig, &o, &at(99)), first);
}

#[test]
fn annotation_is_echoed_and_a_new_value_requests_a_retry() {
    let mig = script_migration().with_annotation(RECONCILE_REQUESTED_AT, "2026-12-03T11:00:00Z");
    assert!(!retry_requested(&mig), "no status yet: nothing to retry");
    let status = desired_status(&mig, &obs(RunState::Done, vec![]), &at(1));
    assert_eq!(
        status.last_handled_reconcile_at.as_deref(),
        Some("2026-12-03T11:00:00Z")
    );
    let mut handled = mig.clone();
    handled.status = Some(status);
    assert!(!retry_requested(&handled));
    let again = handled
        .clone()
        .with_annotation(RECONCILE_REQUESTED_AT, "2026-12-03T12:00:00Z");
    assert!(retry_requested(&again));
    let respecced = handled.with_generation(2);
    assert!(retry_requested(&respecced));
}

#[test]
fn transitions_are_reported_only_when_phase_or_ready_reason_moves() {
    let mig = script_migration();
    let job = observed(running_job("j"), Step::Extract, 1);
    let running = desired_status(
        &mig,
        &obs(RunState::Running { job: job.clone() }, vec![job]),
        &at(1),
    );
    assert_eq!(transition(&running, &running), None);
    let done = desired_status(&mig, &obs(RunState::Done, vec![]), &at(2));
    let (reason, _) = transition(&running, &done).unwrap();
    assert_eq!(reason, reason::SUCCEEDED);
    assert!(transition(&MigrationStatus::default(), &running).is_some());
}

#[test]
fn ready_message_counts_the_objects_and_points_at_the_report_when_some_are_flagged() {
    let report: SummaryReport = serde_json::from_value(serde_json::json!({
        "counts": {"verified": 11, "verified-by-build": 23, "flagged": 2},
    }))
    .unwrap();
    assert_eq!(
        done_message(Some(&report)),
        "Every step succeeded: 11 verified, 23 verified by build, 2 flagged (see the report)"
    );
    let clean: SummaryReport =
        serde_json::from_value(serde_json::json!({"counts": {"verified": 3}})).unwrap();
    assert_eq!(
        done_message(Some(&clean)),
        "Every step succeeded: 3 verified, 0 verified by build, 0 flagged"
    );
    assert!(done_message(None).starts_with("Every step succeeded, but the agent's summary never"));
}
