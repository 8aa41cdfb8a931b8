//! The controller as a process: probes and metrics, graceful shutdown on SIGTERM, and leader
//! election between two replicas (only the Lease holder works; the other takes over when the
//! holder dies).

// Test code: a failed expectation is meant to panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod operator_common;
mod support;

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use operator_common::{
    AGENT_IMAGE, Operator, create_migration, create_minimal_script, http_get, job_names, migration,
    phase, wait_for,
};
use serde_json::json;

#[tokio::test]
async fn probes_and_metrics_answer_and_sigterm_stops_the_controller_cleanly() {
    let Some(client) = support::client().await else {
        return;
    };
    operator_common::install_crd(&client).await;
    operator_common::register_agent_image();
    let ns = support::namespace(&client, "op-probes").await;
    let mut op = Operator::start(ns.name(), &[]);
    let addr = op.probe_addr().await;
    assert_eq!(http_get(&addr, "/healthz").await.0, 200);
    support::wait_until("readiness", Duration::from_secs(30), || async {
        (http_get(&addr, "/readyz").await.0 == 200).then_some(())
    })
    .await;

    create_minimal_script(&client, ns.name()).await;
    create_migration(
        &client,
        ns.name(),
        migration("probed", AGENT_IMAGE, json!({})),
    )
    .await;
    wait_for(&client, ns.name(), "probed", "a step Job", 60, |m| {
        !phase(m).is_empty()
    })
    .await;
    let (code, body) = http_get(&addr, "/metrics").await;
    assert_eq!(code, 200);
    for metric in [
        "datamigrate_reconciles_total",
        "datamigrate_reconcile_duration_seconds_bucket",
        "datamigrate_step_jobs_created_total{step=\"extract\"",
    ] {
        assert!(
            body.contains(metric),
            "{metric} missing from /metrics:\n{body}"
        );
    }
    support::wait_until("the phase gauge", Duration::from_secs(30), || async {
        let body = http_get(&addr, "/metrics").await.1;
        body.contains("datamigrate_migrations{phase=").then_some(())
    })
    .await;

    let status = op
        .terminate(Duration::from_secs(20))
        .expect("the controller exits on SIGTERM");
    assert!(status.success(), "exit status {status:?}");
    assert!(op.log_text().contains("Received SIGTERM, shutting down"));
}

#[tokio::test]
async fn only_the_lease_holder_reconciles_and_a_standby_takes_over() {
    let Some(client) = support::client().await else {
        return;
    };
    let _serial = operator_common::AGENT_RUNS.lock().await;
    operator_common::install_crd(&client).await;
    operator_common::register_agent_image();
    let ns = support::namespace(&client, "op-leader").await;
    let lease_ns = format!("--lease-namespace={}", ns.name());
    let mut first = Operator::start(ns.name(), &["--leader-elect", &lease_ns]);
    let leases: Api<Lease> = Api::namespaced(client.clone(), ns.name());
    let holder = support::wait_until("a Lease holder", Duration::from_secs(30), || async {
        let lease = leases
            .get_opt("datamigrate-operator-leader")
            .await
            .ok()
            .flatten()?;
        lease.spec?.holder_identity
    })
    .await;
    assert_eq!(holder, format!("datamigrate-{}", first.pid().unwrap()));
    // The second replica watches the same namespace, with its own log.
    let mut standby = Operator::start_named(ns.name(), "standby", &["--leader-elect", &lease_ns]);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(standby.log_text().contains("Waiting for the leader Lease"));
    assert!(!standby.log_text().contains("Acquired the leader Lease"));

    create_minimal_script(&client, ns.name()).await;
    create_migration(&client, ns.name(), migration("led", AGENT_IMAGE, json!({}))).await;
    wait_for(&client, ns.name(), "led", "the first step", 60, |m| {
        !phase(m).is_empty()
    })
    .await;
    assert!(
        !standby.log_text().contains("Created step job"),
        "the standby reconciled"
    );

    first.kill();
    support::wait_until(
        "the standby to take over",
        Duration::from_secs(60),
        || async {
            standby
                .log_text()
                .contains("Acquired the leader Lease")
                .then_some(())
        },
    )
    .await;
    wait_for(
        &client,
        ns.name(),
        "led",
        "Succeeded under the new leader",
        420,
        |m| {
            assert_ne!(phase(m), "Failed", "{:?}", m.status);
            phase(m) == "Succeeded"
        },
    )
    .await;
    assert_eq!(
        job_names(&client, ns.name()).await,
        ["led-extract-1", "led-migrate-1"]
    );
    standby.kill();
}
