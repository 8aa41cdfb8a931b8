//! Reads what reconcile decides from: the Migration's Jobs, the failed pods' termination
//! messages, the progress ConfigMap and the referenced Secrets and ConfigMaps.
//!
//! Referenced Secrets are fetched by name here, never listed or watched: the controller holds
//! no Secret in memory beyond one reconcile, and needs only `get` on Secrets. A missing Secret
//! is retried with the per-object backoff; rotation shows in `secretsHash` at the next
//! reconcile (at the latest the periodic requeue).

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Pod, Secret};
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};
use sha2::{Digest, Sha256};
use tracing::{debug, instrument};

use crate::crd::Migration;
use crate::job::{LABEL_MIGRATION, owned_labels};
use crate::owned::{PROGRESS_KEY, PUBLISH_KEY, SUMMARY_KEY, owned_by};
use crate::plan::JobObservation;
use crate::status::{InputsCheck, ProgressReport, PublishReport, SummaryReport, reason};
use crate::steps::{progress_configmap_name, referenced_secret_keys, workspace_claim_name};
use crate::{Error, Result, truncate};

/// What the agent reported through the progress ConfigMap.
#[derive(Clone, Debug, Default)]
pub struct Reports {
    /// `progress.json`.
    pub progress: Option<ProgressReport>,
    /// `summary.json`.
    pub summary: Option<SummaryReport>,
    /// `publish.json`.
    pub publish: Option<PublishReport>,
    /// Whether the ConfigMap exists at all.
    pub found: bool,
}

/// The Migration's step Jobs, listed from the API server's watch cache (`resourceVersion=0`):
/// no quorum read of etcd per reconcile. The list may trail a Job created a moment ago by this
/// or a previous controller instance; Job names are deterministic per step and attempt, so the
/// create that follows is refused as a conflict and no Job is ever created twice.
///
/// # Errors
/// [`Error::ListJobs`] when the list fails.
#[instrument(skip_all)]
pub async fn observe_jobs(client: &Client, mig: &Migration) -> Result<Vec<JobObservation>> {
    let api: Api<Job> = Api::namespaced(client.clone(), &namespace(mig));
    let selector = format!(
        "{LABEL_MIGRATION}={}",
        owned_labels(&mig.name_any())[LABEL_MIGRATION]
    );
    let jobs = api
        .list(&ListParams::default().match_any().labels(&selector))
        .await
        .map_err(|source| Error::ListJobs { source })?;
    Ok(jobs
        .items
        .iter()
        .filter(|j| owned_by(*j, mig))
        .filter_map(JobObservation::from_job)
        .collect())
}

/// The termination message of the Job's latest failed pod (`Code: message`, one line).
///
/// # Errors
/// [`Error::Observe`] when the pods cannot be listed.
#[instrument(skip_all, fields(job = %job_name))]
pub async fn termination_message(
    client: &Client,
    namespace: &str,
    job_name: &str,
) -> Result<Option<String>> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let params = ListParams::default().labels(&format!("batch.kubernetes.io/job-name={job_name}"));
    let pods = api.list(&params).await.map_err(|source| Error::Observe {
        what: "pods",
        source,
    })?;
    let mut messages: Vec<(String, String)> = pods
        .items
        .iter()
        .flat_map(|p| {
            p.status
                .iter()
                .flat_map(|s| s.container_statuses.iter().flatten())
        })
        .filter_map(|c| c.state.as_ref()?.terminated.as_ref())
        .filter(|t| t.exit_code != 0)
        .map(|t| {
            let at = t
                .finished_at
                .as_ref()
                .map(|f| f.0.to_string())
                .unwrap_or_default();
            let text = t
                .message
                .clone()
                .unwrap_or_else(|| format!("exit status {}", t.exit_code));
            (at, text)
        })
        .collect();
    messages.sort();
    Ok(messages.pop().map(|(_, m)| one_line(&m)))
}

fn one_line(text: &str) -> String {
    let line = text
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or_default();
    truncate(line, 512)
}

/// The agent's reports from `<mig>-progress`; unreadable JSON counts as not reported.
///
/// # Errors
/// [`Error::Observe`] when the ConfigMap cannot be read (a missing one is no error).
#[instrument(skip_all)]
pub async fn read_reports(client: &Client, mig: &Migration) -> Result<Reports> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace(mig));
    let cm = api
        .get_opt(&progress_configmap_name(&mig.name_any()))
        .await
        .map_err(|source| Error::Observe {
            what: "progress configmap",
            source,
        })?;
    let found = cm.is_some();
    let data = cm.and_then(|c| c.data).unwrap_or_default();
    Ok(Reports {
        found,
        progress: parse(&data, PROGRESS_KEY),
        summary: parse(&data, SUMMARY_KEY),
        publish: parse(&data, PUBLISH_KEY),
    })
}

fn parse<T: serde::de::DeserializeOwned>(data: &BTreeMap<String, String>, key: &str) -> Option<T> {
    let text = data.get(key)?;
    match serde_json::from_str(text) {
        Ok(value) => Some(value),
        Err(e) => {
            debug!(
                key,
                error = %crate::error_chain(&e),
                "Ignored an unreadable report"
            );
            None
        }
    }
}

