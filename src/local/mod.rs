//! `datamigrate run`: a Migration's steps as local processes, without a cluster.
//!
//! The steps, their commands, arguments and environment come from [`crate::steps`], the same
//! builder the Jobs use; this module only maps volumes to folders, Secrets and ConfigMaps to the
//! manifests beside the Migration, and the image to the agent's local Python environment.

mod manifests;
mod process;
mod report;
mod schema;
mod ui;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

pub use manifests::Manifests;
pub use process::{Layout, rewrite_path};
use report::RunRecord;

use crate::status::{ProgressReport, PublishReport, SummaryReport};
use crate::steps::{Step, step_container, steps_for};

/// Errors of a local run.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// A manifest could not be read or parsed.
    #[error("{}: {message}", path.display())]
    Manifest {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A Secret, ConfigMap or claim the Migration references is not available.
    #[error("{message}")]
    Reference {
        /// What is missing (names only, never values).
        message: String,
    },
    /// A file or process operation failed.
    #[error("failed to use {}", path.display())]
    Io {
        /// The file, folder or program.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

/// Options of `datamigrate run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The Migration manifest; Secrets and ConfigMaps it references are read from the
    /// manifests in the same folder.
    #[arg(short = 'f', long = "filename")]
    pub file: PathBuf,
    /// Folder for the run (the workspace: dbt project, results, report, logs).
    /// Defaults to ./datamigrate-out/<migration name>.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Python with the agent installed (scripts/setup-agent makes one).
    #[arg(long, env = "DATAMIGRATE_AGENT_PYTHON", default_value = "python3")]
    pub agent_python: PathBuf,
    /// Also run the publish step when the Migration has an output.
    #[arg(long)]
    pub publish: bool,
    /// A local folder standing for a PersistentVolumeClaim, as NAME=DIR (repeatable).
    #[arg(long = "claim", value_parser = parse_claim)]
    pub claims: Vec<(String, PathBuf)>,
}

fn parse_claim(text: &str) -> Result<(String, PathBuf), String> {
    let (name, dir) = text.split_once('=').ok_or("expected NAME=DIR")?;
    Ok((name.to_string(), PathBuf::from(dir)))
}

/// Options of `datamigrate translate`.
#[derive(Debug, clap::Args)]
pub struct TranslateArgs {
    /// Source dialect.
    #[arg(long, default_value = "tsql")]
    pub from: String,
    /// Target dialect (duckdb, postgres, snowflake, bigquery, databricks, redshift).
    #[arg(long)]
    pub to: String,
    /// The T-SQL script.
    pub file: PathBuf,
    /// Python with the agent installed (scripts/setup-agent makes one).
    #[arg(long, env = "DATAMIGRATE_AGENT_PYTHON", default_value = "python3")]
    pub agent_python: PathBuf,
}

/// Runs the agent's `translate`, the same translation a migration uses, and passes its output
/// and exit status through.
pub fn translate(args: &TranslateArgs) -> std::process::ExitCode {
    let status = std::process::Command::new(&args.agent_python)
        .args([
            "-m",
            "datamigrate_agent",
            "translate",
            "--from",
            &args.from,
            "--to",
            &args.to,
        ])
        .arg(&args.file)
        .status();
    match status {
        Ok(s) => std::process::ExitCode::from(u8::try_from(s.code().unwrap_or(1)).unwrap_or(1)),
        Err(e) => {
            eprintln!(
                "error: failed to start {}: {e}",
                args.agent_python.display()
            );
            std::process::ExitCode::from(2)
        }
    }
}

/// Runs the Migration of `args.file`; returns whether every step succeeded.
pub async fn run(args: RunArgs) -> Result<bool, LocalError> {
    let manifests = Manifests::load(&args.file)?;
    let name = manifests
        .migration
        .metadata
        .name
        .clone()
        .unwrap_or_else(|| "migration".into());
    let workspace = args
        .out
        .clone()
        .unwrap_or_else(|| Path::new("datamigrate-out").join(&name));
    let layout = make_layout(&args, &workspace)?;
    let mut record = RunRecord::new(now());
    let ui = ui::Ui::new();
    for step in steps_for(&manifests.migration) {
        if step == Step::Publish && !args.publish {
            record.skip(step, "not asked for: pass --publish to push to spec.output");
            continue;
        }
        if !run_step(&manifests, step, &layout, &ui, &mut record).await? {
            break;
        }
    }
    ui.finish();
    record.finish(now(), read_publish(&layout.workspace));
    let status = record.status(&manifests.migration, &layout.workspace);
    report::print(&status, &layout.workspace);
    Ok(record.succeeded())
}

fn make_layout(args: &RunArgs, workspace: &Path) -> Result<Layout, LocalError> {
    let internal = workspace.join(".datamigrate");
    std::fs::create_dir_all(&internal).map_err(|source| LocalError::Io {
        path: internal.clone(),
        source,
    })?;
    let workspace = std::fs::canonicalize(workspace).map_err(|source| LocalError::Io {
        path: workspace.to_path_buf(),
        source,
    })?;
    Ok(Layout {
        internal: workspace.join(".datamigrate"),
        workspace,
        claims: args.claims.iter().cloned().collect::<BTreeMap<_, _>>(),
        python: args.agent_python.clone(),
    })
}

async fn run_step(
    manifests: &Manifests,
    step: Step,
    layout: &Layout,
    ui: &ui::Ui,
    record: &mut RunRecord,
) -> Result<bool, LocalError> {
    let spec = step_container(&manifests.migration, step);
    let cmd = process::prepare(manifests, &spec, step.as_str(), layout)?;
    let log = layout.internal.join(format!("{}.log", step.as_str()));
    let bar = ui.step(step);
    record.start(step, now());
    let outcome = process::run(&cmd, &log, |line| {
        if let Some(event) = parse_event(line) {
            bar.event(&event);
            record.observe(event);
        }
    })
    .await?;
    let ok = outcome.code == Some(0);
    bar.done(ok, outcome.message.as_deref());
    record.end(step, now(), &outcome, &log);
    Ok(ok)
}

/// A progress or summary event from an agent log line.
#[derive(Debug)]
pub enum Event {
    /// Counts of a step (`event: progress`).
    Progress(ProgressReport),
    /// Per-object results at the end of migrate (`event: summary`).
    Summary(SummaryReport),
}

fn parse_event(line: &str) -> Option<Event> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    match value.get("event")?.as_str()? {
        "progress" => serde_json::from_value(value).ok().map(Event::Progress),
        "summary" => serde_json::from_value(value).ok().map(Event::Summary),
        _ => None,
    }
}

