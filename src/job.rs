//! Pure `Migration + step + attempt -> Job` builder.
//!
//! The step's container comes from [`crate::steps::step_container`]; this module adds what only
//! a cluster needs: the deterministic name, owner reference, labels, bounds (`backoffLimit`,
//! `activeDeadlineSeconds`, `podFailurePolicy`), the restricted security context, the pod
//! template override merged over the chart's defaults, and the volumes behind the mounts.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{
    Job, JobSpec, PodFailurePolicy, PodFailurePolicyOnExitCodesRequirement,
    PodFailurePolicyOnPodConditionsPattern, PodFailurePolicyRule,
};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapVolumeSource, Container, EmptyDirVolumeSource, EnvVar, EnvVarSource,
    KeyToPath, PersistentVolumeClaimVolumeSource, PodSecurityContext, PodSpec, PodTemplateSpec,
    SeccompProfile, SecretKeySelector, SecurityContext, Volume, VolumeMount,
};
use kube::api::ObjectMeta;
use kube::{Resource, ResourceExt};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::crd::{Migration, PodTemplateOverride};
use crate::steps::{
    EnvValue, Mount, MountSource, Step, StepSpec, agent_service_account_name, step_container,
    workspace_claim_name,
};
use crate::{Error, Result};

/// Label: the Migration's name (hashed when longer than a label value may be).
pub const LABEL_MIGRATION: &str = "datamigrate.ai/migration";
/// Label: the step.
pub const LABEL_STEP: &str = "datamigrate.ai/step";
/// Label: the attempt number.
pub const LABEL_ATTEMPT: &str = "datamigrate.ai/attempt";
/// Label: who manages the object.
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// Value of [`LABEL_MANAGED_BY`].
pub const MANAGED_BY: &str = "datamigrate-operator";
/// Annotation on a Job: the spec generation it was built from.
pub const ANNOTATION_GENERATION: &str = "datamigrate.ai/generation";
/// Name of the step container (the pod failure policy and the chart defaults use it).
pub const CONTAINER_NAME: &str = "step";
/// Exit status the agent uses for bad input: the Job fails at once, no retry.
pub const EXIT_PERMANENT: i32 = 65;
/// Pod retries within one Job when the defaults say nothing.
pub const DEFAULT_BACKOFF_LIMIT: i32 = 2;
/// Longest Kubernetes name that is also a valid label value.
const MAX_NAME: usize = 63;

/// What the chart passes as `--work-pod-defaults`: the defaults of every step Job.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkPodDefaults {
    /// Image used when a Migration sets no `spec.agent.image`.
    #[serde(default)]
    pub image: Option<String>,
    /// Image pull policy of the step container.
    #[serde(default)]
    pub image_pull_policy: Option<String>,
    /// `ttlSecondsAfterFinished` of every Job.
    #[serde(default)]
    pub ttl_seconds_after_finished: Option<i32>,
    /// `backoffLimit` of every Job.
    #[serde(default)]
    pub backoff_limit: Option<i32>,
    /// Used only when a Migration sets no step timeout (it always has one by default).
    #[serde(default)]
    pub active_deadline_seconds: Option<i64>,
    /// Pod template defaults: labels, annotations, pod fields and container `step`.
    #[serde(default)]
    pub template: Option<PodTemplateSpec>,
}

impl WorkPodDefaults {
    /// Reads the defaults from a YAML (or JSON) file.
    ///
    /// # Errors
    /// When the file cannot be read or parsed.
    pub fn from_file(path: &std::path::Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::ReadConfig {
            path: path.display().to_string(),
            source: Box::new(source),
        })?;
        serde_yaml::from_str(&text).map_err(|source| Error::ReadConfig {
            path: path.display().to_string(),
            source: Box::new(source),
        })
    }
}

