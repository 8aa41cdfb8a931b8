//! Test fixtures: Migrations and Jobs in known states.

use k8s_openapi::api::batch::v1::{Job, JobCondition, JobStatus};
use kube::api::ObjectMeta;

use crate::crd::Migration;

/// The minimal example: a script from a ConfigMap, no output, no model.
pub fn script_migration() -> Migration {
    migration_from(serde_json::json!({
        "source": {"script": {"configMapKeyRef": {"name": "minimal-script", "key": "schema.sql"}}},
        "target": {"dialect": "duckdb", "projectName": "minimal"},
    }))
    .named("minimal")
}

/// Every option set: a live server, an LLM, a git output, a pod template override.
pub fn full_migration() -> Migration {
    migration_from(serde_json::json!({
        "source": {"sqlServer": {
            "host": "sql.example.com", "database": "Northwind",
            "schemas": ["dbo", "sales"], "include": ["dbo.*"], "exclude": ["dbo.tmp_*"],
            "trustServerCertificate": true,
            "credentialsSecretRef": {"name": "northwind-login"},
        }},
        "target": {"dialect": "snowflake", "projectName": "northwind", "schema": "analytics",
                   "materialization": "table"},
        "agent": {"image": "registry.example.com/agent:1.2.3", "modelProvider": "anthropic",
                  "model": "claude-sonnet-4-5", "maxRepairAttempts": 5,
                  "stepTimeoutSeconds": 900,
                  "apiKeySecretRef": {"name": "llm", "key": "api-key"}},
        "output": {"git": {"url": "https://git.example.com/data/dbt.git", "branch": "migration",
                           "path": "projects/northwind",
                           "credentialsSecretRef": {"name": "git-push"}}},
        "podTemplate": {
            "nodeSelector": {"pool": "batch"},
            "tolerations": [{"key": "batch", "operator": "Exists", "effect": "NoSchedule"}],
            "annotations": {"team": "data"},
            "resources": {"limits": {"memory": "2Gi"}},
        },
    }))
    .named("northwind")
}

fn migration_from(spec: serde_json::Value) -> Migration {
    let spec = serde_json::from_value(spec).expect("fixture spec deserializes");
    Migration::new("unnamed", spec)
}

/// Builder modifiers for fixtures.
pub trait MigrationExt {
    /// Sets name, namespace, uid and generation 1.
    fn named(self, name: &str) -> Self;
    /// Sets `metadata.generation`.
    fn with_generation(self, generation: i64) -> Self;
    /// Sets an annotation.
    fn with_annotation(self, key: &str, value: &str) -> Self;
}

impl MigrationExt for Migration {
    fn named(mut self, name: &str) -> Self {
        self.metadata = ObjectMeta {
            name: Some(name.into()),
            namespace: Some("data".into()),
            uid: Some(format!("uid-{name}")),
            generation: Some(1),
            ..ObjectMeta::default()
        };
        self
    }

    fn with_generation(mut self, generation: i64) -> Self {
        self.metadata.generation = Some(generation);
        self
    }

    fn with_annotation(mut self, key: &str, value: &str) -> Self {
        self.metadata
            .annotations
            .get_or_insert_default()
            .insert(key.into(), value.into());
        self
    }
}

/// A Job with a name and the given status.
pub fn job(name: &str, status: JobStatus) -> Job {
    Job {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..ObjectMeta::default()
        },
        status: Some(status),
        ..Job::default()
    }
}

/// A Job that is running (one active pod).
pub fn running_job(name: &str) -> Job {
    job(
        name,
        JobStatus {
            active: Some(1),
            ..JobStatus::default()
        },
    )
}

/// A Job with a terminal condition (`Complete` or `Failed`) and a reason.
pub fn finished_job(name: &str, condition: &str, reason: &str) -> Job {
    let cond = JobCondition {
        type_: condition.into(),
        status: "True".into(),
        reason: Some(reason.into()),
        message: Some(format!("{reason} happened")),
        ..JobCondition::default()
    };
    job(
        name,
        JobStatus {
            conditions: Some(vec![cond]),
            ..JobStatus::default()
        },
    )
}

/// A time `seconds` after the epoch.
pub fn at(seconds: i64) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::Time {
    let ts = k8s_openapi::jiff::Timestamp::from_second(seconds).expect("valid timestamp");
    k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(ts)
}

/// `job` labelled as attempt `attempt` of `step`.
pub fn step_job(mut job: Job, step: crate::steps::Step, attempt: i32) -> Job {
    let labels = job.metadata.labels.get_or_insert_default();
    labels.insert(crate::job::LABEL_STEP.into(), step.as_str().into());
    labels.insert(crate::job::LABEL_ATTEMPT.into(), attempt.to_string());
    job
}
