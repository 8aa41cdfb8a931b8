//! Every manifest in `examples/invalid/` is refused by the real API server at admission, with a
//! message naming the field (the CRD's OpenAPI schema and CEL rules at work); the minimal
//! example is accepted and gets its defaults.

// Test code: a failed expectation is meant to panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod operator_common;
mod support;

use std::path::PathBuf;

use kube::api::{ApiResource, DynamicObject, PostParams};
use kube::core::GroupVersionKind;
use kube::{Api, Client};
use serde_json::Value;

struct Case {
    file: String,
    field: String,
    message: String,
    update_of: Option<String>,
    body: Value,
}

fn header(text: &str, key: &str) -> Option<String> {
    text.lines()
        .take_while(|l| l.starts_with('#'))
        .find_map(|l| l.strip_prefix(&format!("# {key}: ")))
        .map(|v| v.trim().to_string())
}

fn cases() -> Vec<Case> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/invalid");
    let mut cases: Vec<Case> = std::fs::read_dir(&dir)
        .expect("examples/invalid exists")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            let file = path.file_name().unwrap().to_string_lossy().to_string();
            Case {
                field: header(&text, "field").unwrap_or_else(|| panic!("{file}: no `# field:`")),
                message: header(&text, "message")
                    .unwrap_or_else(|| panic!("{file}: no `# message:`")),
                update_of: header(&text, "update-of"),
                body: serde_yaml::from_str(&text).unwrap(),
                file,
            }
        })
        .collect();
    cases.sort_by(|a, b| a.file.cmp(&b.file));
    cases
}

fn dynamic_api(client: &Client, ns: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("datamigrate.ai", "v1alpha1", "Migration");
    Api::namespaced_with(client.clone(), ns, &ApiResource::from_gvk(&gvk))
}

async fn create(api: &Api<DynamicObject>, body: &Value) -> Result<DynamicObject, kube::Error> {
    let obj: DynamicObject = serde_json::from_value(body.clone()).unwrap();
    api.create(&PostParams::default(), &obj).await
}

#[test]
fn every_invalid_example_names_its_field_and_message() {
    let cases = cases();
    assert!(
        cases.len() >= 10,
        "expected one invalid example per rule, found {}",
        cases.len()
    );
    for case in &cases {
        assert!(
            case.field.starts_with("spec.") || case.field.starts_with("metadata."),
            "{}: field {}",
            case.file,
            case.field
        );
    }
}

#[tokio::test]
async fn invalid_examples_are_rejected_at_admission_naming_the_field() {
    let Some(client) = support::client().await else {
        return;
    };
    operator_common::install_crd(&client).await;
    let ns = support::namespace(&client, "admission").await;
    let api = dynamic_api(&client, ns.name());
    let mut failures = Vec::new();
    for case in cases() {
        let result = match &case.update_of {
            Some(original) => {
                let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(original);
                let first: Value =
                    serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
                let created = create(&api, &first)
                    .await
                    .expect("the original is accepted");
                let mut update: DynamicObject = serde_json::from_value(case.body.clone()).unwrap();
                update.metadata.resource_version = created.metadata.resource_version;
                let name = update.metadata.name.clone().unwrap();
                let result = api.replace(&name, &PostParams::default(), &update).await;
                // Several cases update the same original: start each from a fresh one
                api.delete(&name, &Default::default())
                    .await
                    .expect("delete the original");
                result
            }
            None => create(&api, &case.body).await,
        };
        match result {
            Ok(_) => failures.push(format!("{}: accepted", case.file)),
            Err(kube::Error::Api(status)) => {
                let text = status.message.clone();
                if status.code != 422
                    || !text.contains(&case.field)
                    || !text.contains(&case.message)
                {
                    failures.push(format!(
                        "{}: expected 422 naming {} with {:?}, got {}: {text}",
                        case.file, case.field, case.message, status.code
                    ));
                }
            }
            Err(e) => failures.push(format!("{}: {e}", case.file)),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn minimal_example_is_accepted_with_its_defaults() {
    let Some(client) = support::client().await else {
        return;
    };
    operator_common::install_crd(&client).await;
    let ns = support::namespace(&client, "admission-ok").await;
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/minimal/migration.yaml");
    let body: Value = serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let created = create(&dynamic_api(&client, ns.name()), &body)
        .await
        .expect("accepted");
    let spec = &created.data["spec"];
    assert_eq!(spec["agent"]["modelProvider"], "none");
    assert_eq!(spec["agent"]["maxRepairAttempts"], 3);
    assert_eq!(spec["validation"]["enabled"], true);
    assert_eq!(spec["target"]["materialization"], "view");
    assert_eq!(spec["suspend"], false);
}
