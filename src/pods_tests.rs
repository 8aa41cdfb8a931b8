use k8s_openapi::api::core::v1::Pod;
use kube::runtime::watcher::Event;
use serde_json::{Value, json};

use super::*;

fn pod(name: &str, status: Value) -> Pod {
    serde_json::from_value(json!({
        "metadata": {
            "name": name,
            "namespace": "etl",
            "labels": {
                "datamigrate.ai/migration": "northwind",
                "batch.kubernetes.io/job-name": "northwind-migrate-1",
            },
        },
        "status": status,
    }))
    .expect("a pod")
}

fn waiting(reason: &str, message: &str) -> Value {
    json!({
        "phase": "Pending",
        "containerStatuses": [{
            "name": "step", "image": "agent", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"waiting": {"reason": reason, "message": message}},
        }],
    })
}

#[test]
fn a_container_config_error_blocks_with_the_kubelets_message() {
    let p = pod(
        "northwind-migrate-1-abcde",
        waiting("CreateContainerConfigError", "secret \"llm-key\" not found"),
    );
    let b = blocker(&p).expect("blocked");
    assert_eq!(b.migration, "northwind");
    assert_eq!(b.job, "northwind-migrate-1");
    assert_eq!(b.pod, "northwind-migrate-1-abcde");
    assert_eq!(b.reason, "CreateContainerConfigError");
    assert_eq!(b.message, "secret \"llm-key\" not found");
}

#[test]
fn ordinary_start_up_and_finished_pods_do_not_block() {
    for status in [
        waiting("ContainerCreating", ""),
        waiting("PodInitializing", ""),
        json!({"phase": "Pending"}),
        json!({"phase": "Running", "containerStatuses": [{
            "name": "step", "image": "agent", "imageID": "", "ready": true, "restartCount": 0,
            "state": {"running": {}},
        }]}),
    ] {
        assert_eq!(blocker(&pod("p", status.clone())), None, "{status}");
    }
    let mut failed = waiting("ImagePullBackOff", "back-off");
    failed["phase"] = json!("Failed");
    assert_eq!(blocker(&pod("p", failed)), None);
}

#[test]
fn an_unschedulable_pod_blocks_and_its_message_is_one_line() {
    let status = json!({
        "phase": "Pending",
        "conditions": [{
            "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": "0/1 nodes are available:\n persistentvolumeclaim \"src\" not found.",
        }],
    });
    let b = blocker(&pod("p", status)).expect("blocked");
    assert_eq!(b.reason, "Unschedulable");
    assert_eq!(
        b.message,
        "0/1 nodes are available: persistentvolumeclaim \"src\" not found."
    );
}

#[test]
fn init_container_reasons_count_and_unlabelled_pods_are_ignored() {
    let status = json!({
        "phase": "Pending",
        "initContainerStatuses": [{
            "name": "init", "image": "x y", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"waiting": {"reason": "InvalidImageName"}},
        }],
    });
    let b = blocker(&pod("p", status.clone())).expect("blocked");
    assert_eq!(
        (b.reason.as_str(), b.message.as_str()),
        ("InvalidImageName", "no message")
    );
    let mut other = pod("p", status);
    other.metadata.labels = None;
    assert_eq!(blocker(&other), None);
}

#[test]
fn the_watch_triggers_on_entering_changing_and_leaving_a_blocked_state() {
    let blockers = Blockers::default();
    let blocked = pod("p1", waiting("ErrImagePull", "not found"));
    let pulling = pod("p1", waiting("ImagePullBackOff", "back-off pulling"));
    let running = pod("p1", json!({"phase": "Running"}));
    assert!(blockers.observe(Event::Apply(blocked.clone())).is_some());
    assert!(
        blockers.observe(Event::Apply(blocked)).is_none(),
        "no change"
    );
    assert!(blockers.observe(Event::Apply(pulling.clone())).is_some());
    let found = blockers
        .for_job("etl", "northwind-migrate-1")
        .expect("kept");
    assert_eq!(found.reason, "ImagePullBackOff");
    assert_eq!(blockers.for_job("other", "northwind-migrate-1"), None);
    assert_eq!(blockers.for_job("etl", "northwind-migrate-2"), None);
    assert!(blockers.observe(Event::Apply(running.clone())).is_some());
    assert!(blockers.is_empty());
    assert!(
        blockers.observe(Event::Apply(running)).is_none(),
        "nothing to clear"
    );
    assert!(blockers.observe(Event::Apply(pulling.clone())).is_some());
    assert!(blockers.observe(Event::Delete(pulling)).is_some());
    assert!(blockers.is_empty());
}

#[test]
fn a_relist_replaces_what_was_kept() {
    let blockers = Blockers::default();
    let gone = pod("gone", waiting("ErrImagePull", "x"));
    let kept = pod("kept", waiting("CreateContainerConfigError", "y"));
    blockers.observe(Event::Apply(gone));
    blockers.observe(Event::Init);
    // Until the list is done, the old state answers
    assert_eq!(blockers.len(), 1);
    blockers.observe(Event::InitApply(kept));
    blockers.observe(Event::InitDone);
    assert_eq!(blockers.len(), 1);
    let b = blockers
        .for_job("etl", "northwind-migrate-1")
        .expect("kept");
    assert_eq!(b.pod, "kept");
}

#[test]
fn pods_map_to_their_migration() {
    let p = pod("p", json!({}));
    let r = owner_migration(&p).expect("a Migration");
    assert_eq!(
        (r.name.as_str(), r.namespace.as_deref()),
        ("northwind", Some("etl"))
    );
}
