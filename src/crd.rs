//! The `Migration` custom resource: spec and status types only.
//!
//! Every field's `///` comment is what `kubectl explain migration.spec...` shows. Rules that
//! cross fields are CEL (`x-kubernetes-validations`) so bad input is refused at admission.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, LocalObjectReference, PodSecurityContext, ResourceRequirements, SecurityContext,
    Toleration,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Default SQL Server port.
pub const DEFAULT_SQL_SERVER_PORT: i32 = 1433;
/// Default bound on the agent's repair loop.
pub const DEFAULT_MAX_REPAIR_ATTEMPTS: i32 = 3;
/// Default per-step deadline (`activeDeadlineSeconds` of each step Job).
pub const DEFAULT_STEP_TIMEOUT_SECONDS: i64 = 3600;
/// An object name (RFC 1123 subdomain), as the API server requires of Secrets, ConfigMaps,
/// claims and ServiceAccounts: a reference that cannot name an object is refused at admission.
const DNS_SUBDOMAIN: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
/// A Secret or ConfigMap key.
const KEY: &str = r"^[-._a-zA-Z0-9]+$";
/// Most per-object results kept in status (the rest stay in the workspace and the output).
pub const MAX_STATUS_OBJECTS: usize = 50;

/// What to migrate, where to, and how. A Migration runs the steps extract, migrate and
/// publish, each as its own Job, and reports progress in its status.
// kube's `printcolumn` is repeated once per column by design.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "datamigrate.ai",
    version = "v1alpha1",
    kind = "Migration",
    namespaced,
    shortname = "mig",
    category = "datamigrate",
    status = "MigrationStatus",
    derive = "PartialEq",
    doc = "A migration of a SQL Server database (live or as a T-SQL script) into a dbt project.",
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(
        name = "Progress",
        type_ = "string",
        json_path = ".status.progress.summary"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[kube(validation = Rule::new("self.metadata.name.size() <= 63").message(concat!(
    "metadata.name must be at most 63 characters: it prefixes the names and labels of the ",
    "Jobs and other objects the Migration owns"
)))]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(concat!(
    "has(self.output) == has(oldSelf.output) && ",
    "(!has(self.output) || self.output == oldSelf.output)"
)).message("output is immutable once set: create a new Migration to publish elsewhere"))]
pub struct MigrationSpec {
    /// The database to migrate: a live SQL Server or a T-SQL script. Immutable once set.
    #[x_kube(validation = Rule::new("self == oldSelf").message("source is immutable once set"))]
    pub source: SourceSpec,

    /// The warehouse dialect and the dbt project to generate. Immutable once set.
    #[x_kube(validation = Rule::new("self == oldSelf")
        .message("target is immutable once set: create a new Migration for another target"))]
    pub target: TargetSpec,

    /// The agent that generates, tests and repairs the project.
    #[serde(default)]
    pub agent: AgentSpec,

    /// Whether and where the generated project is built and compared with the source.
    /// Immutable once set.
    #[serde(default)]
    #[x_kube(validation = Rule::new("self == oldSelf")
        .message("validation is immutable once set: create a new Migration to validate otherwise"))]
    pub validation: ValidationSpec,

    /// Where the finished project is published. Without it the publish step is skipped and the
    /// project stays in the workspace volume (`<name>-workspace`, folder `project/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<OutputSpec>,

    /// Overrides for the step pods, merged field by field over the operator's defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_template: Option<PodTemplateOverride>,

    /// When true no new step starts and a running step Job is suspended (its pod stops).
    /// Setting it back to false continues from the last finished step.
    #[serde(default)]
    pub suspend: bool,
}

// === source ===

/// Exactly one of `sqlServer` or `script`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.sqlServer) != has(self.script)")
    .message("exactly one of sqlServer or script must be set"))]
pub struct SourceSpec {
    /// A live SQL Server database read through its catalogue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql_server: Option<SqlServerSource>,

    /// A T-SQL script (DDL and INSERTs) held in a ConfigMap key or on a volume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<ScriptSource>,
}