fn read_publish(workspace: &Path) -> Option<PublishReport> {
    let text = std::fs::read_to_string(workspace.join("publish.json")).ok()?;
    serde_json::from_str(&text).ok()
}

fn now() -> Time {
    Time(k8s_openapi::jiff::Timestamp::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_progress_and_summary_events_and_ignores_other_lines() {
        let progress = r#"{"msg": "Progress", "event": "progress", "step": "migrate",
            "phase": "Validating", "total": 36, "completed": 5}"#
            .replace('\n', " ");
        let Some(Event::Progress(p)) = parse_event(&progress) else {
            panic!("not progress")
        };
        assert_eq!(
            (p.total, p.completed, p.phase.as_deref()),
            (36, 5, Some("Validating"))
        );
        let summary = r#"{"event": "summary", "counts": {"verified": 2},
            "objects": [{"object": "dbo.T", "kind": "table", "status": "verified"}]}"#
            .replace('\n', " ");
        let Some(Event::Summary(s)) = parse_event(&summary) else {
            panic!("not summary")
        };
        assert_eq!(s.counts["verified"], 2);
        assert!(parse_event(r#"{"msg": "Node finished"}"#).is_none());
        assert!(parse_event("not json").is_none());
    }

    #[test]
    fn claim_flag_needs_name_and_dir() {
        assert_eq!(
            parse_claim("data=/tmp/x").unwrap(),
            ("data".into(), "/tmp/x".into())
        );
        assert!(parse_claim("data").is_err());
    }
}