/// Checks the referenced Secrets and hashes their referenced data. Values never leave this
/// function.
///
/// # Errors
/// [`Error::GetSecret`] or [`Error::Observe`] when a read fails for another reason than absence.
#[instrument(skip_all)]
pub async fn check_secrets(client: &Client, mig: &Migration) -> Result<InputsCheck> {
    let ns = namespace(mig);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let mut hasher = Sha256::new();
    let keys = referenced_secret_keys(mig);
    let mut fetched: BTreeMap<String, Secret> = BTreeMap::new();
    for (name, key) in &keys {
        if !fetched.contains_key(name) {
            let got = secrets
                .get_opt(name)
                .await
                .map_err(|source| Error::GetSecret {
                    name: name.clone(),
                    source,
                })?;
            let Some(secret) = got else {
                return Ok(missing(
                    reason::SECRET_NOT_FOUND,
                    format!("Secret {name} not found"),
                ));
            };
            fetched.insert(name.clone(), secret);
        }
        let value = fetched.get(name).and_then(|s| secret_value(s, key));
        let Some(value) = value else {
            let message = format!("Secret {name} has no key {key}");
            return Ok(missing(reason::SECRET_KEY_NOT_FOUND, message));
        };
        for part in [name.as_bytes(), key.as_bytes(), &value] {
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part);
        }
    }
    let secrets_hash =
        (!keys.is_empty()).then(|| format!("sha256:{}", hex::encode(hasher.finalize())));
    Ok(InputsCheck::Found { secrets_hash })
}

fn secret_value(secret: &Secret, key: &str) -> Option<Vec<u8>> {
    if let Some(v) = secret.data.as_ref().and_then(|d| d.get(key)) {
        return Some(v.0.clone());
    }
    secret
        .string_data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|s| s.as_bytes().to_vec())
}

/// Checks that the script ConfigMap and its key exist (the extract step reads them); `None`
/// when they do or the source is no script ConfigMap.
///
/// # Errors
/// [`Error::Observe`] when the ConfigMap cannot be read for another reason than absence.
#[instrument(skip_all)]
pub async fn check_script(client: &Client, mig: &Migration) -> Result<Option<InputsCheck>> {
    let Some(cm_ref) = mig
        .spec
        .source
        .script
        .as_ref()
        .and_then(|s| s.config_map_key_ref.as_ref())
    else {
        return Ok(None);
    };
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace(mig));
    let cm = api
        .get_opt(&cm_ref.name)
        .await
        .map_err(|source| Error::Observe {
            what: "script configmap",
            source,
        })?;
    let Some(cm) = cm else {
        let message = format!("ConfigMap {} not found", cm_ref.name);
        return Ok(Some(missing(reason::CONFIGMAP_NOT_FOUND, message)));
    };
    let in_data = cm
        .data
        .as_ref()
        .is_some_and(|d| d.contains_key(&cm_ref.key));
    let in_binary = cm
        .binary_data
        .as_ref()
        .is_some_and(|d| d.contains_key(&cm_ref.key));
    if in_data || in_binary {
        return Ok(None);
    }
    let message = format!("ConfigMap {} has no key {}", cm_ref.name, cm_ref.key);
    Ok(Some(missing(reason::CONFIGMAP_KEY_NOT_FOUND, message)))
}

/// Fails with [`Error::ForeignObject`] while the workspace claim of an earlier Migration of this
/// name is still there (being deleted, or owned by that one): a step must not write into a
/// claim that is about to go. A missing claim, or this Migration's own, passes.
///
/// # Errors
/// [`Error::ForeignObject`], or [`Error::Observe`] when the claim cannot be read.
#[instrument(skip_all)]
pub async fn check_workspace(client: &Client, mig: &Migration) -> Result<()> {
    let api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &namespace(mig));
    let name = workspace_claim_name(&mig.name_any());
    let claim = api.get_opt(&name).await.map_err(|source| Error::Observe {
        what: "workspace claim",
        source,
    })?;
    let ours =
        |c: &PersistentVolumeClaim| c.metadata.deletion_timestamp.is_none() && owned_by(c, mig);
    match claim {
        Some(c) if !ours(&c) => Err(Error::ForeignObject {
            kind: "PersistentVolumeClaim",
            name,
        }),
        _ => Ok(()),
    }
}

fn missing(reason: &'static str, message: String) -> InputsCheck {
    InputsCheck::Missing { reason, message }
}

/// The Migration's namespace (always set: Migrations are namespaced).
#[must_use]
pub fn namespace(mig: &Migration) -> String {
    mig.namespace().unwrap_or_else(|| "default".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn termination_messages_are_cut_to_their_last_line() {
        assert_eq!(
            one_line("Traceback\n  x\nInvalidScript: bad\n\n"),
            "InvalidScript: bad"
        );
        assert_eq!(one_line(&"x".repeat(600)).len(), 512);
    }

    #[test]
    fn secret_values_come_from_data_or_string_data() {
        let secret: Secret = serde_json::from_value(serde_json::json!({
            "data": {"password": "c2VjcmV0"}, "stringData": {"username": "sa"}
        }))
        .unwrap();
        assert_eq!(secret_value(&secret, "password").unwrap(), b"secret");
        assert_eq!(secret_value(&secret, "username").unwrap(), b"sa");
        assert!(secret_value(&secret, "token").is_none());
    }
}
