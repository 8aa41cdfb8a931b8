//! A restart of the pod runner fails the `restartPolicy: Never` pods it was running (their
//! processes died with it), and the Job controller replaces them (its own test binary: the
//! restart would disturb tests running beside it).

// Test code: a failed expectation is a failed test, so panicking helpers are the point.
#![allow(clippy::panic, clippy::expect_used, clippy::unwrap_used)]

mod support;

use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use kube::Api;
use kube::api::PostParams;
use serde_json::json;

const TIMEOUT: Duration = Duration::from_secs(120);

#[tokio::test]
async fn runner_restart_fails_the_running_pod_and_the_job_retries_it() {
    let Some(client) = support::client().await else {
        return;
    };
    let ns = support::namespace(&client, "runnerrestart").await;
    let marker = support::runner_dir().join(format!("{}-first-run", ns.name()));
    let script = format!(
        "if [ -f {m} ]; then echo retried; else touch {m}; sleep 300; fi",
        m = marker.display()
    );
    let job: Job = serde_json::from_value(json!({
        "metadata": {"name": "interrupted"},
        "spec": {"backoffLimit": 1, "template": {"spec": {"restartPolicy": "Never",
            "containers": [{"name": "main", "image": "busybox", "command": ["sh", "-c", script]}]
        }}}
    }))
    .expect("job object");
    let jobs: Api<Job> = Api::namespaced(client.clone(), ns.name());
    jobs.create(&PostParams::default(), &job)
        .await
        .expect("create job");
    support::wait_until("the first pod to run", TIMEOUT, || async {
        let pod = support::job_pods(&client, ns.name(), "interrupted")
            .await
            .into_iter()
            .next()?;
        (pod.status?.phase.as_deref() == Some("Running") && marker.exists()).then_some(())
    })
    .await;

    support::dev_cluster("restart-runner");

    support::wait_until("the job to complete", TIMEOUT, || async {
        let conditions = jobs.get("interrupted").await.ok()?.status?.conditions?;
        conditions
            .iter()
            .any(|c| c.type_ == "Complete" && c.status == "True")
            .then_some(())
    })
    .await;
    let _ = std::fs::remove_file(&marker);
    let pods = support::job_pods(&client, ns.name(), "interrupted").await;
    let states: Vec<(Option<String>, Option<String>)> = pods
        .iter()
        .map(|p| {
            let s = p.status.as_ref();
            (
                s.and_then(|s| s.phase.clone()),
                s.and_then(|s| s.reason.clone()),
            )
        })
        .collect();
    // The interrupted pod ends Failed: marked `PodRunnerRestarted` by the new runner, or with
    // the signal's exit status when the old runner recorded its own shutdown first.
    assert_eq!(pods.len(), 2, "{states:?}");
    let phase = |want: &str| {
        states
            .iter()
            .filter(|(p, _)| p.as_deref() == Some(want))
            .count()
    };
    assert_eq!((phase("Failed"), phase("Succeeded")), (1, 1), "{states:?}");
}
