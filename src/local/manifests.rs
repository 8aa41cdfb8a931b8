//! Reading a Migration and the Secrets and ConfigMaps it references from manifest files, the
//! way `kubectl apply -f` would see them: the file given, plus the other manifests of its folder.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, CustomResourceDefinitionVersion, JSONSchemaProps,
};
use serde::Deserialize;
use serde_json::Value;

use super::{LocalError, schema};
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
        let [mut doc] = <[_; 1]>::try_from(migrations).map_err(|found| LocalError::Manifest {
            path: file.to_path_buf(),
            message: format!("expected exactly one Migration, found {}", found.len()),
        })?;
        validate_migration(file, &mut doc)?;
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

/// Checks the Migration as the API server does at admission: against its version's OpenAPI
/// schema (types, required and unknown fields, patterns, lengths, bounds, enums), then against
/// the CEL rules (`x-kubernetes-validations`), so a local run refuses what `kubectl apply` would
/// refuse, naming each field with the API server's wording. As the API server does on create,
/// this drops from `doc` a status and the nulls of fields that are not nullable.
fn validate_migration(path: &Path, doc: &mut Value) -> Result<(), LocalError> {
    let invalid = |message: String| LocalError::Manifest {
        path: path.to_path_buf(),
        message,
    };
    let crd = <Migration as kube::CustomResourceExt>::crd();
    let version = served_version(&crd, doc).map_err(invalid)?;
    let schema = version
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .ok_or_else(|| invalid(format!("version {} has no openAPIV3Schema", version.name)))?;
    let status_subresource = version
        .subresources
        .as_ref()
        .and_then(|s| s.status.as_ref());
    if let (Some(_), Some(fields)) = (status_subresource, doc.as_object_mut()) {
        fields.remove("status");
    }
    schema::prune_nulls(schema, doc);
    let errors = refusals(schema, doc);
    if errors.is_empty() {
        return Ok(());
    }
    Err(invalid(format!(
        "Migration is invalid: {} validation error(s):\n  - {}",
        errors.len(),
        errors.join("\n  - ")
    )))
}

/// The CRD version `doc`'s apiVersion names, if the CRD serves it.
fn served_version<'a>(
    crd: &'a CustomResourceDefinition,
    doc: &Value,
) -> Result<&'a CustomResourceDefinitionVersion, String> {
    let api_version = doc
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    crd.spec
        .versions
        .iter()
        .find(|v| v.served && format!("{}/{}", crd.spec.group, v.name) == api_version)
        .ok_or_else(|| format!("apiVersion {api_version:?} is not served by the CRD"))
}

