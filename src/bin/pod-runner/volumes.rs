//! Pod volumes as local folders. Each pod gets `<state>/pods/<namespace>_<name>_<uid>/` (mode
//! 0700), with `volumes/<volume>/` for emptyDir, Secret, ConfigMap, projected and downwardAPI
//! volumes. A claim's folder is `<state>/pvc/<namespace>/<claim>/`, shared by the pods that mount
//! it and removed when the claim is deleted.

use std::collections::BTreeMap;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{
    DownwardAPIVolumeFile, KeyToPath, PersistentVolumeClaim, Pod, ServiceAccount,
    ServiceAccountTokenProjection, Volume, VolumeProjection,
};
use kube::Api;
use kube::api::PostParams;

use crate::envs::{Sources, field_value};
use crate::error::Error;

/// The kubelet's default lifetime for projected service-account tokens.
const DEFAULT_TOKEN_SECONDS: i64 = 3607;

/// Files to write into a volume folder: relative path and content.
pub type Files = Vec<(String, Vec<u8>)>;

/// A pod's folder under the runner's state folder.
#[derive(Clone, Debug)]
pub struct PodDir {
    /// `<state>/pods/<namespace>_<name>_<uid>`.
    pub root: PathBuf,
}

impl PodDir {
    /// The folder for a pod.
    pub fn new(state_dir: &Path, namespace: &str, name: &str, uid: &str) -> Self {
        Self {
            root: state_dir
                .join("pods")
                .join(format!("{namespace}_{name}_{uid}")),
        }
    }

    /// Creates the folder with mode 0700 (it holds Secret values and tokens).
    pub fn create(&self) -> Result<(), Error> {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true).mode(0o700);
        builder
            .create(&self.root)
            .map_err(|e| Error::write(&self.root, e))?;
        let perms = std::fs::Permissions::from_mode(0o700);
        std::fs::set_permissions(&self.root, perms).map_err(|e| Error::write(&self.root, e))
    }

    /// The folder of an emptyDir, Secret, ConfigMap or projected volume.
    pub fn volume(&self, name: &str) -> PathBuf {
        self.root.join("volumes").join(name)
    }

    /// The file bind-mounted at a container's `terminationMessagePath`.
    pub fn termination_file(&self, container: &str) -> PathBuf {
        self.root.join("termination").join(container)
    }

    /// Where the exec helper writes why a command could not be started.
    pub fn start_error_file(&self, container: &str) -> PathBuf {
        self.root.join("start-error").join(container)
    }
}

/// The folder of a PersistentVolumeClaim.
pub fn claim_dir(state_dir: &Path, namespace: &str, claim: &str) -> PathBuf {
    state_dir.join("pvc").join(namespace).join(claim)
}

/// Materialises every volume of the pod and returns each volume's local folder by name.
pub async fn prepare(
    client: &kube::Client,
    state_dir: &Path,
    pod: &Pod,
    dir: &PodDir,
    sources: &Sources,
) -> Result<BTreeMap<String, PathBuf>, Error> {
    let mut paths = BTreeMap::new();
    let volumes = pod
        .spec
        .as_ref()
        .and_then(|s| s.volumes.clone())
        .unwrap_or_default();
    for volume in &volumes {
        let path = prepare_volume(client, state_dir, pod, dir, sources, volume).await?;
        paths.insert(volume.name.clone(), path);
    }
    Ok(paths)
}

async fn prepare_volume(
    client: &kube::Client,
    state_dir: &Path,
    pod: &Pod,
    dir: &PodDir,
    sources: &Sources,
    volume: &Volume,
) -> Result<PathBuf, Error> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    if let Some(host) = &volume.host_path {
        return Ok(PathBuf::from(&host.path));
    }
    if let Some(claim) = &volume.persistent_volume_claim {
        check_claim(client, namespace, &claim.claim_name).await?;
        let path = claim_dir(state_dir, namespace, &claim.claim_name);
        create_dir(&path)?;
        return Ok(path);
    }
    let files = if volume.empty_dir.is_some() || volume.ephemeral.is_some() {
        Vec::new()
    } else if let Some(cm) = &volume.config_map {
        config_map_files(sources, &cm.name, cm.items.as_deref(), cm.optional)?
    } else if let Some(secret) = &volume.secret {
        let name = secret.secret_name.clone().unwrap_or_default();
        secret_files(sources, &name, secret.items.as_deref(), secret.optional)?
    } else if let Some(downward) = &volume.downward_api {
        downward_files(pod, downward.items.as_deref().unwrap_or_default())?
    } else if let Some(projected) = &volume.projected {
        let sources_list = projected.sources.as_deref().unwrap_or_default();
        projected_files(client, pod, sources, sources_list).await?
    } else {
        let message = format!(
            "volume {} has a type the pod runner does not support",
            volume.name
        );
        return Err(Error::config(message));
    };
    let path = dir.volume(&volume.name);
    write_files(&path, &files)?;
    Ok(path)
}

