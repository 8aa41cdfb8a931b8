//! Northwind in the cluster, end to end: the operator (this build's `datamigrate controller`)
//! runs the three steps as Jobs on the local control plane, the pod runner runs the real agent,
//! the project is pushed to a bare git repository over `file://`, and `dbt build` passes on a
//! fresh clone of the branch. The watch output, `kubectl describe` and the apply-to-Ready time
//! are left in `target/e2e-figures/` (docs/e2e-figures.md quotes them).

// Test code: a failed expectation is meant to panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod e2e_support;
mod support;

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use datamigrate::crd::{MigrationPhase, StepPhase};
use e2e_support::{Controller, Watch};

const NAME: &str = "northwind";
const BRANCH: &str = "datamigrate/northwind";
const ORDER: [&str; 6] = [
    "Pending",
    "Extracting",
    "Generating",
    "Validating",
    "Publishing",
    "Succeeded",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn northwind_runs_to_ready_in_the_cluster_and_its_pushed_branch_builds_with_dbt() {
    let Some(env) = e2e_support::env().await else {
        return;
    };
    let ns = support::namespace(&env.client, "e2e-nw").await;
    let tmp = e2e_support::scratch_dir();
    let (bare, url) = e2e_support::bare_repo(tmp.path(), NAME);
    let ctl = Controller::start(ns.name(), tmp.path());
    let watch = Watch::start(ns.name());

    let began = Instant::now();
    e2e_support::apply_northwind(ns.name(), &url);
    let mig = e2e_support::wait_ready(&env.client, ns.name(), NAME, &[&ctl]).await;
    let took = began.elapsed();
    let waited = support::kubectl_ok(&[
        "wait",
        "--for=condition=Ready",
        "mig/northwind",
        "-n",
        ns.name(),
        "--timeout=30s",
    ]);
    assert!(waited.contains("condition met"), "{waited}");
    std::thread::sleep(Duration::from_millis(500));
    let lines = watch.stop();

    let status = mig.status.clone().expect("status");
    assert_eq!(status.phase, Some(MigrationPhase::Succeeded));
    assert_eq!(status.observed_generation, mig.metadata.generation);
    let steps: Vec<_> = status
        .steps
        .iter()
        .map(|s| (s.name.as_str(), s.phase))
        .collect();
    let done = StepPhase::Succeeded;
    assert_eq!(
        steps,
        [("extract", done), ("migrate", done), ("publish", done)]
    );
    assert_watch_shows_phases_and_moving_progress(&lines, &status);

    let bare_dir = bare.to_str().expect("utf-8 path");
    let head = e2e_support::git(&[
        "--git-dir",
        bare_dir,
        "rev-parse",
        &format!("refs/heads/{BRANCH}"),
    ]);
    let describe = support::kubectl_ok(&["describe", "mig", NAME, "-n", ns.name()]);
    write_figures(took, &lines, &describe, &status);
    assert_describe_shows_steps_conditions_and_events(&describe);

    let clone = tmp.path().join("clone");
    e2e_support::git(&[
        "clone",
        "-q",
        "--branch",
        BRANCH,
        &url,
        clone.to_str().expect("utf-8"),
    ]);
    assert_eq!(
        e2e_support::git(&["-C", clone.to_str().expect("utf-8"), "rev-parse", "HEAD"]),
        head
    );
    let warehouse = raw_tables_only_warehouse(&env.venv, ns.name(), tmp.path());
    dbt_build_passes(&env.venv, &clone, &warehouse);

    // Checked last and together, so one run reports every one that fails.
    let mut problems = event_problems(ns.name());
    let output = status.output.clone().unwrap_or_default();
    if !output.location.contains(BRANCH) {
        problems.push(format!(
            "status.output.location {:?} lacks the branch",
            output.location
        ));
    }
    if output.commit.as_deref() != Some(head.as_str()) {
        problems.push(format!(
            "status.output.commit is {:?}, the branch head is {head}",
            output.commit
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The watch rows show the phases in run order and an `N/M` that moves up to the final value.
fn assert_watch_shows_phases_and_moving_progress(
    lines: &[(Duration, String)],
    status: &datamigrate::crd::MigrationStatus,
) {
    let rows = e2e_support::rows(lines);
    let seq = e2e_support::phase_sequence(&rows);
    let index = |p: &String| ORDER.iter().position(|o| o == p);
    let positions: Vec<_> = seq.iter().map(|p| index(p).unwrap_or(usize::MAX)).collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "phases out of order: {seq:?}"
    );
    for phase in ["Extracting", "Publishing", "Succeeded"] {
        assert!(
            seq.iter().any(|p| p == phase),
            "{phase} never shown: {seq:?}\n{lines:?}"
        );
    }
    assert!(
        seq.iter().any(|p| p == "Generating" || p == "Validating"),
        "the migrate step's phases never shown: {seq:?}"
    );
    assert_eq!(seq.last().map(String::as_str), Some("Succeeded"));

    let mut progress: Vec<(i64, i64)> = rows.iter().filter_map(|r| r.progress).collect();
    progress.dedup();
    assert!(
        progress.len() >= 2,
        "progress never moved: {progress:?}\n{lines:?}"
    );
    assert!(
        progress.windows(2).all(|w| w[0].0 <= w[1].0),
        "progress went back: {progress:?}"
    );
    let last = progress.last().copied().unwrap_or_default();
    let summary = status
        .progress
        .as_ref()
        .map(|p| p.summary.clone())
        .unwrap_or_default();
    assert_eq!(format!("{}/{}", last.0, last.1), summary);
    assert!(last.0 > 0 && last.1 >= last.0, "{progress:?}");
}

fn assert_describe_shows_steps_conditions_and_events(describe: &str) {
    for needle in [
        "Steps:",
        "Conditions:",
        "Events:",
        "Ready",
        "Succeeded",
        "northwind-extract-1",
        "northwind-migrate-1",
        "northwind-publish-1",
    ] {
        assert!(
            describe.contains(needle),
            "describe lacks {needle:?}:\n{describe}"
        );
    }
    let events = describe.split("Events:").nth(1).unwrap_or_default();
    assert!(
        events.contains("StepRunning"),
        "no StepRunning event in describe:\n{events}"
    );
}

/// One Normal `StepRunning` Event naming each created Job, a `Succeeded` one, no Warning.
fn event_problems(ns: &str) -> Vec<String> {
    let events = e2e_support::events(ns, NAME);
    let mut problems = Vec::new();
    for job in [
        "northwind-extract-1",
        "northwind-migrate-1",
        "northwind-publish-1",
    ] {
        let named = events
            .iter()
            .any(|(_, r, m)| r == "StepRunning" && m.contains(job));
        if !named {
            problems.push(format!("no StepRunning Event names Job {job}: {events:?}"));
        }
    }
    // Each step's own transition Event, not one series folded under the first step's note
    for step in ["extract", "migrate", "publish"] {
        let note = format!("Running step {step}");
        if !events
            .iter()
            .any(|(_, r, m)| r == "StepRunning" && m.contains(&note))
        {
            problems.push(format!("no StepRunning Event says {note:?}: {events:?}"));
        }
    }
    if !events
        .iter()
        .any(|(t, r, _)| t == "Normal" && r == "Succeeded")
    {
        problems.push(format!("no Succeeded Event: {events:?}"));
    }
    if events.iter().any(|(t, _, _)| t == "Warning") {
        problems.push(format!("a Warning Event in a clean run: {events:?}"));
    }
    problems
}

/// A new DuckDB file with only the source tables (schema `raw_northwind`) copied from the
/// workspace's warehouse, so `dbt build` on the clone has to create every model itself.
fn raw_tables_only_warehouse(venv: &Path, ns: &str, dir: &Path) -> std::path::PathBuf {
    let claim = support::runner_dir()
        .join("pvc")
        .join(ns)
        .join(format!("{NAME}-workspace"));
    let source = claim.join("warehouse.duckdb");
    assert!(source.exists(), "{} is missing", source.display());
    let fresh = dir.join("fresh.duckdb");
    let script = r#"
import sys, duckdb
fresh, source = sys.argv[1], sys.argv[2]
c = duckdb.connect(fresh)
c.execute(f"ATTACH '{source}' AS ws (READ_ONLY)")
c.execute("CREATE SCHEMA raw_northwind")
q = ("select table_name from information_schema.tables "
     "where table_catalog = 'ws' and table_schema = 'raw_northwind'")
tables = [t for (t,) in c.execute(q).fetchall()]
for t in tables:
    c.execute(f'CREATE TABLE raw_northwind."{t}" AS SELECT * FROM ws.raw_northwind."{t}"')
print(len(tables))
"#;
    let output = Command::new(venv.join("bin/python"))
        .args(["-c", script])
        .arg(&fresh)
        .arg(&source)
        .output()
        .expect("run python");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "copying the source tables failed: {stderr}"
    );
    let tables = String::from_utf8_lossy(&output.stdout).trim().to_string();
    assert_eq!(tables, "13", "Northwind has 13 tables");
    fresh
}

fn dbt_build_passes(venv: &Path, clone: &Path, warehouse: &Path) {
    assert!(clone.join("dbt_project.yml").exists());
    assert!(!clone.join("target").exists(), "build output was published");
    let output = Command::new(venv.join("bin/dbt"))
        .args(["build", "--project-dir"])
        .arg(clone)
        .arg("--profiles-dir")
        .arg(clone)
        .env("DATAMIGRATE_DUCKDB_PATH", warehouse)
        .env("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
        .current_dir(clone)
        .output()
        .expect("run dbt");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "dbt build failed on the clone:\n{stdout}"
    );

    let text = std::fs::read_to_string(clone.join("target/run_results.json")).expect("run_results");
    let results: serde_json::Value = serde_json::from_str(&text).expect("run_results JSON");
    let results = results["results"].as_array().expect("results").clone();
    let bad: Vec<_> = results
        .iter()
        .filter(|r| !matches!(r["status"].as_str(), Some("success" | "pass")))
        .map(|r| format!("{} {}", r["unique_id"], r["status"]))
        .collect();
    assert!(bad.is_empty(), "dbt results not passing: {bad:?}");
    let models = results
        .iter()
        .filter(|r| {
            r["unique_id"]
                .as_str()
                .is_some_and(|u| u.starts_with("model."))
        })
        .count();
    // The agent disables (`config(enabled=false)`) the models it flagged as not building.
    assert_eq!(
        models,
        count_enabled_models(&clone.join("models")),
        "every enabled model was built"
    );
    assert!(models >= 13, "at least a staging model per table: {models}");
    let tests = results
        .iter()
        .filter(|r| {
            r["unique_id"]
                .as_str()
                .is_some_and(|u| u.starts_with("test."))
        })
        .count();
    assert!(tests > 0, "the project has data tests and they ran");
}

fn count_enabled_models(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut count = 0;
    for path in entries.flatten().map(|e| e.path()) {
        if path.is_dir() {
            count += count_enabled_models(&path);
        } else if path.extension().is_some_and(|x| x == "sql") {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            count += usize::from(!text.contains("config(enabled=false)"));
        }
    }
    count
}

fn write_figures(
    took: Duration,
    lines: &[(Duration, String)],
    describe: &str,
    status: &datamigrate::crd::MigrationStatus,
) {
    let mut text = format!("apply_to_ready_seconds: {:.1}\n\n", took.as_secs_f64());
    text.push_str("kubectl get mig -w (seconds since the watch started):\n");
    for (at, line) in lines {
        let _ = writeln!(text, "{:>6.1}  {line}", at.as_secs_f64());
    }
    for step in &status.steps {
        let secs = match (&step.start_time, &step.completion_time) {
            (Some(a), Some(b)) => (b.0.as_second() - a.0.as_second()).to_string(),
            _ => "?".into(),
        };
        let _ = writeln!(
            text,
            "step {} took {secs} s ({} attempt(s))",
            step.name, step.attempts
        );
    }
    text.push_str("\nkubectl describe mig northwind:\n");
    text.push_str(describe);
    let path = e2e_support::figures_dir().join("northwind-cluster.txt");
    std::fs::write(&path, text).expect("write figures");
}