/// A name of at most 63 characters: `base-suffix`, with `base` cut and an 8-hex hash of the
/// whole name inserted when it would be longer.
#[must_use]
pub fn bounded_name(base: &str, suffix: &str) -> String {
    let full = if suffix.is_empty() {
        base.to_string()
    } else {
        format!("{base}-{suffix}")
    };
    if full.len() <= MAX_NAME {
        return full;
    }
    let hash = short_hash(&full);
    let tail = if suffix.is_empty() {
        hash
    } else {
        format!("{hash}-{suffix}")
    };
    let keep = MAX_NAME.saturating_sub(tail.len() + 1);
    let head: String = base.chars().take(keep).collect();
    format!("{}-{tail}", head.trim_end_matches(['-', '.']))
}

/// The Job of `step`, attempt `attempt`: `<mig>-<step>-<attempt>`, bounded to 63 characters.
#[must_use]
pub fn job_name_for(mig_name: &str, step: Step, attempt: i32) -> String {
    bounded_name(mig_name, &format!("{}-{attempt}", step.as_str()))
}

/// Labels every object owned by a Migration carries.
#[must_use]
pub fn owned_labels(mig_name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_MANAGED_BY.to_string(), MANAGED_BY.to_string()),
        (LABEL_MIGRATION.to_string(), bounded_name(mig_name, "")),
    ])
}

/// The Job running `step` of `mig`, attempt `attempt`.
///
/// # Errors
/// [`Error::InvalidSpec`] when the Migration has no name or uid (it is not from the API).
pub fn build_job(
    mig: &Migration,
    step: Step,
    attempt: i32,
    defaults: &WorkPodDefaults,
) -> Result<Job> {
    let owner = mig
        .controller_owner_ref(&())
        .ok_or_else(|| Error::InvalidSpec {
            message: "metadata.name and metadata.uid are required".into(),
        })?;
    let name = mig.name_any();
    let mut labels = owned_labels(&name);
    labels.insert(LABEL_STEP.into(), step.as_str().into());
    labels.insert(LABEL_ATTEMPT.into(), attempt.to_string());
    let generation = mig.metadata.generation.unwrap_or_default().to_string();
    let metadata = ObjectMeta {
        name: Some(job_name_for(&name, step, attempt)),
        namespace: mig.namespace(),
        labels: Some(labels.clone()),
        annotations: Some(BTreeMap::from([(ANNOTATION_GENERATION.into(), generation)])),
        owner_references: Some(vec![owner]),
        ..ObjectMeta::default()
    };
    let spec = JobSpec {
        backoff_limit: Some(defaults.backoff_limit.unwrap_or(DEFAULT_BACKOFF_LIMIT)),
        active_deadline_seconds: Some(mig.spec.agent.step_timeout_seconds)
            .filter(|s| *s > 0)
            .or(defaults.active_deadline_seconds),
        ttl_seconds_after_finished: defaults.ttl_seconds_after_finished,
        pod_failure_policy: Some(pod_failure_policy()),
        suspend: Some(mig.spec.suspend),
        template: pod_template(mig, step, defaults, labels),
        ..JobSpec::default()
    };
    Ok(Job {
        metadata,
        spec: Some(spec),
        status: None,
    })
}

/// Exit 65 fails the Job at once; a disrupted pod (eviction, preemption) is not counted.
fn pod_failure_policy() -> PodFailurePolicy {
    let permanent = PodFailurePolicyRule {
        action: "FailJob".into(),
        on_exit_codes: Some(PodFailurePolicyOnExitCodesRequirement {
            container_name: Some(CONTAINER_NAME.into()),
            operator: "In".into(),
            values: vec![EXIT_PERMANENT],
        }),
        on_pod_conditions: None,
    };
    let disruption = PodFailurePolicyRule {
        action: "Ignore".into(),
        on_exit_codes: None,
        on_pod_conditions: Some(vec![PodFailurePolicyOnPodConditionsPattern {
            type_: "DisruptionTarget".into(),
            status: Some("True".into()),
        }]),
    };
    PodFailurePolicy {
        rules: vec![permanent, disruption],
    }
}

