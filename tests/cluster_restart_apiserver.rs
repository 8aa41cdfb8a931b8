//! The pod runner keeps working while the API server and etcd restart (its own test binary:
//! the restart would disturb tests running beside it).

// Test code: a failed expectation is a failed test, so panicking helpers are the point.
#![allow(clippy::panic, clippy::expect_used, clippy::unwrap_used)]

mod support;

use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::PostParams;
use kube::{Api, Client};
use serde_json::json;

const TIMEOUT: Duration = Duration::from_secs(120);

fn job(name: &str, script: &str) -> Job {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never",
            "containers": [{"name": "main", "image": "busybox", "command": ["sh", "-c", script]}]
        }}}
    }))
    .expect("job object")
}

async fn wait_complete(client: &Client, namespace: &str, name: &str) {
    let api: Api<Job> = Api::namespaced(client.clone(), namespace);
    support::wait_until(&format!("job {name} to complete"), TIMEOUT, || async {
        let conditions = api.get(name).await.ok()?.status?.conditions?;
        conditions
            .iter()
            .any(|c| c.type_ == "Complete" && c.status == "True")
            .then_some(())
    })
    .await;
}

fn pod_name(pods: &[Pod]) -> String {
    pods.first()
        .and_then(|p| p.metadata.name.clone())
        .expect("job pod")
}

#[tokio::test]
async fn job_running_across_an_api_server_restart_completes_and_new_jobs_still_run() {
    let Some(client) = support::client().await else {
        return;
    };
    let ns = support::namespace(&client, "apirestart").await;
    let jobs: Api<Job> = Api::namespaced(client.clone(), ns.name());
    let long = job("across", "sleep 6; echo survived");
    jobs.create(&PostParams::default(), &long)
        .await
        .expect("create job");
    support::wait_until("the pod to run", TIMEOUT, || async {
        let pod = support::job_pods(&client, ns.name(), "across")
            .await
            .into_iter()
            .next()?;
        (pod.status?.phase.as_deref() == Some("Running")).then_some(())
    })
    .await;

    support::dev_cluster("restart-apiserver");

    wait_complete(&client, ns.name(), "across").await;
    let pods = support::job_pods(&client, ns.name(), "across").await;
    assert_eq!(
        support::pod_log(ns.name(), &pod_name(&pods), "main"),
        "survived\n"
    );
    jobs.create(&PostParams::default(), &job("after", "echo after"))
        .await
        .expect("create job");
    wait_complete(&client, ns.name(), "after").await;
}
