//! What a local run observed, the status it ends with (the shape of the resource's `.status`),
//! and the summary printed at the end.

use std::path::Path;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::Event;
use super::process::Outcome;
use crate::crd::{Migration, MigrationPhase, MigrationStatus, OutputStatus, StepPhase, StepStatus};
use crate::status::condition_type::{READY, RECONCILING, STALLED};
use crate::status::{PublishReport, condition, done_message, fold_progress, fold_summary, reason};
use crate::steps::Step;

/// Exit status of a step failed on bad input (see docs/architecture.md).
const EXIT_PERMANENT: i32 = 65;

/// Everything seen during a local run.
pub struct RunRecord {
    start: Time,
    end: Option<Time>,
    steps: Vec<StepStatus>,
    progress: Option<crate::status::ProgressReport>,
    summary: Option<crate::status::SummaryReport>,
    publish: Option<PublishReport>,
    failure: Option<(Step, bool, String)>,
}

impl RunRecord {
    /// A run started at `start`.
    pub fn new(start: Time) -> Self {
        Self {
            start,
            end: None,
            steps: Vec::new(),
            progress: None,
            summary: None,
            publish: None,
            failure: None,
        }
    }

    /// `step` was not run, for `why`.
    pub fn skip(&mut self, step: Step, why: &str) {
        self.steps.push(StepStatus {
            name: step.as_str().into(),
            phase: StepPhase::Pending,
            message: Some(why.into()),
            ..StepStatus::default()
        });
    }

    /// `step` started.
    pub fn start(&mut self, step: Step, now: Time) {
        self.steps.push(StepStatus {
            name: step.as_str().into(),
            phase: StepPhase::Running,
            attempts: 1,
            start_time: Some(now),
            ..StepStatus::default()
        });
    }

    /// An agent event.
    pub fn observe(&mut self, event: Event) {
        match event {
            Event::Progress(p) => self.progress = Some(p),
            Event::Summary(s) => self.summary = Some(s),
        }
    }

    /// `step` ended with `outcome`; its log is at `log`.
    pub fn end(&mut self, step: Step, now: Time, outcome: &Outcome, log: &Path) {
        let ok = outcome.code == Some(0);
        let message = if ok {
            None
        } else {
            let why = outcome
                .message
                .clone()
                .unwrap_or_else(|| match outcome.code {
                    Some(code) => format!("exited with status {code}"),
                    None => "killed by a signal".into(),
                });
            let permanent = outcome.code == Some(EXIT_PERMANENT);
            self.failure = Some((step, permanent, why.clone()));
            Some(format!("{why} (log: {})", log.display()))
        };
        if let Some(s) = self
            .steps
            .iter_mut()
            .rev()
            .find(|s| s.name == step.as_str())
        {
            s.phase = if ok {
                StepPhase::Succeeded
            } else {
                StepPhase::Failed
            };
            s.completion_time = Some(now);
            s.message = message;
        }
    }

    /// The run ended at `now`; `publish` is what the publish step recorded.
    pub fn finish(&mut self, now: Time, publish: Option<PublishReport>) {
        self.end = Some(now);
        self.publish = publish;
    }

    /// Whether every step that ran succeeded.
    pub fn succeeded(&self) -> bool {
        self.failure.is_none()
    }

