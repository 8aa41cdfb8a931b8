//! The one place where each step's container is derived from a Migration.
//!
//! [`step_container`] is pure and shared by the Job builder (`job.rs`) and the local runner
//! (`datamigrate run`), so a step runs with the same command, arguments, environment and
//! mounts in a cluster and on a laptop. The contract it follows is `docs/architecture.md`.

use crate::crd::{Migration, OutputSpec, ScriptSource, SqlServerSource};

/// Image used when `spec.agent.image` is unset and the operator has no default of its own.
pub const DEFAULT_AGENT_IMAGE: &str = "ghcr.io/datamigrate-ai/datamigrate-agent:0.1.0";
/// Where the workspace volume is mounted.
pub const WORKSPACE_DIR: &str = "/workspace";
/// Where a script source (ConfigMap or volume) is mounted.
pub const SOURCE_DIR: &str = "/source";
/// Where a volume output is mounted.
pub const OUTPUT_DIR: &str = "/output";
/// Env: the Migration's name.
pub const ENV_MIGRATION: &str = "DATAMIGRATE_MIGRATION";
/// Env: the Migration's namespace.
pub const ENV_NAMESPACE: &str = "DATAMIGRATE_NAMESPACE";
/// Env: the step's name.
pub const ENV_STEP: &str = "DATAMIGRATE_STEP";
/// Env: the progress ConfigMap; the local runner drops it (no cluster to report to).
pub const ENV_PROGRESS_CONFIGMAP: &str = "DATAMIGRATE_PROGRESS_CONFIGMAP";
/// Env: the validation engine (`duckdb` or `postgres`) for the migrate step.
pub const ENV_VALIDATION_ENGINE: &str = "DATAMIGRATE_VALIDATION_ENGINE";
/// Env: SQL Server login (extract only).
pub const ENV_SOURCE_USER: &str = "DATAMIGRATE_SOURCE_USER";
/// Env: SQL Server password (extract only).
pub const ENV_SOURCE_PASSWORD: &str = "DATAMIGRATE_SOURCE_PASSWORD";
/// Env: LLM API key (migrate only).
pub const ENV_LLM_API_KEY: &str = "DATAMIGRATE_LLM_API_KEY";
/// Env: git user name (publish only).
pub const ENV_GIT_USERNAME: &str = "DATAMIGRATE_GIT_USERNAME";
/// Env: git password or token (publish only).
pub const ENV_GIT_PASSWORD: &str = "DATAMIGRATE_GIT_PASSWORD";
/// Name of the workspace mount (and of its Job volume).
pub const VOLUME_WORKSPACE: &str = "workspace";
/// Name of the source mount.
pub const VOLUME_SOURCE: &str = "source";
/// Name of the output mount.
pub const VOLUME_OUTPUT: &str = "output";

/// The steps of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Step {
    /// Read the source catalogue into `metadata.json`.
    Extract,
    /// Generate, build, repair and evaluate the dbt project.
    Migrate,
    /// Put the project where `spec.output` says.
    Publish,
}

impl Step {
    /// The step's name (Job names, labels, the agent's subcommand).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Extract => "extract",
            Self::Migrate => "migrate",
            Self::Publish => "publish",
        }
    }

    /// The step with this name.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Extract, Self::Migrate, Self::Publish]
            .into_iter()
            .find(|s| s.as_str() == name)
    }
}

/// The steps a Migration runs, in order: publish only when an output is set.
#[must_use]
pub fn steps_for(mig: &Migration) -> Vec<Step> {
    let mut steps = vec![Step::Extract, Step::Migrate];
    if mig.spec.output.is_some() {
        steps.push(Step::Publish);
    }
    steps
}

/// One step's container, free of any Kubernetes type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepSpec {
    /// Container image.
    pub image: String,
    /// Entrypoint (`python -m datamigrate_agent`).
    pub command: Vec<String>,
    /// Arguments (the subcommand first).
    pub args: Vec<String>,
    /// Environment, in order.
    pub env: Vec<EnvEntry>,
    /// Volumes and where they are mounted.
    pub mounts: Vec<Mount>,
}

/// One environment variable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvEntry {
    /// Variable name.
    pub name: String,
    /// Its value or where to read it.
    pub value: EnvValue,
}

/// Where an environment variable's value comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EnvValue {
    /// A literal value (never a secret).
    Literal(String),
    /// A key of a Secret in the Migration's namespace.
    SecretKeyRef {
        /// Secret name.
        name: String,
        /// Key in the Secret.
        key: String,
    },
}

/// A volume mounted into the step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    /// Volume name (unique within the step).
    pub name: String,
    /// Absolute path in the container.
    pub mount_path: String,
    /// Mounted read-only.
    pub read_only: bool,
    /// What backs it.
    pub source: MountSource,
}