/// Connection to a live SQL Server.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SqlServerSource {
    /// Host name or address of the server, optionally with `\\instance`; never a URL (the
    /// login comes from `credentialsSecretRef`).
    #[schemars(
        length(min = 1, max = 253),
        pattern(r"^[A-Za-z0-9._:\[\]-]+(\\[A-Za-z0-9_$-]+)?$")
    )]
    pub host: String,

    /// TCP port of the server.
    #[serde(default = "default_sql_server_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,

    /// Database to read.
    #[schemars(length(min = 1, max = 128))]
    pub database: String,

    /// Schemas to read; empty means every schema.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(max = 128)))]
    pub schemas: Vec<String>,

    /// Glob patterns of objects (`schema.name`) to include; empty includes everything.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256), inner(length(max = 256)))]
    pub include: Vec<String>,

    /// Glob patterns of objects (`schema.name`) to leave out, applied after `include`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256), inner(length(max = 256)))]
    pub exclude: Vec<String>,

    /// Encrypt the connection (TLS).
    #[serde(default = "default_true")]
    pub encrypt: bool,

    /// Accept the server's certificate without checking it (self-signed test servers only).
    #[serde(default)]
    pub trust_server_certificate: bool,

    /// The Secret holding the SQL login; it is given to the extract step only.
    pub credentials_secret_ref: CredentialsSecretRef,
}

/// A Secret with a user name and a password key.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CredentialsSecretRef {
    /// Name of the Secret, in the Migration's namespace.
    #[schemars(length(min = 1, max = 253), pattern(DNS_SUBDOMAIN))]
    pub name: String,

    /// Key of the user name in the Secret.
    #[serde(default = "default_username_key")]
    #[schemars(length(min = 1, max = 253), pattern(KEY))]
    pub username_key: String,

    /// Key of the password (or token) in the Secret.
    #[serde(default = "default_password_key")]
    #[schemars(length(min = 1, max = 253), pattern(KEY))]
    pub password_key: String,
}

/// Exactly one of `configMapKeyRef` or `volume`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.configMapKeyRef) != has(self.volume)")
    .message("exactly one of configMapKeyRef or volume must be set"))]
pub struct ScriptSource {
    /// A ConfigMap key holding the script (in `data`, or gzipped in `binaryData` when the key
    /// ends in `.gz`). Mounted read-only at `/source/<key>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_key_ref: Option<ConfigMapKeyRef>,

    /// A file on a PersistentVolumeClaim. The claim is mounted read-only at `/source`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<VolumeFile>,
}

/// One key of a ConfigMap.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigMapKeyRef {
    /// Name of the ConfigMap, in the Migration's namespace.
    #[schemars(length(min = 1, max = 253), pattern(DNS_SUBDOMAIN))]
    pub name: String,

    /// Key in the ConfigMap; a name ending in `.gz` is gunzipped on read.
    #[schemars(length(min = 1, max = 253), pattern(KEY))]
    pub key: String,
}

/// A file on a PersistentVolumeClaim.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!self.path.matches('(^|/)[.][.](/|$)')")
    .message("path must stay inside the volume (no .. segment)"))]
pub struct VolumeFile {
    /// Name of the PersistentVolumeClaim, in the Migration's namespace.
    #[schemars(length(min = 1, max = 253), pattern(DNS_SUBDOMAIN))]
    pub claim_name: String,

    /// Path of the file inside the volume, relative, without `..`.
    #[schemars(length(min = 1, max = 1024), pattern(r"^[^/]"))]
    pub path: String,
}

// === target ===

/// The warehouse and the dbt project.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.projectName != 'dbt' && !self.projectName.startsWith('dbt_')")
    .message("projectName must not be dbt or start with dbt_ (the names of dbt's own packages)"))]
pub struct TargetSpec {
    /// SQL dialect of the target warehouse.
    pub dialect: Dialect,

    /// Name of the dbt project (a lower-case identifier).
    #[serde(default = "default_project_name")]
    #[schemars(length(min = 1, max = 63), pattern(r"^[a-z_][a-z0-9_]*$"))]
    pub project_name: String,

    /// Schema the models are built in (an identifier); the dbt profile's default when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63), pattern(r"^[A-Za-z_][A-Za-z0-9_]*$"))]
    pub schema: Option<String>,

    /// Default materialisation of the generated models.
    #[serde(default)]
    pub materialization: Materialization,
}

/// Target warehouse dialects.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    /// DuckDB.
    Duckdb,
    /// PostgreSQL.
    Postgres,
    /// Snowflake.
    Snowflake,
    /// Google BigQuery.
    Bigquery,
    /// Databricks SQL.
    Databricks,
    /// Amazon Redshift.
    Redshift,
}

impl Dialect {
    /// The name the agent's `--target` takes.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Duckdb => "duckdb",
            Self::Postgres => "postgres",
            Self::Snowflake => "snowflake",
            Self::Bigquery => "bigquery",
            Self::Databricks => "databricks",
            Self::Redshift => "redshift",
        }
    }
}

/// dbt materialisations the generator can default to.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Materialization {
    /// Models are views.
    #[default]
    View,
    /// Models are tables.
    Table,
}

impl Materialization {
    /// The name the agent's `--materialization` takes.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::View => "view",
            Self::Table => "table",
        }
    }
}

