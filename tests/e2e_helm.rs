//! The chart installed with `helm install` into the local control plane: CRD, RBAC,
//! ServiceAccount and Deployment. The pod runner runs the Deployment's pod (the operator image
//! mapped to this build's `datamigrate` binary) with the chart's ServiceAccount token, so the
//! operator works with exactly the chart's RBAC, and it drives a Migration to Ready.

// Test code: a failed expectation is meant to panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod e2e_support;
mod support;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use datamigrate::crd::MigrationPhase;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::ListParams;

const RELEASE: &str = "e2e";
const FULLNAME: &str = "e2e-datamigrate-operator";

/// Puts the pod runner's image table back as it was when dropped.
struct ImageTableGuard {
    path: PathBuf,
    before: Option<String>,
}

impl ImageTableGuard {
    fn new() -> Self {
        let path = support::runner_dir().join("images");
        let before = std::fs::read_to_string(&path).ok();
        Self { path, before }
    }
}

impl Drop for ImageTableGuard {
    fn drop(&mut self) {
        let _ = match &self.before {
            Some(text) => std::fs::write(&self.path, text),
            None => std::fs::remove_file(&self.path),
        };
    }
}

/// `helm uninstall` and the chart's ownership marks taken off the kept CRD, when dropped.
struct Release {
    namespace: String,
}

impl Drop for Release {
    fn drop(&mut self) {
        let _ = helm(&[
            "uninstall",
            RELEASE,
            "-n",
            &self.namespace,
            "--wait",
            "--timeout=60s",
        ]);
        let crd = "crd/migrations.datamigrate.ai";
        let _ = support::kubectl(&["label", crd, "app.kubernetes.io/managed-by-"]);
        let _ = support::kubectl(&[
            "annotate",
            crd,
            "meta.helm.sh/release-name-",
            "meta.helm.sh/release-namespace-",
        ]);
    }
}

fn helm(args: &[&str]) -> std::process::Output {
    let helm = support::bin_dir()
        .expect("DATAMIGRATE_BIN_DIR")
        .join("helm");
    Command::new(helm).args(args).output().expect("run helm")
}