/// What backs a mount.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MountSource {
    /// The Migration's workspace PVC (`<name>-workspace`).
    Workspace,
    /// One ConfigMap key, as a file of the same name.
    ConfigMapKey {
        /// ConfigMap name.
        name: String,
        /// Key, also the file name.
        key: String,
    },
    /// A user's PersistentVolumeClaim.
    Claim {
        /// Claim name.
        claim_name: String,
    },
}

/// The container of `step` for `mig`.
#[must_use]
pub fn step_container(mig: &Migration, step: Step) -> StepSpec {
    let image = mig
        .spec
        .agent
        .image
        .clone()
        .unwrap_or_else(|| DEFAULT_AGENT_IMAGE.to_string());
    let mut spec = StepSpec {
        image,
        command: ["python", "-m", "datamigrate_agent"]
            .map(String::from)
            .to_vec(),
        args: vec![
            step.as_str().to_string(),
            "--workspace".into(),
            WORKSPACE_DIR.into(),
        ],
        env: common_env(mig, step),
        mounts: vec![workspace_mount()],
    };
    match step {
        Step::Extract => add_extract(mig, &mut spec),
        Step::Migrate => add_migrate(mig, &mut spec),
        Step::Publish => add_publish(mig, &mut spec),
    }
    spec
}

/// Name of the Migration's workspace PVC.
#[must_use]
pub fn workspace_claim_name(mig_name: &str) -> String {
    format!("{mig_name}-workspace")
}

/// Name of the Migration's progress ConfigMap.
#[must_use]
pub fn progress_configmap_name(mig_name: &str) -> String {
    format!("{mig_name}-progress")
}

/// Name of the ServiceAccount the step pods run as.
#[must_use]
pub fn agent_service_account_name(mig_name: &str) -> String {
    format!("{mig_name}-agent")
}

