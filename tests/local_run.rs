//! `datamigrate run` end to end on this machine: the real agent (from the Python environment
//! that scripts/setup-agent builds, passed in as DATAMIGRATE_VENV), real dbt, real DuckDB.

// Test code: a failed expectation is meant to panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn agent_python() -> Option<PathBuf> {
    match std::env::var_os("DATAMIGRATE_VENV") {
        Some(venv) => Some(PathBuf::from(venv).join("bin/python")),
        None if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("DATAMIGRATE_VENV is not set: run the tests through scripts/test")
        }
        None => {
            eprintln!("skipped: DATAMIGRATE_VENV is not set (scripts/test sets it)");
            None
        }
    }
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

struct Run {
    code: Option<i32>,
    status: serde_json::Value,
    stdout: String,
    stderr: String,
}

fn run(python: &Path, manifest: &Path, out: &Path) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_datamigrate"))
        .args(["run", "-f"])
        .arg(manifest)
        .arg("--out")
        .arg(out)
        .env("DATAMIGRATE_AGENT_PYTHON", python)
        .output()
        .expect("datamigrate runs");
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let yaml = stdout.split("\nOBJECT ").next().unwrap_or_default();
    let status = serde_yaml::from_str::<serde_json::Value>(yaml)
        .ok()
        .and_then(|v| v.get("status").cloned())
        .unwrap_or_default();
    Run {
        code: output.status.code(),
        status,
        stdout,
        stderr: String::from_utf8_lossy(&output.stderr).to_string(),
    }
}

fn condition<'a>(status: &'a serde_json::Value, type_: &str) -> &'a serde_json::Value {
    status["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == type_))
        .unwrap_or(&serde_json::Value::Null)
}

fn results(out: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(out.join("results.json")).expect("results.json");
    serde_json::from_str(&text).expect("results.json is JSON")
}

/// Rows the script inserts into each table, counted independently of the agent.
fn insert_counts(script: &str) -> std::collections::BTreeMap<String, i64> {
    let mut counts = std::collections::BTreeMap::new();
    for line in script.lines() {
        let rest = line.trim_start();
        // The script spells it INSERT, INSERT INTO and Insert Into.
        if !rest.to_ascii_lowercase().starts_with("insert ") {
            continue;
        }
        let rest = rest["insert ".len()..].trim_start();
        let rest = match rest.get(..5) {
            Some(into) if into.eq_ignore_ascii_case("into ") => rest[5..].trim_start(),
            _ => rest,
        };
        let table = if let Some(quoted) = rest.strip_prefix('"') {
            quoted.split('"').next().unwrap_or_default()
        } else {
            rest.split(['(', ' ']).next().unwrap_or_default()
        };
        let table = table
            .trim_start_matches("dbo.")
            .trim_matches(['[', ']', '"']);
        *counts.entry(table.to_string()).or_insert(0) += 1;
    }
    counts
}

