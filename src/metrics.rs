//! Prometheus metrics: reconciles, failures by reason, durations, Migrations by phase, step
//! durations. Served as text on `/metrics`.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::crd::MigrationPhase;

/// Label set `reason`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// The error's PascalCase reason.
    pub reason: String,
}

/// Label set `phase`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    /// A Migration phase.
    pub phase: String,
}

/// Label set `step`, `outcome`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StepLabels {
    /// Step name.
    pub step: String,
    /// `succeeded` or `failed`.
    pub outcome: String,
}

fn reconcile_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

fn step_histogram() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 2.0, 16))
}

/// The operator's metrics and their registry.
pub struct Metrics {
    registry: Registry,
    /// Reconciles run.
    pub reconciles: Counter,
    /// Failed reconciles by reason.
    pub failures: Family<ReasonLabels, Counter>,
    /// Reconcile durations in seconds.
    pub reconcile_duration: Histogram,
    /// Migrations per phase.
    pub migrations: Family<PhaseLabels, Gauge>,
    /// Step Job durations in seconds, by step and outcome.
    pub step_duration: Family<StepLabels, Histogram, fn() -> Histogram>,
    /// Step Jobs created, by step.
    pub jobs_created: Family<StepLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers every metric.
    #[must_use]
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("datamigrate");
        let reconciles = Counter::default();
        let failures = Family::<ReasonLabels, Counter>::default();
        let reconcile_duration = reconcile_histogram();
        let migrations = Family::<PhaseLabels, Gauge>::default();
        let step_duration: Family<StepLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(step_histogram);
        let jobs_created = Family::<StepLabels, Counter>::default();
        registry.register("reconciles", "Reconciles run", reconciles.clone());
        registry.register(
            "reconcile_failures",
            "Failed reconciles by reason",
            failures.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Reconcile durations",
            reconcile_duration.clone(),
        );
        registry.register("migrations", "Migrations by phase", migrations.clone());
        registry.register(
            "step_duration_seconds",
            "Step Job durations by step and outcome",
            step_duration.clone(),
        );
        registry.register(
            "step_jobs_created",
            "Step Jobs created",
            jobs_created.clone(),
        );
        Self {
            registry,
            reconciles,
            failures,
            reconcile_duration,
            migrations,
            step_duration,
            jobs_created,
        }
    }

    /// Counts one reconcile and its duration.
    pub fn observe_reconcile(&self, took: Duration) {
        self.reconciles.inc();
        self.reconcile_duration.observe(took.as_secs_f64());
    }

    /// Counts one failed reconcile.
    pub fn observe_failure(&self, reason: &str) {
        self.failures
            .get_or_create(&ReasonLabels {
                reason: reason.into(),
            })
            .inc();
    }

    /// Records a finished step.
    pub fn observe_step(&self, step: &str, succeeded: bool, took: Duration) {
        let outcome = if succeeded { "succeeded" } else { "failed" };
        let labels = StepLabels {
            step: step.into(),
            outcome: outcome.into(),
        };
        self.step_duration
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }

    /// Counts a created Job.
    pub fn observe_job_created(&self, step: &str) {
        let labels = StepLabels {
            step: step.into(),
            outcome: "created".into(),
        };
        self.jobs_created.get_or_create(&labels).inc();
    }

    /// Sets the per-phase gauge from a count per phase (phases not given are set to 0).
    pub fn set_phases(&self, counts: &[(MigrationPhase, i64)]) {
        for phase in MigrationPhase::ALL {
            let n = counts
                .iter()
                .filter(|(p, _)| *p == phase)
                .map(|(_, n)| n)
                .sum();
            self.migrations
                .get_or_create(&PhaseLabels {
                    phase: phase.as_str().into(),
                })
                .set(n);
        }
    }

    /// The metrics in the Prometheus text format.
    #[must_use]
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_metrics_carry_reasons_phases_and_steps() {
        let m = Metrics::new();
        m.observe_reconcile(Duration::from_millis(20));
        m.observe_failure("SecretNotFound");
        m.observe_step("extract", true, Duration::from_secs(3));
        m.set_phases(&[(MigrationPhase::Succeeded, 2)]);
        let text = m.encode();
        assert!(text.contains("datamigrate_reconciles_total 1"));
        assert!(text.contains("datamigrate_reconcile_failures_total{reason=\"SecretNotFound\"} 1"));
        assert!(text.contains("datamigrate_migrations{phase=\"Succeeded\"} 2"));
        assert!(text.contains("datamigrate_migrations{phase=\"Failed\"} 0"));
        assert!(text.contains("step=\"extract\",outcome=\"succeeded\""));
    }
}
