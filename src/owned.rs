//! Pure builders of the objects a Migration owns besides its Jobs: the workspace PVC, the
//! progress ConfigMap, and the ServiceAccount, Role and RoleBinding that let the step pods write
//! that one ConfigMap and nothing else. All carry a controller owner reference, so deleting the
//! Migration deletes them.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolumeClaim, PersistentVolumeClaimSpec, ServiceAccount,
    VolumeResourceRequirements,
};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::ObjectMeta;
use kube::{Resource, ResourceExt};

use crate::crd::Migration;
use crate::job::owned_labels;
use crate::steps::{agent_service_account_name, progress_configmap_name, workspace_claim_name};
use crate::{Error, Result};

/// Key of the progress ConfigMap the agent patches while it runs.
pub const PROGRESS_KEY: &str = "progress.json";
/// Key of the progress ConfigMap holding the per-object summary after migrate.
pub const SUMMARY_KEY: &str = "summary.json";
/// Key of the progress ConfigMap holding `publish.json` (location and commit) after publish.
pub const PUBLISH_KEY: &str = "publish.json";

/// Workspace volume settings (from the controller's flags).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkspaceSettings {
    /// Requested size, a Kubernetes quantity.
    pub size: String,
    /// Storage class; the cluster default when `None`.
    pub storage_class: Option<String>,
}

impl Default for WorkspaceSettings {
    fn default() -> Self {
        Self {
            size: "1Gi".into(),
            storage_class: None,
        }
    }
}

fn meta(mig: &Migration, name: String) -> Result<ObjectMeta> {
    let owner = mig
        .controller_owner_ref(&())
        .ok_or_else(|| Error::InvalidSpec {
            message: "metadata.name and metadata.uid are required".into(),
        })?;
    Ok(ObjectMeta {
        name: Some(name),
        namespace: mig.namespace(),
        labels: Some(owned_labels(&mig.name_any())),
        owner_references: Some(vec![owner]),
        ..ObjectMeta::default()
    })
}

/// The workspace PVC `<mig>-workspace`, shared by the steps.
///
/// # Errors
/// When the Migration has no name or uid.
pub fn workspace_pvc(
    mig: &Migration,
    settings: &WorkspaceSettings,
) -> Result<PersistentVolumeClaim> {
    Ok(PersistentVolumeClaim {
        metadata: meta(mig, workspace_claim_name(&mig.name_any()))?,
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".into(),
                    Quantity(settings.size.clone()),
                )])),
                limits: None,
            }),
            storage_class_name: settings.storage_class.clone(),
            ..PersistentVolumeClaimSpec::default()
        }),
        status: None,
    })
}

/// The progress ConfigMap `<mig>-progress`. Built without data: the operator's apply owns no
/// key, so the agent's patches to `progress.json` are never reverted.
///
/// # Errors
/// When the Migration has no name or uid.
pub fn progress_configmap(mig: &Migration) -> Result<ConfigMap> {
    Ok(ConfigMap {
        metadata: meta(mig, progress_configmap_name(&mig.name_any()))?,
        ..ConfigMap::default()
    })
}

/// The ServiceAccount `<mig>-agent` the step pods run as.
///
/// # Errors
/// When the Migration has no name or uid.
pub fn agent_service_account(mig: &Migration) -> Result<ServiceAccount> {
    Ok(ServiceAccount {
        metadata: meta(mig, agent_service_account_name(&mig.name_any()))?,
        ..ServiceAccount::default()
    })
}

/// The Role allowing get/patch/update of the progress ConfigMap only (`resourceNames`).
///
/// # Errors
/// When the Migration has no name or uid.
pub fn progress_role(mig: &Migration) -> Result<Role> {
    let name = mig.name_any();
    Ok(Role {
        metadata: meta(mig, agent_service_account_name(&name))?,
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec![String::new()]),
            resources: Some(vec!["configmaps".into()]),
            resource_names: Some(vec![progress_configmap_name(&name)]),
            verbs: ["get", "patch", "update"].map(String::from).to_vec(),
            ..PolicyRule::default()
        }]),
    })
}

/// The RoleBinding of [`progress_role`] to the agent ServiceAccount (and to the pod template's
/// own ServiceAccount when one is set, since the step pods then run as that one).
///
/// # Errors
/// When the Migration has no name or uid.
pub fn progress_role_binding(mig: &Migration) -> Result<RoleBinding> {
    let name = mig.name_any();
    let mut accounts = vec![agent_service_account_name(&name)];
    if let Some(sa) = mig
        .spec
        .pod_template
        .as_ref()
        .and_then(|p| p.service_account_name.clone())
        && !accounts.contains(&sa)
    {
        accounts.push(sa);
    }
    let subjects = accounts
        .into_iter()
        .map(|sa| Subject {
            kind: "ServiceAccount".into(),
            name: sa,
            namespace: mig.namespace(),
            ..Subject::default()
        })
        .collect();
    Ok(RoleBinding {
        metadata: meta(mig, agent_service_account_name(&name))?,
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "Role".into(),
            name: agent_service_account_name(&name),
        },
        subjects: Some(subjects),
    })
}

/// Whether `obj` names `mig` (this very object, by uid) among its owners: an object of an
/// earlier Migration of the same name does not.
pub fn owned_by<K: Resource>(obj: &K, mig: &Migration) -> bool {
    let uid = mig.uid();
    obj.owner_references()
        .iter()
        .any(|o| Some(&o.uid) == uid.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::PodTemplateOverride;
    use crate::fixtures::script_migration;

    #[test]
    fn role_grants_only_the_progress_configmap() {
        let role = progress_role(&script_migration()).unwrap();
        let rules = role.rules.unwrap();
        assert_eq!(rules.len(), 1);
        assert_eq!(
            rules[0].resource_names.as_deref(),
            Some(&["minimal-progress".to_string()][..])
        );
        assert_eq!(rules[0].verbs, ["get", "patch", "update"]);
        assert_eq!(
            rules[0].resources.as_deref(),
            Some(&["configmaps".to_string()][..])
        );
    }

    #[test]
    fn binding_names_the_agent_account_and_an_override_account() {
        let mut mig = script_migration();
        let binding = progress_role_binding(&mig).unwrap();
        let names: Vec<_> = binding
            .subjects
            .unwrap()
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(names, ["minimal-agent"]);
        mig.spec.pod_template = Some(PodTemplateOverride {
            service_account_name: Some("etl".into()),
            ..Default::default()
        });
        let binding = progress_role_binding(&mig).unwrap();
        let names: Vec<_> = binding
            .subjects
            .unwrap()
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(names, ["minimal-agent", "etl"]);
        assert_eq!(binding.role_ref.name, "minimal-agent");
    }

    #[test]
    fn owned_objects_carry_the_controller_owner_reference() {
        let mig = script_migration();
        let pvc = workspace_pvc(&mig, &WorkspaceSettings::default()).unwrap();
        assert_eq!(pvc.metadata.name.as_deref(), Some("minimal-workspace"));
        let owner = &pvc.metadata.owner_references.unwrap()[0];
        assert_eq!(
            (owner.name.as_str(), owner.controller),
            ("minimal", Some(true))
        );
        let cm = progress_configmap(&mig).unwrap();
        assert_eq!(cm.metadata.name.as_deref(), Some("minimal-progress"));
        assert!(cm.data.is_none());
        let storage = &pvc.spec.unwrap().resources.unwrap().requests.unwrap()["storage"];
        assert_eq!(storage.0, "1Gi");
    }
}