/// The Secrets a Migration references, by name (sorted, unique).
#[must_use]
pub fn referenced_secrets(mig: &Migration) -> Vec<String> {
    let mut names: Vec<String> = [Step::Extract, Step::Migrate, Step::Publish]
        .into_iter()
        .flat_map(|s| step_container(mig, s).env)
        .filter_map(|e| match e.value {
            EnvValue::SecretKeyRef { name, .. } => Some(name),
            EnvValue::Literal(_) => None,
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The `(secret, key)` pairs a Migration references, sorted and unique.
#[must_use]
pub fn referenced_secret_keys(mig: &Migration) -> Vec<(String, String)> {
    let mut keys: Vec<(String, String)> = [Step::Extract, Step::Migrate, Step::Publish]
        .into_iter()
        .flat_map(|s| step_container(mig, s).env)
        .filter_map(|e| match e.value {
            EnvValue::SecretKeyRef { name, key } => Some((name, key)),
            EnvValue::Literal(_) => None,
        })
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

fn common_env(mig: &Migration, step: Step) -> Vec<EnvEntry> {
    let name = mig.metadata.name.clone().unwrap_or_default();
    let namespace = mig.metadata.namespace.clone().unwrap_or_default();
    vec![
        literal(ENV_MIGRATION, &name),
        literal(ENV_NAMESPACE, &namespace),
        literal(ENV_STEP, step.as_str()),
        literal(ENV_PROGRESS_CONFIGMAP, &progress_configmap_name(&name)),
    ]
}

fn add_extract(mig: &Migration, spec: &mut StepSpec) {
    if let Some(server) = &mig.spec.source.sql_server {
        add_server_args(server, spec);
    } else if let Some(script) = &mig.spec.source.script {
        add_script(script, spec);
    }
}

fn add_server_args(server: &SqlServerSource, spec: &mut StepSpec) {
    push(spec, "--server", &server.host);
    push(spec, "--port", &server.port.to_string());
    push(spec, "--database", &server.database);
    for schema in &server.schemas {
        push(spec, "--schema", schema);
    }
    for pattern in &server.include {
        push(spec, "--include", pattern);
    }
    for pattern in &server.exclude {
        push(spec, "--exclude", pattern);
    }
    let encrypt = if server.encrypt {
        "--encrypt"
    } else {
        "--no-encrypt"
    };
    spec.args.push(encrypt.into());
    if server.trust_server_certificate {
        spec.args.push("--trust-server-certificate".into());
    }
    let creds = &server.credentials_secret_ref;
    spec.env
        .push(secret(ENV_SOURCE_USER, &creds.name, &creds.username_key));
    spec.env.push(secret(
        ENV_SOURCE_PASSWORD,
        &creds.name,
        &creds.password_key,
    ));
}

fn add_script(script: &ScriptSource, spec: &mut StepSpec) {
    if let Some(cm) = &script.config_map_key_ref {
        push(spec, "--script", &format!("{SOURCE_DIR}/{}", cm.key));
        spec.mounts.push(Mount {
            name: VOLUME_SOURCE.into(),
            mount_path: SOURCE_DIR.into(),
            read_only: true,
            source: MountSource::ConfigMapKey {
                name: cm.name.clone(),
                key: cm.key.clone(),
            },
        });
    } else if let Some(file) = &script.volume {
        push(spec, "--script", &format!("{SOURCE_DIR}/{}", file.path));
        spec.mounts.push(Mount {
            name: VOLUME_SOURCE.into(),
            mount_path: SOURCE_DIR.into(),
            read_only: true,
            source: MountSource::Claim {
                claim_name: file.claim_name.clone(),
            },
        });
    }
}

fn add_migrate(mig: &Migration, spec: &mut StepSpec) {
    let target = &mig.spec.target;
    let agent = &mig.spec.agent;
    push(spec, "--target", target.dialect.as_str());
    push(spec, "--project-name", &target.project_name);
    if let Some(schema) = &target.schema {
        push(spec, "--schema", schema);
    }
    push(spec, "--materialization", target.materialization.as_str());
    if !mig.spec.validation.enabled {
        spec.args.push("--no-validate".into());
    }
    push(spec, "--model-provider", agent.model_provider.as_str());
    if let Some(model) = &agent.model {
        push(spec, "--model", model);
    }
    if let Some(url) = &agent.base_url {
        push(spec, "--base-url", url);
    }
    push(
        spec,
        "--max-repair-attempts",
        &agent.max_repair_attempts.to_string(),
    );
    spec.env.push(literal(
        ENV_VALIDATION_ENGINE,
        mig.spec.validation.engine.as_str(),
    ));
    if agent.model_provider != crate::crd::ModelProvider::None
        && let Some(key) = &agent.api_key_secret_ref
    {
        spec.env.push(secret(ENV_LLM_API_KEY, &key.name, &key.key));
    }
}

fn add_publish(mig: &Migration, spec: &mut StepSpec) {
    match &mig.spec.output {
        Some(OutputSpec { git: Some(git), .. }) => {
            push(spec, "--git-url", &git.url);
            push(spec, "--branch", &git.branch);
            if let Some(path) = &git.path {
                push(spec, "--path", path);
            }
            if let Some(creds) = &git.credentials_secret_ref {
                spec.env
                    .push(secret(ENV_GIT_USERNAME, &creds.name, &creds.username_key));
                spec.env
                    .push(secret(ENV_GIT_PASSWORD, &creds.name, &creds.password_key));
            }
        }
        Some(OutputSpec {
            volume: Some(volume),
            ..
        }) => {
            let dir = match &volume.path {
                Some(path) => format!("{OUTPUT_DIR}/{path}"),
                None => OUTPUT_DIR.to_string(),
            };
            push(spec, "--volume-dir", &dir);
            spec.mounts.push(Mount {
                name: VOLUME_OUTPUT.into(),
                mount_path: OUTPUT_DIR.into(),
                read_only: false,
                source: MountSource::Claim {
                    claim_name: volume.claim_name.clone(),
                },
            });
        }
        _ => {}
    }
}

fn workspace_mount() -> Mount {
    Mount {
        name: VOLUME_WORKSPACE.into(),
        mount_path: WORKSPACE_DIR.into(),
        read_only: false,
        source: MountSource::Workspace,
    }
}

fn push(spec: &mut StepSpec, flag: &str, value: &str) {
    spec.args.push(flag.to_string());
    spec.args.push(value.to_string());
}

fn literal(name: &str, value: &str) -> EnvEntry {
    EnvEntry {
        name: name.into(),
        value: EnvValue::Literal(value.into()),
    }
}

fn secret(name: &str, secret: &str, key: &str) -> EnvEntry {
    EnvEntry {
        name: name.into(),
        value: EnvValue::SecretKeyRef {
            name: secret.into(),
            key: key.into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{full_migration, script_migration};

    fn env_names(spec: &StepSpec) -> Vec<&str> {
        spec.env.iter().map(|e| e.name.as_str()).collect()
    }

    fn secret_names(spec: &StepSpec) -> Vec<&str> {
        spec.env
            .iter()
            .filter(|e| matches!(e.value, EnvValue::SecretKeyRef { .. }))
            .map(|e| e.name.as_str())
            .collect()
    }

    #[test]
    fn script_extract_reads_the_mounted_configmap_key() {
        let spec = step_container(&script_migration(), Step::Extract);
        assert_eq!(spec.command, ["python", "-m", "datamigrate_agent"]);
        assert_eq!(
            spec.args,
            [
                "extract",
                "--workspace",
                "/workspace",
                "--script",
                "/source/schema.sql"
            ]
        );
        assert_eq!(spec.mounts.len(), 2);
        assert_eq!(
            spec.mounts[1].source,
            MountSource::ConfigMapKey {
                name: "minimal-script".into(),
                key: "schema.sql".into()
            }
        );
        assert!(spec.mounts[1].read_only);
        assert!(secret_names(&spec).is_empty());
    }

    #[test]
    fn every_step_gets_the_common_environment() {
        let spec = step_container(&script_migration(), Step::Migrate);
        let names = env_names(&spec);
        for name in [
            ENV_MIGRATION,
            ENV_NAMESPACE,
            ENV_STEP,
            ENV_PROGRESS_CONFIGMAP,
        ] {
            assert!(names.contains(&name), "{name} missing");
        }
        assert!(
            spec.env
                .contains(&literal(ENV_PROGRESS_CONFIGMAP, "minimal-progress"))
        );
        assert!(spec.env.contains(&literal(ENV_STEP, "migrate")));
    }

    #[test]
    fn live_extract_passes_server_flags_and_only_the_source_login() {
        let spec = step_container(&full_migration(), Step::Extract);
        let args = spec.args.join(" ");
        assert!(args.contains("--server sql.example.com --port 1433 --database Northwind"));
        assert!(args.contains("--schema dbo --schema sales"));
        assert!(args.contains("--include dbo.* --exclude dbo.tmp_*"));
        assert!(args.ends_with("--encrypt --trust-server-certificate"));
        assert_eq!(secret_names(&spec), [ENV_SOURCE_USER, ENV_SOURCE_PASSWORD]);
    }

    #[test]
    fn migrate_gets_only_the_llm_key_and_agent_flags() {
        let spec = step_container(&full_migration(), Step::Migrate);
        let args = spec.args.join(" ");
        assert!(args.starts_with("migrate --workspace /workspace --target snowflake"));
        assert!(args.contains("--project-name northwind --schema analytics"));
        assert!(args.contains("--materialization table --model-provider anthropic"));
        assert!(args.contains("--model claude-sonnet-4-5 --max-repair-attempts 5"));
        assert_eq!(secret_names(&spec), [ENV_LLM_API_KEY]);
        assert_eq!(spec.image, "registry.example.com/agent:1.2.3");
    }

    #[test]
    fn migrate_without_provider_gets_no_secret_and_can_skip_validation() {
        let mut mig = script_migration();
        mig.spec.validation.enabled = false;
        let spec = step_container(&mig, Step::Migrate);
        assert!(secret_names(&spec).is_empty());
        assert!(spec.args.contains(&"--no-validate".to_string()));
        assert!(spec.args.contains(&"none".to_string()));
        assert_eq!(spec.image, DEFAULT_AGENT_IMAGE);
    }

    #[test]
    fn publish_to_git_gets_only_the_git_credentials() {
        let spec = step_container(&full_migration(), Step::Publish);
        let args = spec.args.join(" ");
        assert!(args.contains("--git-url https://git.example.com/data/dbt.git --branch migr"));
        assert!(args.ends_with("--path projects/northwind"));
        assert_eq!(secret_names(&spec), [ENV_GIT_USERNAME, ENV_GIT_PASSWORD]);
    }

    #[test]
    fn publish_to_a_volume_mounts_the_claim_writable() {
        let mut mig = script_migration();
        mig.spec.output = serde_json::from_value(
            serde_json::json!({"volume": {"claimName": "projects", "path": "nw"}}),
        )
        .unwrap();
        let spec = step_container(&mig, Step::Publish);
        assert!(
            spec.args
                .ends_with(&["--volume-dir".to_string(), "/output/nw".to_string()])
        );
        let output = spec
            .mounts
            .iter()
            .find(|m| m.name == VOLUME_OUTPUT)
            .unwrap();
        assert!(!output.read_only);
        assert_eq!(
            output.source,
            MountSource::Claim {
                claim_name: "projects".into()
            }
        );
    }

    #[test]
    fn publish_runs_only_when_an_output_is_set() {
        assert_eq!(
            steps_for(&script_migration()),
            [Step::Extract, Step::Migrate]
        );
        assert_eq!(
            steps_for(&full_migration()),
            [Step::Extract, Step::Migrate, Step::Publish]
        );
    }

    #[test]
    fn referenced_secrets_lists_each_secret_once() {
        assert_eq!(
            referenced_secrets(&full_migration()),
            ["git-push", "llm", "northwind-login"]
        );
        assert!(referenced_secrets(&script_migration()).is_empty());
        assert_eq!(referenced_secret_keys(&full_migration()).len(), 5);
    }
}