#[test]
fn minimal_example_runs_to_succeeded_with_a_project_and_a_report() {
    let Some(python) = agent_python() else { return };
    let out = tempfile::tempdir().unwrap();
    let r = run(
        &python,
        &repo().join("examples/minimal/migration.yaml"),
        out.path(),
    );

    assert_eq!(
        r.code,
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        r.stdout,
        r.stderr
    );
    assert_eq!(r.status["phase"], "Succeeded");
    assert_eq!(condition(&r.status, "Ready")["status"], "True");
    assert_eq!(condition(&r.status, "Ready")["observedGeneration"], 1);
    let steps: Vec<_> = r.status["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["name"])
        .collect();
    assert_eq!(steps, ["extract", "migrate"]);
    assert!(out.path().join("project/dbt_project.yml").exists());
    assert!(out.path().join("report.md").exists());
    let objects = results(out.path())["objects"].as_array().unwrap().clone();
    for table in ["dbo.Customers", "dbo.Orders"] {
        let o = objects.iter().find(|o| o["object"] == table).expect(table);
        assert_eq!(o["status"], "verified", "{o}");
    }
}

#[test]
fn northwind_gets_a_model_per_table_and_view_and_row_counts_match_the_script() {
    let Some(python) = agent_python() else { return };
    let out = tempfile::tempdir().unwrap();
    let r = run(
        &python,
        &repo().join("examples/northwind/migration.yaml"),
        out.path(),
    );

    assert_eq!(r.code, Some(0), "stderr:\n{}", r.stderr);
    assert_eq!(r.status["phase"], "Succeeded");
    let results = results(out.path());
    let objects = results["objects"].as_array().unwrap();
    let of_kind = |k: &str| {
        objects
            .iter()
            .filter(|o| o["kind"] == k)
            .collect::<Vec<_>>()
    };
    let (tables, views) = (of_kind("table"), of_kind("view"));
    assert_eq!((tables.len(), views.len()), (13, 16));
    for o in tables.iter().chain(&views) {
        let path = o["path"]
            .as_str()
            .unwrap_or_else(|| panic!("no model for {o}"));
        assert!(out.path().join("project").join(path).exists(), "{path}");
    }
    let script = std::fs::read_to_string(repo().join("examples/data/instnwnd.sql")).unwrap();
    let expected = insert_counts(&script);
    assert_eq!(
        expected.get("Order Details"),
        Some(&2155),
        "the independent count works"
    );
    for t in &tables {
        let name = t["object"].as_str().unwrap().trim_start_matches("dbo.");
        let want = expected.get(name).copied().unwrap_or(0);
        assert_eq!(t["checks"]["modelRows"], want, "{name}: {t}");
        assert!(t["status"] == "verified" || want == 0, "{name}: {t}");
    }
}

#[test]
fn a_missing_secret_is_named_and_nothing_runs() {
    let Some(python) = agent_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("migration.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: datamigrate.ai/v1alpha1\nkind: Migration\nmetadata: {name: m}\nspec:\n  \
         source:\n    sqlServer:\n      host: 127.0.0.1\n      database: db\n      \
         credentialsSecretRef: {name: sql-login, usernameKey: user, passwordKey: pass}\n  \
         target: {dialect: duckdb, projectName: p}\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    let r = run(&python, &manifest, &out);

    assert_eq!(r.code, Some(2), "stderr:\n{}", r.stderr);
    assert!(r.stderr.contains("Secret sql-login"), "{}", r.stderr);
    assert!(!out.join("metadata.json").exists());
}

#[test]
fn an_unreadable_script_fails_the_run_with_the_reason_in_status() {
    let Some(python) = agent_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: s}\ndata:\n  a.sql: |\n    \
         CREATE TABLE dbo.T (Id int NOT NULL PRIMARY KEY\n    GO\n",
    )
    .unwrap();
    let manifest = dir.path().join("migration.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: datamigrate.ai/v1alpha1\nkind: Migration\nmetadata: {name: m}\nspec:\n  \
         source: {script: {configMapKeyRef: {name: s, key: a.sql}}}\n  \
         target: {dialect: duckdb, projectName: p}\n",
    )
    .unwrap();
    let r = run(&python, &manifest, &dir.path().join("out"));

    assert_eq!(
        r.code,
        Some(1),
        "stdout:\n{}\nstderr:\n{}",
        r.stdout,
        r.stderr
    );
    assert_eq!(r.status["phase"], "Failed");
    let stalled = condition(&r.status, "Stalled");
    assert_eq!(stalled["status"], "True");
    assert_eq!(stalled["reason"], "StepFailed", "{stalled}");
    assert!(
        stalled["message"].as_str().unwrap().contains("extract"),
        "{stalled}"
    );
}

#[test]
fn a_manifest_outside_the_crd_schema_is_refused_naming_the_field_before_any_step() {
    // No agent needed: the refusal comes before the first step would start one.
    let python = Path::new("/nonexistent/python");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let port = repo().join("examples/invalid/port-out-of-range.yaml");
    let r = run(python, &port, &out);
    assert_eq!(r.code, Some(2), "stderr:\n{}", r.stderr);
    assert!(
        r.stderr.contains(
            "spec.source.sqlServer.port: Invalid value: 70000: spec.source.sqlServer.port in \
             body should be less than or equal to 65535"
        ),
        "{}",
        r.stderr
    );

    // kubectl apply refuses an unknown field (strict field validation); so does a local run
    let manifest = dir.path().join("migration.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: datamigrate.ai/v1alpha1\nkind: Migration\nmetadata: {name: m}\nspec:\n  \
         source: {script: {configMapKeyRef: {name: s, key: a.sql}}}\n  \
         target: {dialect: duckdb, projectName: p}\n  suspended: true\n",
    )
    .unwrap();
    let r = run(python, &manifest, &out);
    assert_eq!(r.code, Some(2), "stderr:\n{}", r.stderr);
    assert!(
        r.stderr.contains("spec.suspended: unknown field"),
        "{}",
        r.stderr
    );
    assert!(!out.exists(), "a refused Migration left {}", out.display());
}

/// The processes whose command line names `needle` (the run's own output folder).
fn processes_naming(needle: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|raw| String::from_utf8_lossy(&raw).replace('\0', " "))
        .filter(|cmd| cmd.contains(needle))
        .collect()
}

#[test]
fn sigterm_stops_the_run_and_its_step_process() {
    let Some(python) = agent_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let child = Command::new(env!("CARGO_BIN_EXE_datamigrate"))
        .args(["run", "-f"])
        .arg(repo().join("examples/northwind/migration.yaml"))
        .arg("--out")
        .arg(&out)
        .env("DATAMIGRATE_AGENT_PYTHON", &python)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("datamigrate runs");
    let needle = format!("--workspace {}", out.display());
    // Wait (bounded) until a step process runs, then stop the run as a service manager would
    let started = (0..600).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        !processes_naming(&needle).is_empty()
    });
    assert!(started, "no step process started within 60 s");
    let pid = child.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let output = child.wait_with_output().expect("the run ends");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    // Look for 5 s and keep the last look
    let left = (0..50).fold(Vec::new(), |_, _| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        processes_naming(&needle)
    });
    assert!(left.is_empty(), "step processes left running: {left:?}");
}