fn helm_ok(args: &[&str]) -> String {
    let output = helm(args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "helm {args:?} failed: {stderr}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn can_i(verb: &str, resource: &str, ns: &str, service_account: &str) -> bool {
    let out = support::kubectl(&[
        "auth",
        "can-i",
        verb,
        resource,
        "-n",
        ns,
        "--as",
        service_account,
    ]);
    String::from_utf8_lossy(&out.stdout).trim() == "yes"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_helm_installed_operator_runs_under_the_pod_runner_and_completes_a_migration() {
    let Some(env) = e2e_support::env().await else {
        return;
    };
    let op = support::namespace(&env.client, "e2e-helm-op").await;
    let app = support::namespace(&env.client, "e2e-helm-app").await;
    let tmp = e2e_support::scratch_dir();
    let _images = ImageTableGuard::new();
    // A copy, so a concurrent `cargo build` cannot replace the binary under the running pod.
    let bin = tmp.path().join("bin");
    std::fs::create_dir_all(&bin).expect("bin folder");
    std::fs::copy(env!("CARGO_BIN_EXE_datamigrate"), bin.join("datamigrate")).expect("copy");
    e2e_support::map_image(e2e_support::OPERATOR_IMAGE, &bin);
    e2e_support::map_image(e2e_support::AGENT_IMAGE, &env.venv.join("bin"));

    let chart = e2e_support::repo().join("charts/datamigrate-operator");
    let port = e2e_support::free_port().to_string();
    let _release = Release {
        namespace: op.name().into(),
    };
    helm_ok(&[
        "install",
        RELEASE,
        chart.to_str().expect("utf-8"),
        "-n",
        op.name(),
        "--take-ownership",
        "--force-conflicts",
        "--set",
        &format!("watchNamespaces[0]={}", app.name()),
        "--set",
        "metrics.bindAddress=127.0.0.1",
        "--set",
        &format!("metrics.port={port}"),
    ]);
    let deployment = format!("deployment/{FULLNAME}");
    support::kubectl_ok(&[
        "-n",
        op.name(),
        "rollout",
        "status",
        &deployment,
        "--timeout=120s",
    ]);

    let pod = operator_pod(&env.client, op.name()).await;
    let pod_name = pod.metadata.name.clone().expect("pod name");
    let spec = pod.spec.clone().expect("pod spec");
    assert_eq!(spec.service_account_name.as_deref(), Some(FULLNAME));
    let sa = format!("system:serviceaccount:{}:{FULLNAME}", op.name());
    assert!(
        can_i("create", "jobs.batch", app.name(), &sa),
        "the chart's Role lets it create Jobs"
    );
    assert!(
        !can_i("create", "jobs.batch", "default", &sa),
        "RBAC is scoped to the watched namespace"
    );
    assert!(
        !can_i("list", "secrets", app.name(), &sa),
        "no listing of Secrets"
    );

    e2e_support::apply_yaml(app.name(), &e2e_support::example("minimal/configmap.yaml"));
    e2e_support::apply_yaml(app.name(), &e2e_support::example("minimal/migration.yaml"));
    let mig = wait_ready_or_show_logs(&env.client, op.name(), app.name(), &pod_name).await;

    let status = mig.status.expect("status");
    assert_eq!(status.phase, Some(MigrationPhase::Succeeded));
    assert_eq!(status.observed_generation, mig.metadata.generation);
    let objects = status.objects.expect("objects summary");
    assert_eq!((objects.verified, objects.failed), (2, 0), "{objects:?}");
    assert_events_come_from(app.name(), &pod_name);
    // Under the chart's RBAC every owned object was written at the first try (a RoleBinding
    // sent before its Role is refused when the operator may not `bind`)
    let log = support::pod_log(op.name(), &pod_name, "controller");
    let failed: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("Reconcile failed"))
        .collect();
    assert!(
        failed.is_empty(),
        "reconciles failed under the chart's RBAC: {failed:#?}"
    );
    let jobs = e2e_support::jobs(&env.client, app.name(), "minimal").await;
    let images: Vec<String> = jobs
        .iter()
        .flat_map(|j| {
            j.spec
                .iter()
                .flat_map(|s| s.template.spec.iter())
                .flat_map(|p| &p.containers)
        })
        .filter_map(|c| c.image.clone())
        .collect();
    assert_eq!(
        images.len(),
        2,
        "extract and migrate (no output, no publish)"
    );
    let chart_image = format!("{}:0.1.0", e2e_support::AGENT_IMAGE);
    assert!(
        images.iter().all(|i| *i == chart_image),
        "not the chart's agent image: {images:?}"
    );

    drop(_release);
    let kept = support::kubectl(&["get", "crd", "migrations.datamigrate.ai"]);
    assert!(
        kept.status.success(),
        "helm uninstall removed the CRD (crds.keep is the default)"
    );
}

async fn operator_pod(client: &kube::Client, ns: &str) -> Pod {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let params = ListParams::default().labels(&format!("app.kubernetes.io/instance={RELEASE}"));
    support::wait_until(
        "the operator pod to run",
        Duration::from_secs(120),
        || async {
            let pods = api.list(&params).await.ok()?.items;
            pods.into_iter()
                .find(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
        },
    )
    .await
}

async fn wait_ready_or_show_logs(
    client: &kube::Client,
    op: &str,
    app: &str,
    pod: &str,
) -> datamigrate::crd::Migration {
    let waited = tokio::spawn({
        let client = client.clone();
        let app = app.to_string();
        async move { e2e_support::wait_ready(&client, &app, "minimal", &[]).await }
    })
    .await;
    match waited {
        Ok(mig) => mig,
        Err(e) => {
            let log = std::panic::catch_unwind(|| support::pod_log(op, pod, "controller"))
                .unwrap_or_default();
            panic!("{e}\n--- operator pod log:\n{log}");
        }
    }
}

/// Every Event about the Migration was published by the chart-installed operator: its
/// reporting instance is the Deployment's pod (`POD_NAME` from the downward API).
fn assert_events_come_from(ns: &str, pod: &str) {
    let selector = "involvedObject.name=minimal,involvedObject.kind=Migration";
    let out = support::kubectl_ok(&[
        "get",
        "events",
        "-n",
        ns,
        "--field-selector",
        selector,
        "-o",
        "json",
    ]);
    let list: serde_json::Value = serde_json::from_str(&out).expect("events JSON");
    let items = list["items"].as_array().cloned().unwrap_or_default();
    assert!(
        items.len() >= 2,
        "CreateJob Events for extract and migrate: {items:?}"
    );
    for event in &items {
        assert_eq!(
            event["reportingComponent"], "datamigrate-operator",
            "{event}"
        );
        assert_eq!(event["reportingInstance"], pod, "{event}");
    }
}