    /// The final status, in the shape of the Migration's `.status`.
    pub fn status(&self, mig: &Migration, workspace: &Path) -> MigrationStatus {
        let generation = mig.metadata.generation.or(Some(1));
        let now = self.end.clone().unwrap_or_else(|| self.start.clone());
        let (phase, conditions, message) = match &self.failure {
            None => {
                let text = done_message(self.summary.as_ref());
                (
                    MigrationPhase::Succeeded,
                    vec![
                        condition(READY, true, reason::SUCCEEDED, &text, generation, &now),
                        condition(
                            RECONCILING,
                            false,
                            reason::SUCCEEDED,
                            &text,
                            generation,
                            &now,
                        ),
                        condition(STALLED, false, reason::SUCCEEDED, "", generation, &now),
                    ],
                    Some(text),
                )
            }
            Some((step, permanent, why)) => {
                let text = format!("step {} failed: {why}", step.as_str());
                let r = if *permanent {
                    reason::STEP_FAILED
                } else {
                    reason::RETRIES_EXHAUSTED
                };
                (
                    MigrationPhase::Failed,
                    vec![
                        condition(READY, false, r, &text, generation, &now),
                        condition(RECONCILING, false, r, &text, generation, &now),
                        condition(STALLED, true, r, &text, generation, &now),
                    ],
                    Some(text),
                )
            }
        };
        let output = match &self.publish {
            Some(p) => OutputStatus {
                location: p.location.clone(),
                commit: p.commit.clone(),
            },
            None => OutputStatus {
                location: workspace.join("project").display().to_string(),
                commit: None,
            },
        };
        MigrationStatus {
            observed_generation: generation,
            phase: Some(phase),
            conditions,
            progress: self.progress.as_ref().map(fold_progress),
            steps: self.steps.clone(),
            objects: self.summary.as_ref().map(fold_summary),
            output: Some(output),
            start_time: Some(self.start.clone()),
            completion_time: self.end.clone(),
            message,
            ..MigrationStatus::default()
        }
    }
}

/// Prints the status as YAML and the per-object summary of `results.json`.
pub fn print(status: &MigrationStatus, workspace: &Path) {
    let doc = serde_json::json!({ "status": status });
    match serde_yaml::to_string(&doc) {
        Ok(yaml) => println!("{yaml}"),
        Err(e) => eprintln!("could not print the status: {e}"),
    }
    if let Some(rows) = result_rows(workspace) {
        print_table(&rows);
    }
    let report = workspace.join("report.md");
    if report.exists() {
        println!(
            "\nProject: {}\nReport:  {}",
            workspace.join("project").display(),
            report.display()
        );
    }
}

/// `(object, kind, status, reason)` per object of `results.json`.
fn result_rows(workspace: &Path) -> Option<Vec<[String; 4]>> {
    let text = std::fs::read_to_string(workspace.join("results.json")).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    let field = |o: &serde_json::Value, k: &str| {
        o.get(k)
            .and_then(serde_json::Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let rows = value
        .get("objects")?
        .as_array()?
        .iter()
        .map(|o| {
            [
                field(o, "object"),
                field(o, "kind"),
                field(o, "status"),
                field(o, "reason"),
            ]
        })
        .collect::<Vec<_>>();
    let mut rows = rows;
    rows.sort_by(|a, b| (kind_rank(&a[1]), &a[0]).cmp(&(kind_rank(&b[1]), &b[0])));
    Some(rows)
}

fn kind_rank(kind: &str) -> usize {
    ["table", "view", "procedure", "function"]
        .iter()
        .position(|k| *k == kind)
        .unwrap_or(4)
}

fn print_table(rows: &[[String; 4]]) {
    let header = ["OBJECT", "KIND", "RESULT", "REASON"].map(String::from);
    let width = |i: usize| {
        rows.iter()
            .chain([&header])
            .map(|r| r[i].chars().count())
            .max()
            .unwrap_or(0)
            .min(48)
    };
    let widths = [width(0), width(1), width(2)];
    for row in std::iter::once(&header).chain(rows) {
        let cell = |i: usize| crate::truncate(&row[i], widths[i]);
        println!(
            "{:w0$}  {:w1$}  {:w2$}  {}",
            cell(0),
            cell(1),
            cell(2),
            row[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
        );
    }
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    for row in rows {
        *counts.entry(row[2].as_str()).or_default() += 1;
    }
    let totals: Vec<String> = counts.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    println!("\n{} objects; {}", rows.len(), totals.join(", "));
}