/// The schema's refusals, then the CEL rules' unless a wrong type or a value outside an enum
/// came first (the API server skips the rules then, as they would read a value of the wrong type).
fn refusals(schema: &JSONSchemaProps, doc: &Value) -> Vec<String> {
    let field_errors = schema::validate(schema, doc);
    let mut errors = field_errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>();
    if !field_errors.iter().any(|e| e.blocks_rules) {
        let json = serde_json::to_value(schema).unwrap_or_default();
        if let Err(failed) = kube::core::cel::Validator::new().validate(&json, doc, None) {
            errors.extend(failed.iter().map(ToString::to_string));
        }
    }
    errors
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

    fn examples() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
    }

    /// A `# key: value` line of the comment heading an example (tests/operator_admission.rs
    /// reads the same lines).
    fn header(text: &str, key: &str) -> Option<String> {
        text.lines()
            .take_while(|l| l.starts_with('#'))
            .find_map(|l| l.strip_prefix(&format!("# {key}: ")))
            .map(|v| v.trim().to_string())
    }

    #[test]
    fn every_invalid_example_is_refused_naming_its_field_and_message() {
        let mut paths = std::fs::read_dir(examples().join("invalid"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
            .collect::<Vec<_>>();
        paths.sort();
        let (mut checked, mut failures) = (0, Vec::new());
        for path in &paths {
            let text = std::fs::read_to_string(path).unwrap();
            // A transition rule compares with the object it replaces; a local run has none.
            if header(&text, "update-of").is_some() {
                continue;
            }
            let field = header(&text, "field").unwrap();
            let message = header(&text, "message").unwrap();
            checked += 1;
            match Manifests::load(path) {
                Ok(_) => failures.push(format!("{}: accepted", path.display())),
                Err(e) if e.to_string().contains(&field) && e.to_string().contains(&message) => {}
                Err(e) => failures.push(format!(
                    "{}: expected {field} and {message:?}: {e}",
                    path.display()
                )),
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
        assert!(
            checked >= 15,
            "only {checked} of {} examples checked",
            paths.len()
        );
    }

    #[test]
    fn every_valid_example_loads() {
        let mut dirs = vec![examples()];
        let mut loaded = Vec::new();
        while let Some(dir) = dirs.pop() {
            for path in std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()) {
                if path.is_dir() && !path.ends_with("invalid") {
                    dirs.push(path);
                } else if path.file_name().is_some_and(|n| n == "migration.yaml") {
                    let m = Manifests::load(&path);
                    assert!(m.is_ok(), "{}: {}", path.display(), m.unwrap_err());
                    loaded.push(path.strip_prefix(examples()).unwrap().to_path_buf());
                }
            }
        }
        // The walk found the known ones (and loads any added later)
        for known in ["gitops/app", "minimal", "northwind", "pubs"] {
            let known = Path::new(known).join("migration.yaml");
            assert!(
                loaded.contains(&known),
                "{} not found in {loaded:?}",
                known.display()
            );
        }
    }

    fn load_error(text: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), "migration.yaml", text);
        Manifests::load(&file).unwrap_err().to_string()
    }

    #[test]
    fn an_unknown_field_is_refused_as_kubectl_apply_refuses_it() {
        // Not an examples/invalid case: the API server prunes it unless asked for strict field
        // validation, which kubectl asks for and the admission test does not.
        let typo = MIGRATION.replace("projectName: p}", "projectName: p, materialisation: table}");
        let err = load_error(&typo);
        assert!(
            err.contains("spec.target.materialisation: unknown field"),
            "{err}"
        );
    }

    #[test]
    fn schema_errors_and_rule_errors_are_reported_together() {
        let both = MIGRATION
            .replace("projectName: p", "projectName: My-P")
            .replace(
                "  source: {",
                "  source: {sqlServer: {host: h, database: d, credentialsSecretRef: {name: s}}, ",
            );
        let err = load_error(&both);
        assert!(err.contains("2 validation error(s)"), "{err}");
        assert!(
            err.contains("spec.target.projectName: Invalid value: \"My-P\""),
            "{err}"
        );
        assert!(err.contains("exactly one of sqlServer or script"), "{err}");
    }

    #[test]
    fn a_value_outside_an_enum_skips_the_rules_as_the_api_server_does() {
        let both = MIGRATION
            .replace("dialect: duckdb", "dialect: oracle")
            .replace(
                "  source: {",
                "  source: {sqlServer: {host: h, database: d, credentialsSecretRef: {name: s}}, ",
            );
        let err = load_error(&both);
        assert!(err.contains("1 validation error(s)"), "{err}");
        assert!(
            err.contains("spec.target.dialect: Unsupported value: \"oracle\""),
            "{err}"
        );
    }

    #[test]
    fn a_status_in_the_manifest_is_dropped_as_on_create() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!("{MIGRATION}status: {{phase: NotAPhase, extra: 1}}\n");
        let file = write(dir.path(), "migration.yaml", &text);
        let m = Manifests::load(&file).unwrap();
        assert!(m.migration.status.is_none());
    }

    #[test]
    fn an_api_version_the_crd_does_not_serve_is_refused() {
        let err = load_error(&MIGRATION.replace("v1alpha1", "v1"));
        assert!(err.contains("\"datamigrate.ai/v1\" is not served"), "{err}");
    }

    /// Sets `value` at `pointer` (`/spec/agent/model`) in `doc`, making the objects on the way.
    fn set(doc: &mut Value, pointer: &str, value: Value) {
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        let mut at = doc;
        for step in parent.split('/').skip(1) {
            at = at
                .as_object_mut()
                .unwrap()
                .entry(step)
                .or_insert(serde_json::json!({}));
        }
        at.as_object_mut().unwrap().insert(key.to_string(), value);
    }

    #[test]
    fn the_crd_schema_refuses_each_kind_of_out_of_bounds_field() {
        use serde_json::json;
        let long = "a".repeat(64);
        let many = vec![json!("dbo.t"); 257];
        let cases = [
            (
                "/spec/suspend",
                json!("true"),
                "spec.suspend in body must be of type boolean",
            ),
            (
                "/spec/agent/maxRepairAttempts",
                json!(21),
                "spec.agent.maxRepairAttempts in body should be less than or equal to 20",
            ),
            (
                "/spec/agent/stepTimeoutSeconds",
                json!(10),
                "spec.agent.stepTimeoutSeconds in body should be greater than or equal to 30",
            ),
            (
                "/spec/target/projectName",
                json!(long),
                "spec.target.projectName: Too long: may not be more than 63 bytes",
            ),
            (
                "/spec/target/materialization",
                json!("incremental"),
                "spec.target.materialization: Unsupported value: \"incremental\"",
            ),
            (
                "/spec/source/script/configMapKeyRef/key",
                json!(""),
                "spec.source.script.configMapKeyRef.key in body should be at least 1 chars long",
            ),
            (
                "/spec/podTemplate/resources/limits/cpu",
                json!(true),
                "spec.podTemplate.resources.limits.cpu in body must be of type integer,string",
            ),
            (
                "/spec/podTemplate/nodeSelector/disk",
                json!(1),
                "spec.podTemplate.nodeSelector.disk in body must be of type string",
            ),
            (
                "/spec/podTemplate/tolerations",
                json!([{"key": "k", "tolerationSeconds": "60"}]),
                "spec.podTemplate.tolerations[0].tolerationSeconds in body must be of type integer",
            ),
            (
                concat!(
                    "/spec/podTemplate/affinity/nodeAffinity/",
                    "requiredDuringSchedulingIgnoredDuringExecution"
                ),
                json!({}),
                "requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms: Required value",
            ),
            (
                "/spec/podTemplate/securityContext/runAsUsr",
                json!(1000),
                "spec.podTemplate.securityContext.runAsUsr: unknown field",
            ),
            (
                "/spec/podTemplate/securityContext/runAsUser",
                json!(9_223_372_036_854_775_808_u64),
                "spec.podTemplate.securityContext.runAsUser in body must be within the range of \
                 int64",
            ),
            (
                "/spec/podTemplate/imagePullSecrets",
                json!([null]),
                "spec.podTemplate.imagePullSecrets[0] in body must be of type object: \"null\"",
            ),
        ];
        let base: Value = serde_yaml::from_str(MIGRATION).unwrap();
        let mut failures = Vec::new();
        for (pointer, value, expected) in cases {
            let mut doc = base.clone();
            set(&mut doc, pointer, value);
            match validate_migration(Path::new("m.yaml"), &mut doc) {
                Err(e) if e.to_string().contains(expected) => {}
                other => failures.push(format!("{pointer}: expected {expected:?}, got {other:?}")),
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
        // What the API server defaults or takes as it is
        let fine = [
            ("/spec/validation/engine", json!(null)),
            ("/spec/agent", json!(null)),
            (
                "/spec/podTemplate/resources/limits",
                json!({"cpu": "500m", "memory": 2}),
            ),
            ("/spec/podTemplate/nodeSelector/disk", json!("ssd")),
            ("/spec/agent/maxRepairAttempts", json!(20.0)),
        ];
        for (pointer, value) in fine {
            let mut doc = base.clone();
            set(&mut doc, pointer, value);
            let result = validate_migration(Path::new("m.yaml"), &mut doc);
            assert!(result.is_ok(), "{pointer}: {result:?}");
        }
        let mut include = base.clone();
        set(&mut include, "/spec/source/script", json!(null));
        let server = json!({"host": "h", "database": "d", "credentialsSecretRef": {"name": "s"},
            "include": many});
        set(&mut include, "/spec/source/sqlServer", server);
        let err = validate_migration(Path::new("m.yaml"), &mut include).unwrap_err();
        assert!(
            err.to_string()
                .contains("spec.source.sqlServer.include: Too many: 257: must have at most 256"),
            "{err}"
        );
    }

    #[test]
    fn a_null_field_that_is_not_nullable_loads_as_absent_with_its_default() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(
            dir.path(),
            "migration.yaml",
            &format!("{MIGRATION}  agent: null\n"),
        );
        let m = Manifests::load(&file).unwrap();
        assert_eq!(m.migration.spec.agent.max_repair_attempts, 3);
    }
}