// === agent ===

/// The agent image and its model.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.modelProvider == 'none' || has(self.apiKeySecretRef)")
        .message("apiKeySecretRef is required when modelProvider is not none")
        .field_path(".apiKeySecretRef"),
    validation = Rule::new("self.modelProvider != 'openai-compatible' || has(self.baseUrl)")
        .message("baseUrl is required when modelProvider is openai-compatible")
        .field_path(".baseUrl")
)]
pub struct AgentSpec {
    /// Image of every step (the agent image); the operator's default when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512), pattern(r"^[^\s]+$"))]
    pub image: Option<String>,

    /// LLM provider used for repairs; `none` runs the deterministic generator only.
    #[serde(default)]
    pub model_provider: ModelProvider,

    /// Model name at the provider (for example `claude-sonnet-4-5`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub model: Option<String>,

    /// Base URL of an OpenAI-compatible endpoint; required for `openai-compatible`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048), pattern(r"^https?://"))]
    pub base_url: Option<String>,

    /// The Secret key holding the provider's API key; given to the migrate step only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_secret_ref: Option<SecretKeyRef>,

    /// Most repair attempts per failing model.
    #[serde(default = "default_max_repair_attempts")]
    #[schemars(range(min = 0, max = 20))]
    pub max_repair_attempts: i32,

    /// Deadline of each step Job, in seconds (`activeDeadlineSeconds`).
    #[serde(default = "default_step_timeout_seconds")]
    #[schemars(range(min = 30, max = 604_800))]
    pub step_timeout_seconds: i64,
}

impl Default for AgentSpec {
    fn default() -> Self {
        Self {
            image: None,
            model_provider: ModelProvider::None,
            model: None,
            base_url: None,
            api_key_secret_ref: None,
            max_repair_attempts: DEFAULT_MAX_REPAIR_ATTEMPTS,
            step_timeout_seconds: DEFAULT_STEP_TIMEOUT_SECONDS,
        }
    }
}

/// LLM providers.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ModelProvider {
    /// No model: deterministic generation and no LLM repairs.
    #[default]
    None,
    /// Anthropic.
    Anthropic,
    /// OpenAI.
    Openai,
    /// Any OpenAI-compatible endpoint (needs `baseUrl`).
    OpenaiCompatible,
}

impl ModelProvider {
    /// The name the agent's `--model-provider` takes.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Anthropic => "anthropic",
            Self::Openai => "openai",
            Self::OpenaiCompatible => "openai-compatible",
        }
    }
}

/// One key of a Secret.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Name of the Secret, in the Migration's namespace.
    #[schemars(length(min = 1, max = 253), pattern(DNS_SUBDOMAIN))]
    pub name: String,

    /// Key in the Secret.
    #[schemars(length(min = 1, max = 253), pattern(KEY))]
    pub key: String,
}

// === validation ===

/// Building and comparing the generated project.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ValidationSpec {
    /// Run `dbt build` and compare results with the source.
    #[serde(default = "default_true")]
    pub enabled: bool,

    /// Engine the project is built on for validation.
    #[serde(default)]
    pub engine: ValidationEngine,
}

impl Default for ValidationSpec {
    fn default() -> Self {
        Self {
            enabled: true,
            engine: ValidationEngine::Duckdb,
        }
    }
}

/// Engines the project can be validated on.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ValidationEngine {
    /// An embedded DuckDB in the workspace.
    #[default]
    Duckdb,
    /// A PostgreSQL server.
    Postgres,
}

impl ValidationEngine {
    /// The engine's name as the agent reads it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Duckdb => "duckdb",
            Self::Postgres => "postgres",
        }
    }
}

// === output ===

/// Exactly one of `git` or `volume`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.git) != has(self.volume)")
    .message("exactly one of git or volume must be set"))]
pub struct OutputSpec {
    /// Push the project to a branch of a git repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git: Option<GitOutput>,

    /// Copy the project onto a PersistentVolumeClaim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<VolumeOutput>,
}

/// A git remote.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(
    "!self.url.matches('^https?://[^/]*@') && !self.url.matches('^[a-z+]+://[^/@]*:[^/@]*@')"
).message("url must not carry credentials: put them in the Secret of credentialsSecretRef"))]
#[x_kube(validation = Rule::new("!has(self.path) || !self.path.matches('(^|/)[.][.](/|$)')")
    .message("path must stay inside the repository (no .. segment)"))]
