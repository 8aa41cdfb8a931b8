//! Failure handling on the real control plane: retries then Stalled, the reconcile-request
//! annotation restarting a stalled run, bad input stalling at once, a missing Secret reported
//! and recovered from (with no Secret value anywhere), a pod that cannot start reported with its
//! reason, and suspend/resume.

// Test code: a failed expectation is meant to panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod operator_common;
mod support;

use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Secret};
use kube::Api;
use kube::api::PostParams;
use operator_common::{
    AGENT_IMAGE, BROKEN_IMAGE, Operator, condition, create_migration, create_minimal_script,
    create_script, events, job_names, migration, patch_migration, phase, wait_for,
};
use serde_json::json;

const RUN_TIMEOUT: u64 = 420;
const SECRET_VALUE: &str = "sk-test-DO-NOT-LEAK-4f1c9e";

fn stalled_with(m: &datamigrate::crd::Migration, reason: &str) -> bool {
    condition(m, "Stalled") == Some(("True".into(), reason.into()))
}

#[tokio::test]
async fn a_failing_step_is_retried_then_stalls_and_the_annotation_restarts_it() {
    let Some(client) = support::client().await else {
        return;
    };
    operator_common::install_crd(&client).await;
    let ns = support::namespace(&client, "op-retry").await;
    let _op = Operator::start(ns.name(), &["--max-step-attempts=2"]);
    create_minimal_script(&client, ns.name()).await;
    create_migration(
        &client,
        ns.name(),
        migration("flaky", BROKEN_IMAGE, json!({})),
    )
    .await;

    let mig = wait_for(&client, ns.name(), "flaky", "Stalled", 180, |m| {
        stalled_with(m, "RetriesExhausted")
    })
    .await;
    assert_eq!(phase(&mig), "Failed");
    assert_eq!(condition(&mig, "Ready").unwrap().0, "False");
    assert_eq!(condition(&mig, "Reconciling").unwrap().0, "False");
    let status = mig.status.clone().unwrap();
    assert_eq!(status.steps[0].attempts, 2);
    assert!(
        status
            .message
            .as_deref()
            .unwrap_or("")
            .contains("Step extract failed every attempt")
    );
    assert_eq!(
        job_names(&client, ns.name()).await,
        ["flaky-extract-1", "flaky-extract-2"]
    );
    let warnings: Vec<_> = events(&client, ns.name())
        .await
        .into_iter()
        .filter(|(t, r, _)| t == "Warning" && r == "RetriesExhausted")
        .collect();
    assert_eq!(warnings.len(), 1, "one Warning Event on the transition");

    // Stalled waits: no new attempt appears by itself.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(job_names(&client, ns.name()).await.len(), 2);

    let at = "2026-12-03T12:30:00Z";
    let patch = json!({"metadata": {"annotations": {"datamigrate.ai/reconcile-requested-at": at}}});
    patch_migration(&client, ns.name(), "flaky", patch).await;
    let again = wait_for(
        &client,
        ns.name(),
        "flaky",
        "a new budget to stall again",
        180,
        |m| {
            let s = m.status.clone().unwrap_or_default();
            s.last_handled_reconcile_at.as_deref() == Some(at)
                && s.steps.first().is_some_and(|st| st.attempts == 4)
                && stalled_with(m, "RetriesExhausted")
        },
    )
    .await;
    assert_eq!(phase(&again), "Failed");
    let jobs = job_names(&client, ns.name()).await;
    assert_eq!(
        jobs,
        [
            "flaky-extract-1",
            "flaky-extract-2",
            "flaky-extract-3",
            "flaky-extract-4"
        ]
    );
}

#[tokio::test]
async fn bad_input_stalls_at_once_with_the_agents_message() {
    let Some(client) = support::client().await else {
        return;
    };
    operator_common::install_crd(&client).await;
    operator_common::register_agent_image();
    let ns = support::namespace(&client, "op-bad").await;
    let _op = Operator::start(ns.name(), &[]);
    create_script(
        &client,
        ns.name(),
        "minimal-script",
        "schema.sql",
        "this is not sql\n",
    )
    .await;
    create_migration(&client, ns.name(), migration("bad", AGENT_IMAGE, json!({}))).await;

    let mig = wait_for(&client, ns.name(), "bad", "Stalled", 180, |m| {
        stalled_with(m, "StepFailed")
    })
    .await;
    let status = mig.status.clone().unwrap();
    assert_eq!(status.steps[0].attempts, 1);
    let message = status.steps[0].message.clone().unwrap_or_default();
    assert!(
        message.starts_with("SourceUnreadable:"),
        "step message: {message}"
    );
    let stalled = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Stalled")
        .unwrap();
    assert!(
        stalled.message.contains("SourceUnreadable"),
        "{}",
        stalled.message
    );
    assert_eq!(stalled.observed_generation, mig.metadata.generation);
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(job_names(&client, ns.name()).await, ["bad-extract-1"]);
    let warned = events(&client, ns.name())
        .await
        .into_iter()
        .any(|(t, r, n)| t == "Warning" && r == "StepFailed" && n.contains("SourceUnreadable"));
    assert!(warned, "no StepFailed Warning Event");
}

