//! Reading a Migration and the Secrets and ConfigMaps it references from manifest files, the
//! way `kubectl apply -f` would see them: the file given, plus the other manifests of its folder.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use serde::Deserialize;

use super::LocalError;
use crate::crd::Migration;

/// Namespace given to a Migration whose manifest names none.
pub const LOCAL_NAMESPACE: &str = "default";

/// The Migration to run and the objects it may reference.
#[derive(Debug)]
pub struct Manifests {
    /// The Migration of the file given with `-f`.
    pub migration: Migration,
    /// ConfigMaps found beside it, by name.
    pub config_maps: BTreeMap<String, ConfigMap>,
    /// Secrets found beside it, by name.
    pub secrets: BTreeMap<String, Secret>,
}

impl Manifests {
    /// Reads `file` (which must hold exactly one Migration) and every `*.yaml`/`*.yml` of its
    /// folder for Secrets and ConfigMaps.
    pub fn load(file: &Path) -> Result<Self, LocalError> {
        let migrations = read_documents(file)?
            .into_iter()
            .filter(|d| kind_of(d) == Some("Migration"))
            .collect::<Vec<_>>();
        let [doc] = <[_; 1]>::try_from(migrations).map_err(|found| LocalError::Manifest {
            path: file.to_path_buf(),
            message: format!("expected exactly one Migration, found {}", found.len()),
        })?;
        validate_rules(file, &doc)?;
        let mut migration: Migration = parse(file, doc)?;
        if migration.metadata.namespace.is_none() {
            migration.metadata.namespace = Some(LOCAL_NAMESPACE.into());
        }
        let mut manifests = Self {
            migration,
            config_maps: BTreeMap::new(),
            secrets: BTreeMap::new(),
        };
        for path in sibling_manifests(file)? {
            manifests.add_references(&path)?;
        }
        Ok(manifests)
    }