fn pod_template(
    mig: &Migration,
    step: Step,
    defaults: &WorkPodDefaults,
    labels: BTreeMap<String, String>,
) -> PodTemplateSpec {
    let base = defaults.template.clone().unwrap_or_default();
    let over = mig.spec.pod_template.clone().unwrap_or_default();
    let mut meta = base.metadata.unwrap_or_default();
    meta.labels.get_or_insert_default().extend(labels);
    if let Some(annotations) = over.annotations.clone() {
        meta.annotations.get_or_insert_default().extend(annotations);
    }
    let mut step_spec = step_container(mig, step);
    if mig.spec.agent.image.is_none()
        && let Some(image) = &defaults.image
    {
        step_spec.image.clone_from(image);
    }
    let pod = pod_spec(
        mig,
        &step_spec,
        defaults,
        base.spec.unwrap_or_default(),
        &over,
    );
    PodTemplateSpec {
        metadata: Some(meta),
        spec: Some(pod),
    }
}

fn pod_spec(
    mig: &Migration,
    step: &StepSpec,
    defaults: &WorkPodDefaults,
    mut pod: PodSpec,
    over: &PodTemplateOverride,
) -> PodSpec {
    let base_container = pod
        .containers
        .iter()
        .find(|c| c.name == CONTAINER_NAME)
        .or(pod.containers.first())
        .cloned()
        .unwrap_or_default();
    pod.containers = vec![container(step, defaults, base_container, over)];
    pod.restart_policy = Some("Never".into());
    pod.service_account_name = Some(
        over.service_account_name
            .clone()
            .unwrap_or_else(|| agent_service_account_name(&mig.name_any())),
    );
    pod.security_context = over
        .security_context
        .clone()
        .or(pod.security_context)
        .or_else(restricted_pod);
    if let Some(selector) = over.node_selector.clone() {
        pod.node_selector.get_or_insert_default().extend(selector);
    }
    replace_if_set(&mut pod.tolerations, &over.tolerations);
    replace_if_set(&mut pod.affinity, &over.affinity);
    replace_if_set(&mut pod.image_pull_secrets, &over.image_pull_secrets);
    let mut volumes = volumes_for(&mig.name_any(), &step.mounts);
    volumes.extend(pod.volumes.take().unwrap_or_default());
    pod.volumes = Some(volumes);
    pod
}

fn container(
    step: &StepSpec,
    defaults: &WorkPodDefaults,
    mut base: Container,
    over: &PodTemplateOverride,
) -> Container {
    let mut env = env_vars(step);
    let extra = base.env.take().unwrap_or_default();
    env.extend(
        extra
            .into_iter()
            .filter(|e| !step.env.iter().any(|s| s.name == e.name)),
    );
    let mut mounts: Vec<VolumeMount> = step.mounts.iter().map(volume_mount).collect();
    mounts.push(VolumeMount {
        name: "tmp".into(),
        mount_path: "/tmp".into(),
        ..VolumeMount::default()
    });
    Container {
        name: CONTAINER_NAME.into(),
        image: Some(step.image.clone()),
        image_pull_policy: defaults
            .image_pull_policy
            .clone()
            .or(base.image_pull_policy),
        command: Some(step.command.clone()),
        args: Some(step.args.clone()),
        env: Some(env),
        volume_mounts: Some(mounts),
        resources: over.resources.clone().or(base.resources),
        security_context: over
            .container_security_context
            .clone()
            .or(base.security_context)
            .or_else(restricted_container),
        termination_message_policy: Some("FallbackToLogsOnError".into()),
        ..Container::default()
    }
}

fn replace_if_set<T: Clone>(field: &mut Option<T>, over: &Option<T>) {
    if over.is_some() {
        field.clone_from(over);
    }
}

/// The restricted Pod Security Standard at pod level.
fn restricted_pod() -> Option<PodSecurityContext> {
    Some(PodSecurityContext {
        run_as_non_root: Some(true),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            ..SeccompProfile::default()
        }),
        ..PodSecurityContext::default()
    })
}

/// The restricted Pod Security Standard at container level, with a read-only root filesystem
/// (the step writes only to `/workspace`, `/output` and the `/tmp` emptyDir).
fn restricted_container() -> Option<SecurityContext> {
    Some(SecurityContext {
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(true),
        run_as_non_root: Some(true),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            ..Capabilities::default()
        }),
        ..SecurityContext::default()
    })
}

