//! Failures, end to end, against the local control plane with the real agent: the controller
//! killed and restarted during the migrate step, the agent's process killed once, and a source
//! script that does not parse, fixed and retried through the reconcile-request annotation.

// Test code: a failed expectation is meant to panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod e2e_support;
mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use datamigrate::crd::{MigrationPhase, StepPhase};
use e2e_support::Controller;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::{Api, Client};

/// Objects in the Northwind script: 13 tables, 16 views, 7 procedures.
const NORTHWIND_OBJECTS: i64 = 36;
/// Northwind tables with rows, each verified by row counts and checksums in a clean run.
const NORTHWIND_VERIFIED: i64 = 11;
const STEP_TIMEOUT: Duration = Duration::from_secs(600);

/// Waits for the migrate pod of `job` to run the agent and returns it with its pid.
async fn running_migrate_pod(client: &Client, ns: &str, job: &str, ctl: &Controller) -> (Pod, u32) {
    let start = Instant::now();
    loop {
        let pods = support::job_pods(client, ns, job).await;
        if let Some((pod, pid)) = pods
            .into_iter()
            .find_map(|p| e2e_support::running_pid(&p).map(|pid| (p, pid)))
        {
            return (pod, pid);
        }
        assert!(
            start.elapsed() < STEP_TIMEOUT,
            "no running pod of {job}:\n{}",
            ctl.log_tail(30)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Waits until the agent reports the migrate step's `Validating` phase: it has generated the
/// project and is building it (a long stretch, so the kill lands while it works).
async fn migrate_progress_reported(client: &Client, ns: &str, name: &str) {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let cm = format!("{name}-progress");
    support::wait_until(
        "the agent to report migrate progress",
        STEP_TIMEOUT,
        || async {
            let data = api.get(&cm).await.ok()?.data?;
            let progress: serde_json::Value =
                serde_json::from_str(data.get("progress.json")?).ok()?;
            let started = progress["step"] == "migrate" && progress["phase"] == "Validating";
            started.then_some(())
        },
    )
    .await;
}

fn assert_owned_objects_exist(ns: &str, name: &str) {
    for (kind, object) in [
        ("persistentvolumeclaim", format!("{name}-workspace")),
        ("configmap", format!("{name}-progress")),
        ("serviceaccount", format!("{name}-agent")),
        ("role", format!("{name}-agent")),
        ("rolebinding", format!("{name}-agent")),
    ] {
        support::kubectl_ok(&["get", kind, &object, "-n", ns]);
    }
}

fn pod_phase(pod: &Pod) -> String {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_default()
}

fn uid(pod: &Pod) -> String {
    pod.metadata.uid.clone().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_controller_during_migrate_and_restarting_it_makes_no_duplicate_job() {
    let Some(env) = e2e_support::env().await else {
        return;
    };
    let ns = support::namespace(&env.client, "e2e-kill-ctl").await;
    let tmp = e2e_support::scratch_dir();
    let (_bare, url) = e2e_support::bare_repo(tmp.path(), "northwind");
    let mut first = Controller::start(ns.name(), tmp.path());
    e2e_support::apply_northwind(ns.name(), &url);

    let (pod, _) = running_migrate_pod(&env.client, ns.name(), "northwind-migrate-1", &first).await;
    first.kill();
    // While no controller runs, the Job and its pod carry on by themselves.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let during =
        e2e_support::job_keys(&e2e_support::jobs(&env.client, ns.name(), "northwind").await);
    let second = Controller::start(ns.name(), tmp.path());
    let mig =
        e2e_support::wait_ready(&env.client, ns.name(), "northwind", &[&first, &second]).await;

    let jobs = e2e_support::job_keys(&e2e_support::jobs(&env.client, ns.name(), "northwind").await);
    let names: Vec<&str> = jobs.iter().map(|(_, _, n)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "northwind-extract-1",
            "northwind-migrate-1",
            "northwind-publish-1"
        ],
        "exactly one Job per step and attempt (Jobs while the controller was down: {during:?})"
    );
    let pods = e2e_support::step_pods(&env.client, ns.name(), "northwind").await;
    assert_eq!(pods.len(), 3, "one pod per Job, none restarted");
    let migrate_pod = pods
        .iter()
        .find(|p| uid(p) == uid(&pod))
        .expect("the migrate pod");
    assert_eq!(
        pod_phase(migrate_pod),
        "Succeeded",
        "the pod that ran during the kill finished"
    );

    let status = mig.status.clone().expect("status");
    assert_eq!(status.phase, Some(MigrationPhase::Succeeded));
    let progress = status.progress.clone().expect("progress");
    assert_eq!(progress.total, NORTHWIND_OBJECTS, "{progress:?}");
    let objects = status.objects.clone().expect("objects summary");
    let accounted = objects.verified + objects.verified_by_build + objects.flagged + objects.failed;
    assert_eq!(
        accounted, NORTHWIND_OBJECTS,
        "every object has a result: {objects:?}"
    );
    assert_eq!(objects.verified, NORTHWIND_VERIFIED, "{objects:?}");
    assert_owned_objects_exist(ns.name(), "northwind");
    assert!(
        status.output.and_then(|o| o.commit).is_some(),
        "no status.output.commit"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_process_killed_during_migrate_is_retried_and_the_step_succeeds() {
    let Some(env) = e2e_support::env().await else {
        return;
    };
    let ns = support::namespace(&env.client, "e2e-kill-pod").await;
    let tmp = e2e_support::scratch_dir();
    let ctl = Controller::start(ns.name(), tmp.path());
    let mut doc: serde_yaml::Value =
        serde_yaml::from_str(&e2e_support::example("northwind/migration.yaml")).expect("YAML");
    // No output: the publish step is not what this test is about.
    doc["spec"].as_mapping_mut().expect("spec").remove("output");
    e2e_support::apply_yaml(ns.name(), &e2e_support::example("northwind/configmap.yaml"));
    e2e_support::apply_yaml(ns.name(), &serde_yaml::to_string(&doc).expect("YAML"));

    let (pod, pid) = running_migrate_pod(&env.client, ns.name(), "northwind-migrate-1", &ctl).await;
    migrate_progress_reported(&env.client, ns.name(), "northwind").await;
    let cmdline = e2e_support::cmdline(pid);
    assert!(
        cmdline.contains("datamigrate_agent") && cmdline.contains("migrate"),
        "pid {pid} is not the agent: {cmdline:?}"
    );
    let killed = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(killed.success(), "kill -KILL {pid} failed");

    let mig = e2e_support::wait_ready(&env.client, ns.name(), "northwind", &[&ctl]).await;
    let pods = e2e_support::step_pods(&env.client, ns.name(), "northwind").await;
    let migrate: Vec<&Pod> = pods
        .iter()
        .filter(|p| {
            p.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("datamigrate.ai/step"))
                .is_some_and(|s| s == "migrate")
        })
        .collect();
    assert_eq!(migrate.len(), 2, "the killed pod and one retry");
    let killed_pod = migrate
        .iter()
        .find(|p| uid(p) == uid(&pod))
        .expect("the killed pod");
    assert_eq!(pod_phase(killed_pod), "Failed");
    assert_eq!(
        e2e_support::exit_code(killed_pod),
        Some(137),
        "128 + SIGKILL"
    );
    let retry = migrate
        .iter()
        .find(|p| uid(p) != uid(&pod))
        .expect("the retry");
    assert_eq!(pod_phase(retry), "Succeeded");

    let status = mig.status.expect("status");
    let step = status
        .steps
        .iter()
        .find(|s| s.name == "migrate")
        .expect("migrate step");
    assert_eq!(step.phase, StepPhase::Succeeded);
    let objects = status.objects.expect("objects summary");
    assert_eq!(
        objects.verified + objects.verified_by_build + objects.flagged + objects.failed,
        NORTHWIND_OBJECTS
    );
    assert_eq!(objects.verified, NORTHWIND_VERIFIED, "{objects:?}");
}

const BROKEN_SCRIPT: &str = r"apiVersion: v1
kind: ConfigMap
metadata:
  name: minimal-script
data:
  schema.sql: |
    CREATE TABLE dbo.Customers (
        CustomerID int IDENTITY(1,1) NOT NULL PRIMARY KEY,
        Name nvarchar(40) NOT NULL,,
        City nvarchar(15) NULL
    );
    GO
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_script_that_does_not_parse_stalls_then_runs_to_ready_after_a_fix_and_a_request() {
    let Some(env) = e2e_support::env().await else {
        return;
    };
    let ns = support::namespace(&env.client, "e2e-broken").await;
    let tmp = e2e_support::scratch_dir();
    let ctl = Controller::start(ns.name(), tmp.path());
    e2e_support::apply_yaml(ns.name(), BROKEN_SCRIPT);
    e2e_support::apply_yaml(ns.name(), &e2e_support::example("minimal/migration.yaml"));

    let mig = e2e_support::wait_stalled(&env.client, ns.name(), "minimal", &[&ctl]).await;
    let stalled = e2e_support::condition(&mig, "Stalled")
        .expect("Stalled")
        .clone();
    for needle in ["extract", "CREATE TABLE", "could not be read", "line 3"] {
        assert!(
            stalled.message.contains(needle),
            "{needle:?} not in {:?}",
            stalled.message
        );
    }
    let ready = e2e_support::condition(&mig, "Ready").expect("Ready");
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "StepFailed")
    );
    assert_eq!(
        mig.status.as_ref().and_then(|s| s.phase),
        Some(MigrationPhase::Failed)
    );
    let warning = support::wait_until("a Warning Event", Duration::from_secs(30), || async {
        e2e_support::events(ns.name(), "minimal")
            .into_iter()
            .find(|(t, r, _)| t == "Warning" && r == "StepFailed")
    })
    .await;
    assert!(warning.2.contains("could not be read"), "{warning:?}");
    let pods = e2e_support::step_pods(&env.client, ns.name(), "minimal").await;
    assert_eq!(
        pods.len(),
        1,
        "exit 65 fails the Job at once, without pod retries"
    );
    assert_eq!(e2e_support::exit_code(&pods[0]), Some(65));

    e2e_support::apply_yaml(ns.name(), &e2e_support::example("minimal/configmap.yaml"));
    let requested = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let annotation = format!("datamigrate.ai/reconcile-requested-at={requested}");
    support::kubectl_ok(&["annotate", "mig/minimal", "-n", ns.name(), &annotation]);
    // Until the controller acts on the request, the status still says Stalled.
    let api = e2e_support::migrations(&env.client, ns.name());
    support::wait_until(
        "the reconcile request to be handled",
        STEP_TIMEOUT,
        || async {
            let mig = api.get("minimal").await.ok()?;
            let handled = mig.status?.last_handled_reconcile_at;
            (handled.as_deref() == Some(requested.as_str())).then_some(())
        },
    )
    .await;
    let mig = e2e_support::wait_ready(&env.client, ns.name(), "minimal", &[&ctl]).await;

    let status = mig.status.expect("status");
    assert_eq!(status.phase, Some(MigrationPhase::Succeeded));
    assert_eq!(
        status.last_handled_reconcile_at.as_deref(),
        Some(requested.as_str())
    );
    let jobs = e2e_support::job_keys(&e2e_support::jobs(&env.client, ns.name(), "minimal").await);
    let names: Vec<&str> = jobs.iter().map(|(_, _, n)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "minimal-extract-1",
            "minimal-extract-2",
            "minimal-migrate-1"
        ]
    );
    let objects = status.objects.expect("objects summary");
    assert_eq!((objects.verified, objects.failed), (2, 0), "{objects:?}");
}
