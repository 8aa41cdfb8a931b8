//! The controller against the real control plane, with the pod runner playing the node and
//! the real agent running each step: a run to Succeeded with its steps in order, idempotent
//! reconciles, a controller crash mid-step, and deletion cascading to every owned object.

// Test code: a failed expectation is meant to panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod operator_common;
mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use datamigrate::crd::{Migration, MigrationPhase, StepPhase};
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use operator_common::{
    AGENT_IMAGE, Operator, condition, create_migration, create_minimal_script, job_names,
    migration, patch_migration, phase, wait_for,
};
use serde_json::json;

/// Extract takes seconds; migrate runs dbt on DuckDB (about 30 s on two busy cores).
const RUN_TIMEOUT: u64 = 420;

async fn output_claim(client: &kube::Client, ns: &str) {
    let pvc: PersistentVolumeClaim = serde_json::from_value(json!({
        "metadata": {"name": "projects"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
    }))
    .unwrap();
    Api::<PersistentVolumeClaim>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &pvc)
        .await
        .expect("create output claim");
}

/// Polls the Migration until it succeeds, recording every phase seen and whether progress
/// counts appeared before the end.
async fn watch_to_success(client: &kube::Client, ns: &str, name: &str) -> (Vec<String>, bool) {
    let api: Api<Migration> = Api::namespaced(client.clone(), ns);
    let started = Instant::now();
    let (mut phases, mut saw_progress) = (Vec::<String>::new(), false);
    loop {
        let mig = api.get(name).await.expect("get migration");
        let p = phase(&mig);
        if phases.last() != Some(&p) {
            phases.push(p.clone());
        }
        let status = mig.status.clone().unwrap_or_default();
        saw_progress |= p != "Succeeded" && status.progress.is_some_and(|x| x.total > 0);
        assert_ne!(p, "Failed", "migration failed: {:?}", status.message);
        if p == "Succeeded" {
            return (phases, saw_progress);
        }
        assert!(
            started.elapsed() < Duration::from_secs(RUN_TIMEOUT),
            "timed out in {phases:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn migration_runs_to_succeeded_with_steps_in_order_and_reconciling_again_creates_nothing() {
    let Some(client) = support::client().await else {
        return;
    };
    let _serial = operator_common::AGENT_RUNS.lock().await;
    operator_common::install_crd(&client).await;
    operator_common::register_agent_image();
    let ns = support::namespace(&client, "op-run").await;
    let _op = Operator::start(ns.name(), &[]);
    create_minimal_script(&client, ns.name()).await;
    output_claim(&client, ns.name()).await;
    let output = json!({"output": {"volume": {"claimName": "projects", "path": "minimal"}}});
    create_migration(
        &client,
        ns.name(),
        migration("minimal", AGENT_IMAGE, output),
    )
    .await;

    let (phases, saw_progress) = watch_to_success(&client, ns.name(), "minimal").await;
    let order = ["Extracting", "Generating", "Publishing", "Succeeded"];
    let seen: Vec<&str> = phases
        .iter()
        .map(String::as_str)
        .filter(|p| order.contains(p))
        .collect();
    let mut dedup = seen.clone();
    dedup.dedup();
    assert!(
        dedup.windows(2).all(|w| {
            order.iter().position(|p| *p == w[0]) < order.iter().position(|p| *p == w[1])
        }),
        "phases out of order: {phases:?}"
    );
    assert!(seen.contains(&"Generating") || phases.iter().any(|p| p == "Validating"));
    assert!(
        saw_progress,
        "no progress counts seen before the end: {phases:?}"
    );

    let mig = wait_for(&client, ns.name(), "minimal", "Ready", 30, |m| {
        condition(m, "Ready") == Some(("True".into(), "Succeeded".into()))
    })
    .await;
    let status = mig.status.clone().unwrap();
    assert_eq!(status.observed_generation, mig.metadata.generation);
    // The Job goes out with the workspace and RBAC, after the ServiceAccount: no pod of it was
    // refused (the Job controller records a refusal as a FailedCreate Warning)
    let warnings: Vec<_> = operator_common::events(&client, ns.name())
        .await
        .into_iter()
        .filter(|(t, _, _)| t == "Warning")
        .collect();
    assert!(warnings.is_empty(), "Warning Events: {warnings:?}");
    let steps: Vec<_> = status
        .steps
        .iter()
        .map(|s| (s.name.as_str(), s.phase))
        .collect();
    assert_eq!(
        steps,
        [
            ("extract", StepPhase::Succeeded),
            ("migrate", StepPhase::Succeeded),
            ("publish", StepPhase::Succeeded)
        ]
    );
    let starts: Vec<_> = status
        .steps
        .iter()
        .map(|s| s.start_time.clone().unwrap().0)
        .collect();
    let ends: Vec<_> = status
        .steps
        .iter()
        .map(|s| s.completion_time.clone().unwrap().0)
        .collect();
    assert!(
        ends[0] <= starts[1] && ends[1] <= starts[2],
        "steps overlapped: {starts:?} {ends:?}"
    );
    let progress = status.progress.clone().unwrap();
    assert_eq!(
        progress.summary,
        format!("{}/{}", progress.completed, progress.total)
    );
    assert!(
        status
            .objects
            .as_ref()
            .is_some_and(|o| o.verified + o.verified_by_build + o.flagged >= 2),
        "{status:?}"
    );
    assert_eq!(
        status.output.as_ref().unwrap().location,
        "pvc://projects/minimal"
    );
    assert!(status.start_time.is_some() && status.completion_time.is_some());
    let every_condition_current = status
        .conditions
        .iter()
        .all(|c| c.observed_generation == mig.metadata.generation);
    assert!(every_condition_current, "{:?}", status.conditions);
    let jobs = job_names(&client, ns.name()).await;
    assert_eq!(
        jobs,
        [
            "minimal-extract-1",
            "minimal-migrate-1",
            "minimal-publish-1"
        ]
    );

    // Reconciling again (the annotation forces one) creates nothing and changes no step.
    let at = "2026-12-03T12:00:00Z";
    let patch = json!({"metadata": {"annotations": {"datamigrate.ai/reconcile-requested-at": at}}});
    patch_migration(&client, ns.name(), "minimal", patch).await;
    let again = wait_for(
        &client,
        ns.name(),
        "minimal",
        "the annotation echo",
        30,
        |m| {
            m.status
                .as_ref()
                .and_then(|s| s.last_handled_reconcile_at.as_deref())
                == Some(at)
        },
    )
    .await;
    assert_eq!(phase(&again), "Succeeded");
    assert_eq!(again.status.unwrap().steps, status.steps);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(job_names(&client, ns.name()).await, jobs);
}

#[tokio::test]
async fn controller_killed_mid_step_finishes_the_run_without_a_duplicate_job() {
    let Some(client) = support::client().await else {
        return;
    };
    let _serial = operator_common::AGENT_RUNS.lock().await;
    operator_common::install_crd(&client).await;
    operator_common::register_agent_image();
    let ns = support::namespace(&client, "op-crash").await;
    let mut op = Operator::start(ns.name(), &[]);
    create_minimal_script(&client, ns.name()).await;
    create_migration(
        &client,
        ns.name(),
        migration("crash", AGENT_IMAGE, json!({})),
    )
    .await;

    wait_for(
        &client,
        ns.name(),
        "crash",
        "the migrate step to run",
        RUN_TIMEOUT,
        |m| matches!(phase(m).as_str(), "Generating" | "Validating"),
    )
    .await;
    op.kill();
    tokio::time::sleep(Duration::from_secs(2)).await;
    op.restart(&[]);

    let done = wait_for(&client, ns.name(), "crash", "Succeeded", RUN_TIMEOUT, |m| {
        assert_ne!(phase(m), "Failed", "{:?}", m.status);
        phase(m) == "Succeeded"
    })
    .await;
    assert_eq!(
        job_names(&client, ns.name()).await,
        ["crash-extract-1", "crash-migrate-1"]
    );
    assert_eq!(operator_common::step_attempts(&done), [1, 1]);
}

#[tokio::test]
async fn deleting_a_migration_removes_its_jobs_workspace_and_rbac() {
    let Some(client) = support::client().await else {
        return;
    };
    operator_common::install_crd(&client).await;
    operator_common::register_agent_image();
    let ns = support::namespace(&client, "op-delete").await;
    let _op = Operator::start(ns.name(), &[]);
    create_minimal_script(&client, ns.name()).await;
    create_migration(
        &client,
        ns.name(),
        migration("gone", AGENT_IMAGE, json!({})),
    )
    .await;
    wait_for(&client, ns.name(), "gone", "a step Job", 60, |m| {
        m.status
            .as_ref()
            .is_some_and(|s| s.steps.iter().any(|st| st.job_name.is_some()))
    })
    .await;
    let n = ns.name();
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), n);
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), n);
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), n);
    let roles: Api<Role> = Api::namespaced(client.clone(), n);
    let bindings: Api<RoleBinding> = Api::namespaced(client.clone(), n);
    assert!(pvcs.get_opt("gone-workspace").await.unwrap().is_some());
    assert!(cms.get_opt("gone-progress").await.unwrap().is_some());
    assert!(sas.get_opt("gone-agent").await.unwrap().is_some());
    let role = roles.get("gone-agent").await.unwrap();
    let rule = &role.rules.unwrap()[0];
    assert_eq!(
        rule.resource_names.as_deref(),
        Some(&["gone-progress".to_string()][..])
    );
    assert!(bindings.get_opt("gone-agent").await.unwrap().is_some());

    let migs: Api<Migration> = Api::namespaced(client.clone(), n);
    migs.delete("gone", &DeleteParams::background())
        .await
        .expect("delete migration");
    // The garbage collector re-reads discovery every 30 s; allow for a late start.
    support::wait_until(
        "owned objects to be collected",
        Duration::from_secs(120),
        || async {
            let left: BTreeSet<&str> = [
                (!job_names(&client, n).await.is_empty()).then_some("jobs"),
                pvcs.get_opt("gone-workspace")
                    .await
                    .ok()
                    .flatten()
                    .filter(|p| p.metadata.deletion_timestamp.is_none())
                    .map(|_| "pvc"),
                cms.get_opt("gone-progress")
                    .await
                    .ok()
                    .flatten()
                    .map(|_| "configmap"),
                sas.get_opt("gone-agent")
                    .await
                    .ok()
                    .flatten()
                    .map(|_| "serviceaccount"),
                roles
                    .get_opt("gone-agent")
                    .await
                    .ok()
                    .flatten()
                    .map(|_| "role"),
                bindings
                    .get_opt("gone-agent")
                    .await
                    .ok()
                    .flatten()
                    .map(|_| "rolebinding"),
            ]
            .into_iter()
            .flatten()
            .collect();
            left.is_empty().then_some(())
        },
    )
    .await;
    assert!(
        cms.get_opt("minimal-script").await.unwrap().is_some(),
        "the source was touched"
    );
    let _ = MigrationPhase::Succeeded;
}