    fn add_references(&mut self, path: &Path) -> Result<(), LocalError> {
        for doc in read_documents(path)? {
            match kind_of(&doc) {
                Some("ConfigMap") => {
                    let cm: ConfigMap = parse(path, doc)?;
                    self.config_maps
                        .insert(cm.metadata.name.clone().unwrap_or_default(), cm);
                }
                Some("Secret") => {
                    let secret: Secret = parse(path, doc)?;
                    let name = secret.metadata.name.clone().unwrap_or_default();
                    self.secrets.insert(name, secret);
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The bytes of one ConfigMap key (`data` or `binaryData`).
    pub fn config_map_key(&self, name: &str, key: &str) -> Result<Vec<u8>, LocalError> {
        let cm = self
            .config_maps
            .get(name)
            .ok_or_else(|| LocalError::Reference {
                message: format!(
                    "ConfigMap {name} is not among the manifests beside the Migration"
                ),
            })?;
        if let Some(text) = cm.data.as_ref().and_then(|d| d.get(key)) {
            return Ok(text.clone().into_bytes());
        }
        cm.binary_data
            .as_ref()
            .and_then(|d| d.get(key))
            .map(|b| b.0.clone())
            .ok_or_else(|| LocalError::Reference {
                message: format!("ConfigMap {name} has no key {key}"),
            })
    }

    /// The value of one Secret key (`stringData` or `data`). The value is never logged.
    pub fn secret_key(&self, name: &str, key: &str) -> Result<String, LocalError> {
        let missing = || LocalError::Reference {
            message: format!("Secret {name} (key {key}) is not among the manifests"),
        };
        let secret = self.secrets.get(name).ok_or_else(missing)?;
        if let Some(text) = secret.string_data.as_ref().and_then(|d| d.get(key)) {
            return Ok(text.clone());
        }
        let bytes = secret
            .data
            .as_ref()
            .and_then(|d| d.get(key))
            .ok_or_else(missing)?;
        String::from_utf8(bytes.0.clone()).map_err(|_| LocalError::Reference {
            message: format!("Secret {name} key {key} is not UTF-8 text"),
        })
    }
}

fn sibling_manifests(file: &Path) -> Result<Vec<PathBuf>, LocalError> {
    let dir = file
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let io = |source| LocalError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        let ext = path.extension().and_then(|e| e.to_str());
        if matches!(ext, Some("yaml" | "yml")) {
            paths.push(path);
        }
    }
    paths.sort();
    Ok(paths)
}

fn read_documents(path: &Path) -> Result<Vec<serde_json::Value>, LocalError> {
    let text = std::fs::read_to_string(path).map_err(|source| LocalError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut docs = Vec::new();
    for de in serde_yaml::Deserializer::from_str(&text) {
        let value = serde_json::Value::deserialize(de).map_err(|e| LocalError::Manifest {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        if !value.is_null() {
            docs.push(value);
        }
    }
    Ok(docs)
}

/// Applies the CRD's CEL rules (`x-kubernetes-validations`), as the API server would at
/// admission, so a local run refuses what a cluster would refuse, with the same message.
fn validate_rules(path: &Path, doc: &serde_json::Value) -> Result<(), LocalError> {
    use kube::CustomResourceExt as _;
    let crd = Migration::crd();
    let schema = crd
        .spec
        .versions
        .first()
        .and_then(|v| v.schema.as_ref())
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .and_then(|s| serde_json::to_value(s).ok())
        .unwrap_or_default();
    kube::core::cel::Validator::new()
        .validate(&schema, doc, None)
        .map_err(|errors| LocalError::Manifest {
            path: path.to_path_buf(),
            message: format!("Migration is invalid: {errors}"),
        })
}

fn kind_of(doc: &serde_json::Value) -> Option<&str> {
    doc.get("kind").and_then(serde_json::Value::as_str)
}

fn parse<T: serde::de::DeserializeOwned>(
    path: &Path,
    doc: serde_json::Value,
) -> Result<T, LocalError> {
    serde_json::from_value(doc).map_err(|e| LocalError::Manifest {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    const MIGRATION: &str = "apiVersion: datamigrate.ai/v1alpha1\nkind: Migration\n\
        metadata: {name: m}\nspec:\n  source: {script: {configMapKeyRef: {name: s, key: a.sql}}}\n\
        \n  target: {dialect: duckdb, projectName: p}\n";

    #[test]
    fn loads_migration_and_references_from_the_same_folder() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), "migration.yaml", MIGRATION);
        write(
            dir.path(),
            "cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: s}\n\
            data: {a.sql: 'select 1'}\n---\napiVersion: v1\nkind: Secret\n\
            metadata: {name: git}\ndata: {password: c2VjcmV0}\n",
        );
        let m = Manifests::load(&file).unwrap();
        assert_eq!(
            m.migration.metadata.namespace.as_deref(),
            Some(LOCAL_NAMESPACE)
        );
        assert_eq!(m.config_map_key("s", "a.sql").unwrap(), b"select 1");
        assert_eq!(m.secret_key("git", "password").unwrap(), "secret");
    }

    #[test]
    fn missing_reference_names_the_object_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), "migration.yaml", MIGRATION);
        let m = Manifests::load(&file).unwrap();
        let err = m.config_map_key("s", "a.sql").unwrap_err().to_string();
        assert!(err.contains("ConfigMap s"), "{err}");
        let err = m.secret_key("git", "token").unwrap_err().to_string();
        assert!(err.contains("Secret git") && err.contains("token"), "{err}");
    }

    #[test]
    fn the_crd_rules_refuse_what_admission_would() {
        let dir = tempfile::tempdir().unwrap();
        let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/invalid");
        let two = std::fs::read_to_string(examples.join("two-sources.yaml")).unwrap();
        let file = write(dir.path(), "migration.yaml", &two);
        let err = Manifests::load(&file).unwrap_err().to_string();
        assert!(err.contains("exactly one of sqlServer or script"), "{err}");
    }

    #[test]
    fn a_file_without_exactly_one_migration_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(
            dir.path(),
            "two.yaml",
            &format!("{MIGRATION}---\n{MIGRATION}"),
        );
        let err = Manifests::load(&file).unwrap_err().to_string();
        assert!(err.contains("found 2"), "{err}");
    }
}