fn env_vars(step: &StepSpec) -> Vec<EnvVar> {
    step.env
        .iter()
        .map(|e| match &e.value {
            EnvValue::Literal(v) => EnvVar {
                name: e.name.clone(),
                value: Some(v.clone()),
                value_from: None,
            },
            EnvValue::SecretKeyRef { name, key } => EnvVar {
                name: e.name.clone(),
                value: None,
                value_from: Some(EnvVarSource {
                    secret_key_ref: Some(SecretKeySelector {
                        name: name.clone(),
                        key: key.clone(),
                        optional: Some(false),
                    }),
                    ..EnvVarSource::default()
                }),
            },
        })
        .collect()
}

fn volume_mount(mount: &Mount) -> VolumeMount {
    VolumeMount {
        name: mount.name.clone(),
        mount_path: mount.mount_path.clone(),
        read_only: Some(mount.read_only),
        ..VolumeMount::default()
    }
}

fn volumes_for(mig_name: &str, mounts: &[Mount]) -> Vec<Volume> {
    let mut volumes: Vec<Volume> = mounts.iter().map(|m| volume(mig_name, m)).collect();
    volumes.push(Volume {
        name: "tmp".into(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Volume::default()
    });
    volumes
}

fn volume(mig_name: &str, mount: &Mount) -> Volume {
    let mut volume = Volume {
        name: mount.name.clone(),
        ..Volume::default()
    };
    match &mount.source {
        MountSource::Workspace => {
            volume.persistent_volume_claim = Some(PersistentVolumeClaimVolumeSource {
                claim_name: workspace_claim_name(mig_name),
                read_only: Some(false),
            });
        }
        MountSource::Claim { claim_name } => {
            volume.persistent_volume_claim = Some(PersistentVolumeClaimVolumeSource {
                claim_name: claim_name.clone(),
                read_only: Some(mount.read_only),
            });
        }
        MountSource::ConfigMapKey { name, key } => {
            volume.config_map = Some(ConfigMapVolumeSource {
                name: name.clone(),
                items: Some(vec![KeyToPath {
                    key: key.clone(),
                    path: key.clone(),
                    ..Default::default()
                }]),
                ..ConfigMapVolumeSource::default()
            });
        }
    }
    volume
}

fn short_hash(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    hex::encode(&digest[..4])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{MigrationExt, full_migration, script_migration};

    fn pod(job: &Job) -> &PodSpec {
        job.spec.as_ref().unwrap().template.spec.as_ref().unwrap()
    }

    fn step_container_of(job: &Job) -> &Container {
        &pod(job).containers[0]
    }

    #[test]
    fn job_name_is_migration_step_attempt() {
        assert_eq!(
            job_name_for("minimal", Step::Migrate, 2),
            "minimal-migrate-2"
        );
    }

    #[test]
    fn long_names_are_cut_and_hashed_to_63_characters() {
        let long = "a".repeat(80);
        let name = job_name_for(&long, Step::Publish, 10);
        assert_eq!(name.len(), 63);
        assert!(name.ends_with("-publish-10"));
        assert_ne!(name, job_name_for(&"a".repeat(81), Step::Publish, 10));
        assert_eq!(name, job_name_for(&long, Step::Publish, 10));
        assert!(bounded_name(&long, "").len() <= 63);
    }

    #[test]
    fn job_is_owned_labelled_and_bounded() {
        let job = build_job(
            &script_migration(),
            Step::Extract,
            1,
            &WorkPodDefaults::default(),
        )
        .unwrap();
        let owner = &job.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.controller),
            ("Migration", Some(true))
        );
        let labels = job.metadata.labels.as_ref().unwrap();
        assert_eq!(labels[LABEL_MIGRATION], "minimal");
        assert_eq!(labels[LABEL_STEP], "extract");
        assert_eq!(labels[LABEL_ATTEMPT], "1");
        let spec = job.spec.as_ref().unwrap();
        assert_eq!(spec.backoff_limit, Some(DEFAULT_BACKOFF_LIMIT));
        assert_eq!(spec.active_deadline_seconds, Some(3600));
        let rule = &spec.pod_failure_policy.as_ref().unwrap().rules[0];
        assert_eq!(rule.action, "FailJob");
        assert_eq!(rule.on_exit_codes.as_ref().unwrap().values, [65]);
        assert_eq!(pod(&job).restart_policy.as_deref(), Some("Never"));
        assert_eq!(
            pod(&job).service_account_name.as_deref(),
            Some("minimal-agent")
        );
    }

    #[test]
    fn job_without_owner_identity_is_refused() {
        let mut mig = script_migration();
        mig.metadata.uid = None;
        assert!(build_job(&mig, Step::Extract, 1, &WorkPodDefaults::default()).is_err());
    }

    #[test]
    fn pods_are_restricted_by_default() {
        let job = build_job(
            &script_migration(),
            Step::Extract,
            1,
            &WorkPodDefaults::default(),
        )
        .unwrap();
        let pod_sc = pod(&job).security_context.as_ref().unwrap();
        assert_eq!(pod_sc.run_as_non_root, Some(true));
        assert_eq!(
            pod_sc.seccomp_profile.as_ref().unwrap().type_,
            "RuntimeDefault"
        );
        let sc = step_container_of(&job).security_context.as_ref().unwrap();
        assert_eq!(sc.allow_privilege_escalation, Some(false));
        assert_eq!(
            sc.capabilities.as_ref().unwrap().drop.as_ref().unwrap(),
            &["ALL"]
        );
    }

    #[test]
    fn workspace_and_source_configmap_are_mounted() {
        let job = build_job(
            &script_migration(),
            Step::Extract,
            1,
            &WorkPodDefaults::default(),
        )
        .unwrap();
        let volumes = pod(&job).volumes.as_ref().unwrap();
        let ws = volumes.iter().find(|v| v.name == "workspace").unwrap();
        assert_eq!(
            ws.persistent_volume_claim.as_ref().unwrap().claim_name,
            "minimal-workspace"
        );
        let src = volumes.iter().find(|v| v.name == "source").unwrap();
        let cm = src.config_map.as_ref().unwrap();
        assert_eq!(cm.name, "minimal-script");
        assert_eq!(cm.items.as_ref().unwrap()[0].path, "schema.sql");
        let mounts = step_container_of(&job).volume_mounts.as_ref().unwrap();
        assert!(
            mounts
                .iter()
                .any(|m| m.mount_path == "/source" && m.read_only == Some(true))
        );
    }

    #[test]
    fn each_job_carries_only_its_own_secret_refs() {
        let mig = full_migration();
        let secrets_of = |step| {
            let job = build_job(&mig, step, 1, &WorkPodDefaults::default()).unwrap();
            let mut names: Vec<String> = step_container_of(&job)
                .env
                .iter()
                .flatten()
                .filter_map(|e| e.value_from.as_ref()?.secret_key_ref.as_ref())
                .map(|s| s.name.clone())
                .collect();
            names.dedup();
            names
        };
        assert_eq!(secrets_of(Step::Extract), ["northwind-login"]);
        assert_eq!(secrets_of(Step::Migrate), ["llm"]);
        assert_eq!(secrets_of(Step::Publish), ["git-push"]);
    }

    fn chart_defaults() -> WorkPodDefaults {
        serde_yaml::from_str(
            r#"
image: ghcr.io/datamigrate-ai/datamigrate-agent:9.9.9
imagePullPolicy: IfNotPresent
ttlSecondsAfterFinished: 86400
backoffLimit: 4
template:
  metadata:
    labels: {team: platform}
    annotations: {from: chart}
  spec:
    securityContext: {runAsNonRoot: true, runAsUser: 10001, fsGroup: 10001}
    nodeSelector: {kubernetes.io/os: linux}
    tolerations: [{key: dedicated, operator: Exists}]
    containers:
      - name: step
        resources: {requests: {cpu: 500m}}
        env: [{name: TZ, value: UTC}, {name: DATAMIGRATE_STEP, value: wrong}]
"#,
        )
        .unwrap()
    }

    #[test]
    fn chart_defaults_apply_where_the_migration_says_nothing() {
        let job = build_job(&script_migration(), Step::Migrate, 1, &chart_defaults()).unwrap();
        let spec = job.spec.as_ref().unwrap();
        assert_eq!(
            (spec.backoff_limit, spec.ttl_seconds_after_finished),
            (Some(4), Some(86400))
        );
        let c = step_container_of(&job);
        assert_eq!(
            c.image.as_deref(),
            Some("ghcr.io/datamigrate-ai/datamigrate-agent:9.9.9")
        );
        assert_eq!(c.image_pull_policy.as_deref(), Some("IfNotPresent"));
        assert!(
            c.resources
                .as_ref()
                .unwrap()
                .requests
                .as_ref()
                .unwrap()
                .contains_key("cpu")
        );
        let env = c.env.as_ref().unwrap();
        assert!(env.iter().any(|e| e.name == "TZ"));
        let step_envs: Vec<_> = env
            .iter()
            .filter(|e| e.name == "DATAMIGRATE_STEP")
            .collect();
        assert_eq!(step_envs.len(), 1);
        assert_eq!(step_envs[0].value.as_deref(), Some("migrate"));
        assert_eq!(
            pod(&job).security_context.as_ref().unwrap().run_as_user,
            Some(10001)
        );
        let meta = job
            .spec
            .as_ref()
            .unwrap()
            .template
            .metadata
            .as_ref()
            .unwrap();
        assert_eq!(meta.labels.as_ref().unwrap()["team"], "platform");
        assert_eq!(meta.labels.as_ref().unwrap()[LABEL_STEP], "migrate");
    }

    #[test]
    fn pod_template_override_wins_over_chart_defaults() {
        let mig = full_migration();
        let job = build_job(&mig, Step::Migrate, 3, &chart_defaults()).unwrap();
        let c = step_container_of(&job);
        assert_eq!(c.image.as_deref(), Some("registry.example.com/agent:1.2.3"));
        assert!(
            c.resources
                .as_ref()
                .unwrap()
                .limits
                .as_ref()
                .unwrap()
                .contains_key("memory")
        );
        let p = pod(&job);
        let selector = p.node_selector.as_ref().unwrap();
        assert_eq!(selector["pool"], "batch");
        assert_eq!(selector["kubernetes.io/os"], "linux");
        assert_eq!(
            p.tolerations.as_ref().unwrap()[0].key.as_deref(),
            Some("batch")
        );
        let meta = job
            .spec
            .as_ref()
            .unwrap()
            .template
            .metadata
            .as_ref()
            .unwrap();
        let annotations = meta.annotations.as_ref().unwrap();
        assert_eq!(
            (annotations["team"].as_str(), annotations["from"].as_str()),
            ("data", "chart")
        );
        assert_eq!(
            job.spec.as_ref().unwrap().active_deadline_seconds,
            Some(900)
        );
    }

    #[test]
    fn service_account_override_replaces_the_agent_account() {
        let mut mig = script_migration().named("m");
        mig.spec.pod_template = Some(PodTemplateOverride {
            service_account_name: Some("custom".into()),
            ..Default::default()
        });
        let job = build_job(&mig, Step::Extract, 1, &WorkPodDefaults::default()).unwrap();
        assert_eq!(pod(&job).service_account_name.as_deref(), Some("custom"));
    }

    #[test]
    fn suspended_migration_builds_a_suspended_job() {
        let mut mig = script_migration();
        mig.spec.suspend = true;
        let job = build_job(&mig, Step::Extract, 1, &WorkPodDefaults::default()).unwrap();
        assert_eq!(job.spec.unwrap().suspend, Some(true));
    }

    #[test]
    fn unknown_keys_in_the_defaults_file_are_refused() {
        assert!(serde_yaml::from_str::<WorkPodDefaults>("imagee: x").is_err());
    }
}