#[tokio::test]
async fn a_migration_recreated_under_the_same_name_runs_afresh_and_adopts_nothing_old() {
    let Some(client) = support::client().await else {
        return;
    };
    let _serial = operator_common::AGENT_RUNS.lock().await;
    operator_common::install_crd(&client).await;
    operator_common::register_agent_image();
    let ns = support::namespace(&client, "op-again").await;
    let n = ns.name();
    let _op = Operator::start(n, &[]);
    create_minimal_script(&client, n).await;
    let first = create_migration(&client, n, migration("again", AGENT_IMAGE, json!({}))).await;
    // Mid-run: the migrate pod holds the claim, which then stays Terminating for a while
    wait_for(&client, n, "again", "the migrate step", RUN_TIMEOUT, |m| {
        m.status.as_ref().is_some_and(|s| {
            s.steps
                .iter()
                .any(|st| st.name == "migrate" && st.job_name.is_some())
        })
    })
    .await;
    let migs: Api<Migration> = Api::namespaced(client.clone(), n);
    migs.delete("again", &DeleteParams::background())
        .await
        .expect("delete migration");
    support::wait_until("the Migration to go", Duration::from_secs(30), || async {
        migs.get_opt("again").await.unwrap().is_none().then_some(())
    })
    .await;
    // At once, while the garbage collector has yet to delete the first one's Jobs and claim
    let second = create_migration(&client, n, migration("again", AGENT_IMAGE, json!({}))).await;
    let done = wait_for(&client, n, "again", "Succeeded again", RUN_TIMEOUT, |m| {
        phase(m) == "Succeeded"
    })
    .await;
    let (old, new) = (first.metadata.uid.unwrap(), second.metadata.uid.unwrap());
    assert_eq!(done.metadata.uid.as_ref(), Some(&new));
    let jobs: Api<k8s_openapi::api::batch::v1::Job> = Api::namespaced(client.clone(), n);
    for step in done.status.unwrap().steps {
        let name = step.job_name.expect("each step ran");
        let owners: Vec<String> = jobs
            .get(&name)
            .await
            .unwrap()
            .metadata
            .owner_references
            .unwrap_or_default()
            .into_iter()
            .map(|o| o.uid)
            .collect();
        assert_eq!(
            owners,
            vec![new.as_str()],
            "{name} is the second Migration's own"
        );
    }
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), n);
    let claim = pvcs.get("again-workspace").await.unwrap();
    let owners: Vec<String> = claim
        .metadata
        .owner_references
        .unwrap_or_default()
        .into_iter()
        .map(|o| o.uid)
        .collect();
    assert!(
        owners.contains(&new) && !owners.contains(&old),
        "{owners:?}"
    );
    let created = operator_common::events(&client, n)
        .await
        .into_iter()
        .filter(|(_, _, note)| note.starts_with("Created Job again-extract-1 "))
        .count();
    assert_eq!(created, 2, "one Created Job Event per Migration");
}