async fn check_claim(client: &kube::Client, namespace: &str, claim: &str) -> Result<(), Error> {
    let api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), namespace);
    match api.get_opt(claim).await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(Error::config(format!(
            "persistentvolumeclaim \"{claim}\" not found"
        ))),
        Err(source) => Err(Error::Api {
            action: "get claim",
            name: claim.to_owned(),
            source,
        }),
    }
}

/// Files of a ConfigMap volume: every key, or only `items` (key to path).
pub fn config_map_files(
    sources: &Sources,
    name: &str,
    items: Option<&[KeyToPath]>,
    optional: Option<bool>,
) -> Result<Files, Error> {
    let Some(Some(cm)) = sources.config_maps.get(name) else {
        return missing(optional, "configmap", name);
    };
    let mut data: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for (key, value) in cm.data.iter().flatten() {
        data.insert(key.clone(), value.clone().into_bytes());
    }
    for (key, value) in cm.binary_data.iter().flatten() {
        data.insert(key.clone(), value.0.clone());
    }
    select_items(data, items, optional, "configmap", name)
}

/// Files of a Secret volume: every key, or only `items`.
pub fn secret_files(
    sources: &Sources,
    name: &str,
    items: Option<&[KeyToPath]>,
    optional: Option<bool>,
) -> Result<Files, Error> {
    let Some(Some(secret)) = sources.secrets.get(name) else {
        return missing(optional, "secret", name);
    };
    let data = secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect();
    select_items(data, items, optional, "secret", name)
}

fn missing(optional: Option<bool>, kind: &str, name: &str) -> Result<Files, Error> {
    if optional == Some(true) {
        Ok(Vec::new())
    } else {
        Err(Error::config(format!("{kind} \"{name}\" not found")))
    }
}

fn select_items(
    mut data: BTreeMap<String, Vec<u8>>,
    items: Option<&[KeyToPath]>,
    optional: Option<bool>,
    kind: &str,
    name: &str,
) -> Result<Files, Error> {
    let Some(items) = items.filter(|i| !i.is_empty()) else {
        return Ok(data.into_iter().collect());
    };
    let mut files = Vec::new();
    for item in items {
        match data.remove(&item.key) {
            Some(content) => files.push((item.path.clone(), content)),
            None if optional == Some(true) => {}
            None => {
                let message = format!("couldn't find key {} in {kind} \"{name}\"", item.key);
                return Err(Error::config(message));
            }
        }
    }
    Ok(files)
}

/// Files of a downwardAPI volume or projection (field references only).
pub fn downward_files(pod: &Pod, items: &[DownwardAPIVolumeFile]) -> Result<Files, Error> {
    let mut files = Vec::new();
    for item in items {
        let Some(field) = &item.field_ref else {
            continue;
        };
        let content = match field.field_path.as_str() {
            "metadata.labels" => format_map(pod.metadata.labels.as_ref()),
            "metadata.annotations" => format_map(pod.metadata.annotations.as_ref()),
            _ => field_value(pod, field)?,
        };
        files.push((item.path.clone(), content.into_bytes()));
    }
    Ok(files)
}

fn format_map(map: Option<&BTreeMap<String, String>>) -> String {
    let lines = map.into_iter().flatten().map(|(k, v)| format!("{k}={v:?}"));
    lines.collect::<Vec<_>>().join("\n")
}

async fn projected_files(
    client: &kube::Client,
    pod: &Pod,
    sources: &Sources,
    projections: &[VolumeProjection],
) -> Result<Files, Error> {
    let mut files = Vec::new();
    for projection in projections {
        if let Some(token) = &projection.service_account_token {
            files.push((token.path.clone(), request_token(client, pod, token).await?));
        }
        if let Some(cm) = &projection.config_map {
            let items = cm.items.as_deref();
            files.extend(config_map_files(sources, &cm.name, items, cm.optional)?);
        }
        if let Some(secret) = &projection.secret {
            let items = secret.items.as_deref();
            files.extend(secret_files(sources, &secret.name, items, secret.optional)?);
        }
        if let Some(downward) = &projection.downward_api {
            files.extend(downward_files(
                pod,
                downward.items.as_deref().unwrap_or_default(),
            )?);
        }
    }
    Ok(files)
}

