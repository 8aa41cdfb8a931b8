//! The committed CRD matches the Rust types, and every example Migration deserializes.

// Test code: a failed expectation is meant to panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use datamigrate::crd::{Migration, crd_yaml};
use serde::Deserialize;

const CRD_FILE: &str = "crds/migrations.datamigrate.ai.yaml";

/// Invalid examples that break the OpenAPI schema itself (not a CEL rule), so serde refuses them
/// too: an unknown enum value, a missing required field.
const SCHEMA_INVALID: [&str; 2] = ["unknown-dialect.yaml", "missing-target.yaml"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            yaml_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
}

#[test]
fn committed_crd_matches_the_generated_one() {
    let committed = std::fs::read_to_string(root().join(CRD_FILE)).unwrap();
    let generated = crd_yaml().unwrap();
    assert!(
        committed == generated,
        "{CRD_FILE} is stale: run `cargo run -q -- crd > {CRD_FILE}` and commit it"
    );
}

#[test]
fn every_example_migration_deserializes() {
    let mut files = Vec::new();
    yaml_files(&root().join("examples"), &mut files);
    let mut migrations = 0;
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        if SCHEMA_INVALID.contains(&name.as_str()) {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let value = serde_yaml::Value::deserialize(doc).unwrap();
            if value.get("kind").and_then(|k| k.as_str()) != Some("Migration") {
                continue;
            }
            if let Err(e) = serde_yaml::from_value::<Migration>(value) {
                panic!(
                    "{} does not deserialize into Migration: {e}",
                    file.display()
                );
            }
            migrations += 1;
        }
    }
    assert!(
        migrations >= 2,
        "expected the minimal and invalid examples, found {migrations}"
    );
}

#[test]
fn schema_invalid_examples_are_refused_by_serde_too() {
    for name in SCHEMA_INVALID {
        let text = std::fs::read_to_string(root().join("examples/invalid").join(name)).unwrap();
        assert!(
            serde_yaml::from_str::<Migration>(&text).is_err(),
            "{name} deserialized"
        );
    }
}
