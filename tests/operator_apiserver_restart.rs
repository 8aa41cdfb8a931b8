//! Restarting etcd and the API server in the middle of a run: the controller's watches recover
//! by themselves and the run finishes with nothing duplicated. Its own test binary, so no other
//! test shares the outage (cargo runs test binaries one after another).

// Test code: a failed expectation is meant to panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod operator_common;
mod support;

use std::process::Command;
use std::time::Duration;

use operator_common::{
    AGENT_IMAGE, Operator, create_migration, create_minimal_script, job_names, migration, phase,
    wait_for,
};
use serde_json::json;

const RUN_TIMEOUT: u64 = 480;

#[tokio::test]
async fn the_run_survives_an_api_server_and_etcd_restart_without_duplicates() {
    let Some(client) = support::client().await else {
        return;
    };
    let _serial = operator_common::AGENT_RUNS.lock().await;
    operator_common::install_crd(&client).await;
    operator_common::register_agent_image();
    let ns = support::namespace(&client, "op-outage").await;
    let _op = Operator::start(ns.name(), &[]);
    create_minimal_script(&client, ns.name()).await;
    create_migration(
        &client,
        ns.name(),
        migration("outage", AGENT_IMAGE, json!({})),
    )
    .await;
    wait_for(
        &client,
        ns.name(),
        "outage",
        "the migrate step",
        RUN_TIMEOUT,
        |m| matches!(phase(m).as_str(), "Generating" | "Validating"),
    )
    .await;

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/dev-cluster");
    let out = Command::new(script)
        .arg("restart-apiserver")
        .output()
        .expect("run dev-cluster");
    assert!(
        out.status.success(),
        "restart failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A fresh client: the old one's connections died with the server.
    let client = support::client().await.expect("client after restart");

    let done = wait_for(
        &client,
        ns.name(),
        "outage",
        "Succeeded",
        RUN_TIMEOUT,
        |m| {
            assert_ne!(phase(m), "Failed", "{:?}", m.status);
            phase(m) == "Succeeded"
        },
    )
    .await;
    assert_eq!(
        job_names(&client, ns.name()).await,
        ["outage-extract-1", "outage-migrate-1"]
    );
    assert_eq!(operator_common::step_attempts(&done), [1, 1]);
    tokio::time::sleep(Duration::from_secs(1)).await;
}