#[tokio::test]
async fn a_missing_secret_is_reported_then_the_run_proceeds_and_no_value_leaks() {
    let Some(client) = support::client().await else {
        return;
    };
    let _serial = operator_common::AGENT_RUNS.lock().await;
    operator_common::install_crd(&client).await;
    operator_common::register_agent_image();
    let ns = support::namespace(&client, "op-secret").await;
    let op = Operator::start(ns.name(), &[]);
    create_minimal_script(&client, ns.name()).await;
    let agent = json!({"agent": {
        "modelProvider": "openai-compatible", "baseUrl": "http://127.0.0.1:9/v1", "model": "m",
        "apiKeySecretRef": {"name": "llm", "key": "api-key"}
    }});
    create_migration(&client, ns.name(), migration("keyed", AGENT_IMAGE, agent)).await;

    let mig = wait_for(&client, ns.name(), "keyed", "SecretNotFound", 60, |m| {
        condition(m, "InputsReady") == Some(("False".into(), "SecretNotFound".into()))
    })
    .await;
    assert_eq!(phase(&mig), "Pending");
    assert!(
        mig.status
            .unwrap()
            .message
            .unwrap_or_default()
            .contains("Secret llm not found")
    );
    assert!(
        job_names(&client, ns.name()).await.is_empty(),
        "a Job started without its Secret"
    );
    let warned = events(&client, ns.name())
        .await
        .into_iter()
        .any(|(t, r, n)| t == "Warning" && r == "SecretNotFound" && n.contains("llm"));
    assert!(warned, "no SecretNotFound Warning Event");

    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "llm"}, "stringData": {"api-key": SECRET_VALUE}
    }))
    .unwrap();
    Api::<Secret>::namespaced(client.clone(), ns.name())
        .create(&PostParams::default(), &secret)
        .await
        .expect("create secret");
    // The error backoff is capped at 3 s in these tests; the run proceeds by itself.
    let mig = wait_for(&client, ns.name(), "keyed", "the run to proceed", 60, |m| {
        condition(m, "InputsReady") == Some(("True".into(), "InputsFound".into()))
            && m.status
                .as_ref()
                .is_some_and(|s| s.steps[0].job_name.is_some())
    })
    .await;
    let hash = mig
        .status
        .as_ref()
        .and_then(|s| s.secrets_hash.clone())
        .unwrap_or_default();
    assert!(
        hash.starts_with("sha256:") && hash.len() == 71,
        "secretsHash {hash}"
    );

    // Let the run reach the migrate step, whose Job references the key.
    wait_for(
        &client,
        ns.name(),
        "keyed",
        "the migrate step",
        RUN_TIMEOUT,
        |m| {
            m.status.as_ref().is_some_and(|s| {
                s.steps
                    .iter()
                    .any(|st| st.name == "migrate" && st.job_name.is_some())
            })
        },
    )
    .await;
    let jobs: Api<Job> = Api::namespaced(client.clone(), ns.name());
    let migrate = jobs.get("keyed-migrate-1").await.expect("migrate job");
    let extract = jobs.get("keyed-extract-1").await.expect("extract job");
    let env_text = |j: &Job| serde_json::to_string(&j.spec).unwrap();
    assert!(env_text(&migrate).contains("\"secretKeyRef\":{\"key\":\"api-key\",\"name\":\"llm\""));
    assert!(
        !env_text(&extract).contains("secretKeyRef"),
        "extract got a Secret it needs not"
    );

    let migs: Api<datamigrate::crd::Migration> = Api::namespaced(client.clone(), ns.name());
    let everything = [
        serde_json::to_string(&migs.get("keyed").await.unwrap()).unwrap(),
        operator_common::dump_events_json(&client, ns.name()).await,
        env_text(&migrate),
        op.log_text(),
    ];
    for (what, text) in ["status", "events", "job", "controller log"]
        .iter()
        .zip(&everything)
    {
        assert!(
            !text.contains(SECRET_VALUE),
            "the Secret value leaked into the {what}"
        );
    }
}

