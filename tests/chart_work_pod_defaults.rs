//! The chart's rendered `--work-pod-defaults` file is read by the operator's own parser
//! (`WorkPodDefaults`, unknown keys refused) and shapes the step Jobs as the values say.
//! Runs `helm template` from `DATAMIGRATE_BIN_DIR`; without it the test fails under CI=true and
//! is skipped otherwise.

// Test code: a failed expectation is meant to panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

use datamigrate::crd::Migration;
use datamigrate::job::{WorkPodDefaults, build_job};
use datamigrate::steps::Step;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn helm() -> Option<PathBuf> {
    match std::env::var_os("DATAMIGRATE_BIN_DIR") {
        Some(dir) => Some(Path::new(&dir).join("helm")),
        None if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("DATAMIGRATE_BIN_DIR is not set (scripts/test sets it)")
        }
        None => None,
    }
}

/// The `work-pod-defaults.yaml` key of the chart's ConfigMap rendered with `values` (JSON).
fn rendered_defaults(helm: &Path, values: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("values.json");
    std::fs::write(&file, values).unwrap();
    let out = Command::new(helm)
        .args(["template", "dm", "charts/datamigrate-operator", "--values"])
        .arg(&file)
        .args(["--show-only", "templates/configmap-work-pod-defaults.yaml"])
        .current_dir(root())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cm: serde_yaml::Value = serde_yaml::from_slice(&out.stdout).unwrap();
    cm["data"]["work-pod-defaults.yaml"]
        .as_str()
        .unwrap()
        .to_string()
}

fn parse(text: &str) -> WorkPodDefaults {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("work-pod-defaults.yaml");
    std::fs::write(&file, text).unwrap();
    WorkPodDefaults::from_file(&file).unwrap_or_else(|e| panic!("{e:?}\n{text}"))
}

fn minimal_migration() -> Migration {
    let text = std::fs::read_to_string(root().join("examples/minimal/migration.yaml")).unwrap();
    let mut mig: Migration = serde_yaml::from_str(&text).unwrap();
    mig.metadata.namespace = Some("data".into());
    mig.metadata.uid = Some("00000000-0000-0000-0000-000000000001".into());
    mig
}

#[test]
fn chart_defaults_parse_and_shape_the_step_jobs() {
    let Some(helm) = helm() else {
        eprintln!("skipped: DATAMIGRATE_BIN_DIR is not set");
        return;
    };
    let values = r#"{"agent": {"image": {"tag": "7.7.7"}, "backoffLimit": 5,
        "tolerations": [{"key": "batch", "operator": "Exists", "effect": "NoSchedule"}],
        "podLabels": {"cost-center": "data"},
        "extraEnv": [{"name": "HTTPS_PROXY", "value": "http://proxy:3128"}]}}"#;
    let defaults = parse(&rendered_defaults(&helm, values));
    let job = build_job(&minimal_migration(), Step::Extract, 1, &defaults).unwrap();
    let spec = job.spec.unwrap();
    assert_eq!(spec.backoff_limit, Some(5));
    assert_eq!(spec.ttl_seconds_after_finished, Some(86400));
    let meta = spec.template.metadata.unwrap();
    assert_eq!(meta.labels.as_ref().unwrap()["cost-center"], "data");
    assert!(
        meta.labels
            .as_ref()
            .unwrap()
            .contains_key("datamigrate.ai/step")
    );
    let pod = spec.template.spec.unwrap();
    assert_eq!(pod.tolerations.unwrap()[0].key.as_deref(), Some("batch"));
    assert_eq!(pod.security_context.unwrap().run_as_non_root, Some(true));
    let step = &pod.containers[0];
    assert_eq!(step.name, "step");
    assert_eq!(
        step.image.as_deref(),
        Some("ghcr.io/datamigrate-ai/datamigrate-agent:7.7.7")
    );
    let sc = step.security_context.as_ref().unwrap();
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    let env = step.env.as_ref().unwrap();
    assert!(env.iter().any(|e| e.name == "HTTPS_PROXY"));
    assert!(env.iter().any(|e| e.name == "DATAMIGRATE_STEP"));
    let limits = step.resources.as_ref().unwrap().limits.as_ref().unwrap();
    assert_eq!(limits["memory"].0, "4Gi");
}

#[test]
fn default_chart_values_parse() {
    let Some(helm) = helm() else {
        eprintln!("skipped: DATAMIGRATE_BIN_DIR is not set");
        return;
    };
    let defaults = parse(&rendered_defaults(&helm, "{}"));
    assert_eq!(
        defaults.image.as_deref(),
        Some("ghcr.io/datamigrate-ai/datamigrate-agent:0.1.0")
    );
    assert_eq!(defaults.backoff_limit, Some(2));
}