/// A token for the pod's service account, bound to the pod, through the TokenRequest API.
async fn request_token(
    client: &kube::Client,
    pod: &Pod,
    projection: &ServiceAccountTokenProjection,
) -> Result<Vec<u8>, Error> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let spec = pod.spec.as_ref();
    let account = spec
        .and_then(|s| s.service_account_name.as_deref())
        .unwrap_or("default");
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            audiences: Some(
                projection
                    .audience
                    .iter()
                    .filter(|a| !a.is_empty())
                    .cloned()
                    .collect(),
            ),
            expiration_seconds: Some(
                projection
                    .expiration_seconds
                    .unwrap_or(DEFAULT_TOKEN_SECONDS),
            ),
            bound_object_ref: Some(BoundObjectReference {
                api_version: Some("v1".to_owned()),
                kind: Some("Pod".to_owned()),
                name: pod.metadata.name.clone(),
                uid: pod.metadata.uid.clone(),
            }),
            ..TokenRequestSpec::default()
        }),
        ..TokenRequest::default()
    };
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    let answer = api
        .create_token_request(account, &PostParams::default(), &request)
        .await
        .map_err(|source| Error::Api {
            action: "request a token for service account",
            name: account.to_owned(),
            source,
        })?;
    let token = answer.status.and_then(|s| s.token).unwrap_or_default();
    Ok(token.into_bytes())
}

fn create_dir(path: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(path).map_err(|e| Error::write(path, e))
}

/// Writes `files` under `dir`, replacing what an earlier attempt left there.
pub fn write_files(dir: &Path, files: &[(String, Vec<u8>)]) -> Result<(), Error> {
    create_dir(dir)?;
    for (relative, content) in files {
        let relative = Path::new(relative);
        let safe = relative
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
        if !safe {
            return Err(Error::config(format!(
                "volume path {} leaves its volume",
                relative.display()
            )));
        }
        let path = dir.join(relative);
        if let Some(parent) = path.parent() {
            create_dir(parent)?;
        }
        std::fs::write(&path, content).map_err(|e| Error::write(&path, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;
    use k8s_openapi::api::core::v1::{ConfigMap, Secret};
    use serde_json::json;

    fn sources() -> Sources {
        let cm: ConfigMap = serde_json::from_value(json!({
            "metadata": {"name": "script"},
            "data": {"a.sql": "select 1"},
            "binaryData": {"big.sql.gz": "H4sI"}
        }))
        .unwrap();
        let data = [("token".to_owned(), ByteString(b"t0k".to_vec()))];
        let secret = Secret {
            data: Some(data.into()),
            ..Secret::default()
        };
        Sources {
            config_maps: [("script".to_owned(), Some(cm))].into(),
            secrets: [("git".to_owned(), Some(secret))].into(),
        }
    }

    fn item(key: &str, path: &str) -> KeyToPath {
        KeyToPath {
            key: key.into(),
            path: path.into(),
            ..KeyToPath::default()
        }
    }

    #[test]
    fn config_map_volume_holds_data_and_binary_data_keys() {
        let files = config_map_files(&sources(), "script", None, None).unwrap();
        let names: Vec<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(names, ["a.sql", "big.sql.gz"]);
        assert_eq!(files[1].1, vec![0x1f, 0x8b, 0x08]);
    }

    #[test]
    fn items_select_and_rename_keys() {
        let items = [item("a.sql", "sub/renamed.sql")];
        let files = config_map_files(&sources(), "script", Some(&items), None).unwrap();
        assert_eq!(
            files,
            vec![("sub/renamed.sql".to_owned(), b"select 1".to_vec())]
        );
        let bad = [item("nope", "x")];
        let err = secret_files(&sources(), "git", Some(&bad), None).unwrap_err();
        assert_eq!(err.to_string(), "couldn't find key nope in secret \"git\"");
    }

    #[test]
    fn a_missing_source_fails_unless_optional() {
        let err = secret_files(&sources(), "absent", None, None).unwrap_err();
        assert!(matches!(err, Error::Config { .. }));
        assert!(
            secret_files(&sources(), "absent", None, Some(true))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn downward_files_give_namespace_and_labels() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "team", "labels": {"b": "2", "a": "1"}}
        }))
        .unwrap();
        let items: Vec<DownwardAPIVolumeFile> = serde_json::from_value(json!([
            {"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}},
            {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}
        ]))
        .unwrap();
        let files = downward_files(&pod, &items).unwrap();
        assert_eq!(files[0], ("namespace".to_owned(), b"team".to_vec()));
        assert_eq!(files[1].1, b"a=\"1\"\nb=\"2\"".to_vec());
    }

    #[test]
    fn write_files_creates_subfolders_and_refuses_escapes() {
        let dir = tempfile::tempdir().unwrap();
        let files = vec![("x/y.txt".to_owned(), b"hi".to_vec())];
        write_files(dir.path(), &files).unwrap();
        assert_eq!(std::fs::read(dir.path().join("x/y.txt")).unwrap(), b"hi");
        let escape = vec![("../out".to_owned(), b"no".to_vec())];
        assert!(write_files(dir.path(), &escape).is_err());
    }

    #[test]
    fn pod_dir_is_private() {
        let state = tempfile::tempdir().unwrap();
        let dir = PodDir::new(state.path(), "ns", "p", "u");
        dir.create().unwrap();
        let mode = std::fs::metadata(&dir.root).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        assert!(dir.volume("v").starts_with(&dir.root));
    }
}