#[tokio::test]
async fn a_pod_that_cannot_start_is_reported_with_its_reason_and_cleared_when_it_starts() {
    let Some(client) = support::client().await else {
        return;
    };
    let _serial = operator_common::AGENT_RUNS.lock().await;
    operator_common::install_crd(&client).await;
    operator_common::register_agent_image();
    let ns = support::namespace(&client, "op-blocked").await;
    let _op = Operator::start(ns.name(), &[]);
    // The source claim does not exist: the pod is created, and its container waits
    let source = json!({"source": {"script": {
        "configMapKeyRef": null, "volume": {"claimName": "source-disk", "path": "schema.sql"}
    }}});
    create_migration(&client, ns.name(), migration("stuck", AGENT_IMAGE, source)).await;

    let mig = wait_for(&client, ns.name(), "stuck", "PodCannotStart", 90, |m| {
        condition(m, "Ready") == Some(("False".into(), "PodCannotStart".into()))
    })
    .await;
    assert_eq!(phase(&mig), "Extracting");
    assert_eq!(condition(&mig, "Stalled").unwrap().0, "False");
    let status = mig.status.clone().unwrap();
    let message = status.message.clone().unwrap_or_default();
    assert!(
        message.starts_with("Step extract (attempt 1) cannot start: pod stuck-extract-1-")
            && message.contains("CreateContainerConfigError")
            && message.contains("persistentvolumeclaim \"source-disk\" not found"),
        "{message}"
    );
    assert_eq!(
        status.steps[0].message.as_deref(),
        message.split_once("cannot start: ").map(|(_, why)| why)
    );
    // The Event follows the status write
    let pod_warnings = || async {
        let all = events(&client, ns.name()).await;
        let warned = all
            .into_iter()
            .filter(|(t, r, n)| {
                t == "Warning" && r == "PodCannotStart" && n.contains("source-disk")
            })
            .count();
        (warned > 0).then_some(warned)
    };
    let warned = support::wait_until(
        "a PodCannotStart Event",
        Duration::from_secs(10),
        pod_warnings,
    );
    assert_eq!(warned.await, 1, "one Warning Event on entering the state");
    assert_eq!(job_names(&client, ns.name()).await, ["stuck-extract-1"]);

    // With the claim there the pod starts (and fails: the file is not on the claim), and the
    // reason goes away
    let claim: PersistentVolumeClaim = serde_json::from_value(json!({
        "metadata": {"name": "source-disk"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
    }))
    .unwrap();
    Api::<PersistentVolumeClaim>::namespaced(client.clone(), ns.name())
        .create(&PostParams::default(), &claim)
        .await
        .unwrap();
    let after = wait_for(
        &client,
        ns.name(),
        "stuck",
        "a reason other than PodCannotStart",
        90,
        |m| condition(m, "Ready").is_some_and(|(_, r)| r != "PodCannotStart"),
    )
    .await;
    let step = &after.status.unwrap().steps[0];
    assert!(
        !step
            .message
            .clone()
            .unwrap_or_default()
            .contains("source-disk\" not found"),
        "{:?}",
        step.message
    );
}

#[tokio::test]
async fn suspend_starts_nothing_and_suspends_the_running_job_and_resume_continues() {
    let Some(client) = support::client().await else {
        return;
    };
    let _serial = operator_common::AGENT_RUNS.lock().await;
    operator_common::install_crd(&client).await;
    operator_common::register_agent_image();
    let ns = support::namespace(&client, "op-suspend").await;
    let _op = Operator::start(ns.name(), &[]);
    create_minimal_script(&client, ns.name()).await;
    create_migration(
        &client,
        ns.name(),
        migration("paused", AGENT_IMAGE, json!({"suspend": true})),
    )
    .await;

    wait_for(&client, ns.name(), "paused", "Suspended", 60, |m| {
        phase(m) == "Suspended"
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        job_names(&client, ns.name()).await.is_empty(),
        "a suspended Migration started a Job"
    );

    patch_migration(
        &client,
        ns.name(),
        "paused",
        json!({"spec": {"suspend": false}}),
    )
    .await;
    wait_for(
        &client,
        ns.name(),
        "paused",
        "the migrate step",
        RUN_TIMEOUT,
        |m| matches!(phase(m).as_str(), "Generating" | "Validating"),
    )
    .await;
    patch_migration(
        &client,
        ns.name(),
        "paused",
        json!({"spec": {"suspend": true}}),
    )
    .await;
    let mig = wait_for(&client, ns.name(), "paused", "Suspended again", 60, |m| {
        phase(m) == "Suspended"
    })
    .await;
    assert_eq!(
        condition(&mig, "Ready"),
        Some(("False".into(), "Suspended".into()))
    );
    let jobs: Api<Job> = Api::namespaced(client.clone(), ns.name());
    support::wait_until(
        "the migrate Job to stop its pod",
        Duration::from_secs(60),
        || async {
            let job = jobs.get("paused-migrate-1").await.ok()?;
            let suspended = job.spec.as_ref()?.suspend == Some(true);
            let idle = job
                .status
                .as_ref()
                .is_some_and(|s| s.active.unwrap_or(0) == 0);
            (suspended && idle).then_some(())
        },
    )
    .await;

    patch_migration(
        &client,
        ns.name(),
        "paused",
        json!({"spec": {"suspend": false}}),
    )
    .await;
    let done = wait_for(
        &client,
        ns.name(),
        "paused",
        "Succeeded",
        RUN_TIMEOUT,
        |m| phase(m) == "Succeeded",
    )
    .await;
    assert_eq!(
        job_names(&client, ns.name()).await,
        ["paused-extract-1", "paused-migrate-1"]
    );
    assert_eq!(operator_common::step_attempts(&done), [1, 1]);
}