pub struct GitOutput {
    /// URL of the repository: `scheme://...` (https, ssh, git, file), `user@host:path` or an
    /// absolute path. Credentials go in `credentialsSecretRef`, never in the URL.
    #[schemars(
        length(min = 1, max = 2048),
        pattern(r"^([a-zA-Z][a-zA-Z0-9+.-]*://|/|[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:)")
    )]
    pub url: String,

    /// Branch the project is committed to.
    #[serde(default = "default_branch")]
    #[schemars(length(min = 1, max = 255), pattern(r"^[A-Za-z0-9_][A-Za-z0-9._/-]*$"))]
    pub branch: String,

    /// Folder inside the repository; the root when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024), pattern(r"^[^/]"))]
    pub path: Option<String>,

    /// The Secret with the git user name and password (or token); given to publish only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<CredentialsSecretRef>,
}

/// A PersistentVolumeClaim the project is copied onto.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.path) || !self.path.matches('(^|/)[.][.](/|$)')")
    .message("path must stay inside the volume (no .. segment)"))]
pub struct VolumeOutput {
    /// Name of the PersistentVolumeClaim, in the Migration's namespace.
    #[schemars(length(min = 1, max = 253), pattern(DNS_SUBDOMAIN))]
    pub claim_name: String,

    /// Folder inside the volume; the root when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024), pattern(r"^[^/]"))]
    pub path: Option<String>,
}

// === pod template ===

/// Overrides for the step pods. Maps are merged key by key over the operator's defaults; every
/// other field, when set, replaces the default.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodTemplateOverride {
    /// Resources of the step container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,

    /// Node labels the step pods must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<BTreeMap<String, String>>,

    /// Tolerations of the step pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerations: Option<Vec<Toleration>>,

    /// Affinity of the step pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,

    /// ServiceAccount of the step pods instead of `<name>-agent`; it is also bound to the
    /// progress ConfigMap's Role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), pattern(DNS_SUBDOMAIN))]
    pub service_account_name: Option<String>,

    /// Secrets for pulling the step image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_secrets: Option<Vec<LocalObjectReference>>,

    /// Pod-level security context; the restricted profile when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_context: Option<PodSecurityContext>,

    /// Container-level security context; the restricted profile when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_security_context: Option<SecurityContext>,

    /// Annotations added to the step pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

// === status ===

/// Observed state, written only by the operator (server-side apply on `/status`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MigrationStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Where the run is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<MigrationPhase>,

    /// `Ready`, `Reconciling`, `Stalled` (kstatus) and the domain conditions, each with its
    /// `observedGeneration`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,

    /// Object counts reported by the agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<Progress>,

    /// One entry per step, in run order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<StepStatus>,

    /// Summary of per-object results (bounded; the full results are in the output).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objects: Option<ObjectsSummary>,

    /// Where the project was published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<OutputStatus>,

    /// When the first step started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,

    /// When the run ended (succeeded or failed for good).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<Time>,

    /// The last value of the `datamigrate.ai/reconcile-requested-at` annotation acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,

    /// sha256 over the referenced Secrets' data (never the values), so rotation shows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets_hash: Option<String>,

    /// Human-readable summary of the current state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Phases of a Migration.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum MigrationPhase {
    /// Waiting to start (or for its inputs).
    Pending,
    /// The extract step runs.
    Extracting,
    /// The migrate step generates the project.
    Generating,
    /// The migrate step builds and compares the project.
    Validating,
    /// The publish step runs.
    Publishing,
    /// Every step finished.
    Succeeded,
    /// A step failed for good; see the `Stalled` condition.
    Failed,
    /// `spec.suspend` is true.
    Suspended,
}

impl MigrationPhase {
    /// Every phase, for metrics.
    pub const ALL: [Self; 8] = [
        Self::Pending,
        Self::Extracting,
        Self::Generating,
        Self::Validating,
        Self::Publishing,
        Self::Succeeded,
        Self::Failed,
        Self::Suspended,
    ];

    /// The phase's name as written in status.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::Extracting => "Extracting",
            Self::Generating => "Generating",
            Self::Validating => "Validating",
            Self::Publishing => "Publishing",
            Self::Succeeded => "Succeeded",
            Self::Failed => "Failed",
            Self::Suspended => "Suspended",
        }
    }
}

/// Object counts of the run.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    /// Objects to migrate.
    pub total: i64,
    /// Objects done (verified or flagged).
    pub completed: i64,
    /// Objects that failed.
    pub failed: i64,
    /// Objects skipped.
    pub skipped: i64,
    /// `completed/total`, for `kubectl get`.
    pub summary: String,
    /// The object being worked on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<String>,
}

/// State of one step.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StepStatus {
    /// Step name: extract, migrate or publish.
    pub name: String,
    /// Where the step is.
    pub phase: StepPhase,
    /// The Job of the latest attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_name: Option<String>,
    /// Attempts made (Jobs created) so far.
    #[serde(default)]
    pub attempts: i32,
    /// When the latest attempt started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    /// When the step finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<Time>,
    /// The latest failure or note (the container's termination message).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Phases of one step.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum StepPhase {
    /// Not started.
    #[default]
    Pending,
    /// Its Job runs.
    Running,
    /// Its Job is suspended.
    Suspended,
    /// Done.
    Succeeded,
    /// Its latest attempt failed.
    Failed,
}

/// Per-object results: counts and at most 50 entries.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObjectsSummary {
    /// Objects proven equal to the source (row counts and column checksums).
    pub verified: i64,
    /// Objects whose models build and pass their tests, with nothing to compare their rows
    /// against (an empty source table, or a view of a script source).
    #[serde(default)]
    pub verified_by_build: i64,
    /// Objects that need a person; each entry's reason says why.
    pub flagged: i64,
    /// Objects that could not be migrated.
    pub failed: i64,
    /// Up to 50 entries, failed and flagged first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    pub items: Vec<ObjectResult>,
}

/// The result for one object.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObjectResult {
    /// `schema.name` of the source object.
    pub object: String,
    /// table, view, procedure or function.
    pub kind: String,
    /// verified, flagged or failed.
    pub status: String,
    /// Why it was flagged or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Where the project went.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OutputStatus {
    /// A git URL and branch, or a volume path.
    pub location: String,
    /// The commit pushed, for a git output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
}

fn default_sql_server_port() -> i32 {
    DEFAULT_SQL_SERVER_PORT
}

fn default_true() -> bool {
    true
}

fn default_username_key() -> String {
    "username".into()
}

fn default_password_key() -> String {
    "password".into()
}

fn default_project_name() -> String {
    "migration".into()
}

fn default_branch() -> String {
    "datamigrate".into()
}

fn default_max_repair_attempts() -> i32 {
    DEFAULT_MAX_REPAIR_ATTEMPTS
}

fn default_step_timeout_seconds() -> i64 {
    DEFAULT_STEP_TIMEOUT_SECONDS
}

/// The CRD as YAML, what `datamigrate crd` prints and `crds/` holds.
///
/// # Errors
/// When serialization fails (it does not for this type).
pub fn crd_yaml() -> Result<String, serde_yaml::Error> {
    use kube::CustomResourceExt;
    let body = serde_yaml::to_string(&Migration::crd())?;
    Ok(format!(
        "# Generated by `datamigrate crd`; do not edit.\n---\n{body}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::CustomResourceExt;

    #[test]
    fn crd_has_names_columns_and_status_subresource() {
        let crd = Migration::crd();
        assert_eq!(
            crd.metadata.name.as_deref(),
            Some("migrations.datamigrate.ai")
        );
        assert_eq!(crd.spec.names.short_names, Some(vec!["mig".to_string()]));
        assert_eq!(
            crd.spec.names.categories,
            Some(vec!["datamigrate".to_string()])
        );
        let version = &crd.spec.versions[0];
        let cols: Vec<_> = version
            .additional_printer_columns
            .iter()
            .flatten()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(cols, ["Phase", "Progress", "Ready", "Age"]);
        assert!(
            version
                .subresources
                .as_ref()
                .and_then(|s| s.status.as_ref())
                .is_some()
        );
    }

    #[test]
    fn crd_carries_every_cel_rule() {
        let yaml = crd_yaml().unwrap();
        for rule in [
            "self == oldSelf",
            "has(self.sqlServer) != has(self.script)",
            "has(self.configMapKeyRef) != has(self.volume)",
            "has(self.git) != has(self.volume)",
            "self.modelProvider == 'none' || has(self.apiKeySecretRef)",
            "self.modelProvider != 'openai-compatible' || has(self.baseUrl)",
        ] {
            assert!(yaml.contains(rule), "missing rule {rule}");
        }
    }

    #[test]
    fn minimal_spec_gets_defaults() {
        let spec: MigrationSpec = serde_yaml::from_str(
            "source: {script: {configMapKeyRef: {name: s, key: a.sql}}}\n\
             target: {dialect: duckdb}\n",
        )
        .unwrap();
        assert_eq!(spec.agent.max_repair_attempts, DEFAULT_MAX_REPAIR_ATTEMPTS);
        assert_eq!(spec.agent.model_provider, ModelProvider::None);
        assert!(spec.validation.enabled);
        assert_eq!(spec.target.project_name, "migration");
        assert_eq!(spec.target.materialization, Materialization::View);
        assert!(!spec.suspend);
    }
}
