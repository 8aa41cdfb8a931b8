//! The Secrets and ConfigMaps a pod refers to, and a container's environment built from them.
//! Values are kept in memory and handed to the process; they are never logged.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{
    ConfigMap, Container, EnvFromSource, EnvVar, EnvVarSource, ObjectFieldSelector, Pod, Secret,
};

use crate::error::Error;
use crate::expand::expand_with;

/// The ConfigMaps and Secrets of the pod's namespace that it refers to; `None` when missing.
#[derive(Clone, Debug, Default)]
pub struct Sources {
    /// ConfigMaps by name.
    pub config_maps: BTreeMap<String, Option<ConfigMap>>,
    /// Secrets by name.
    pub secrets: BTreeMap<String, Option<Secret>>,
}

/// Names of the ConfigMaps and Secrets a pod refers to (env, envFrom, volumes).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct References {
    /// ConfigMap names.
    pub config_maps: BTreeSet<String>,
    /// Secret names.
    pub secrets: BTreeSet<String>,
}

/// Collects what the pod refers to, so it can be read once before its containers start.
pub fn references(pod: &Pod) -> References {
    let mut refs = References::default();
    let Some(spec) = &pod.spec else { return refs };
    let containers = spec
        .init_containers
        .iter()
        .flatten()
        .chain(&spec.containers);
    for container in containers {
        for from in container.env_from.iter().flatten() {
            add_env_from(&mut refs, from);
        }
        for var in container.env.iter().flatten() {
            add_env_var(&mut refs, var.value_from.as_ref());
        }
    }
    for volume in spec.volumes.iter().flatten() {
        if let Some(cm) = &volume.config_map {
            refs.config_maps.insert(cm.name.clone());
        }
        if let Some(secret) = volume.secret.as_ref().and_then(|s| s.secret_name.clone()) {
            refs.secrets.insert(secret);
        }
        let projected = volume
            .projected
            .iter()
            .flat_map(|p| p.sources.iter().flatten());
        for source in projected {
            if let Some(cm) = &source.config_map {
                refs.config_maps.insert(cm.name.clone());
            }
            if let Some(secret) = &source.secret {
                refs.secrets.insert(secret.name.clone());
            }
        }
    }
    refs
}

fn add_env_from(refs: &mut References, from: &EnvFromSource) {
    if let Some(cm) = &from.config_map_ref {
        refs.config_maps.insert(cm.name.clone());
    }
    if let Some(secret) = &from.secret_ref {
        refs.secrets.insert(secret.name.clone());
    }
}

fn add_env_var(refs: &mut References, source: Option<&EnvVarSource>) {
    let Some(source) = source else { return };
    if let Some(key) = &source.config_map_key_ref {
        refs.config_maps.insert(key.name.clone());
    }
    if let Some(key) = &source.secret_key_ref {
        refs.secrets.insert(key.name.clone());
    }
}

impl Sources {
    // As the kubelet does, env reads only `data`: `binaryData` is for volumes.
    fn config_map_value(&self, name: &str, key: &str) -> Option<String> {
        let cm = self.config_maps.get(name)?.as_ref()?;
        cm.data.as_ref().and_then(|d| d.get(key)).cloned()
    }

    fn secret_value(&self, name: &str, key: &str) -> Option<String> {
        let secret = self.secrets.get(name)?.as_ref()?;
        let bytes = secret.data.as_ref().and_then(|d| d.get(key))?;
        Some(String::from_utf8_lossy(&bytes.0).into_owned())
    }

    fn config_map_pairs(&self, name: &str) -> Option<Vec<(String, String)>> {
        let cm = self.config_maps.get(name)?.as_ref()?;
        Some(cm.data.clone().unwrap_or_default().into_iter().collect())
    }

    fn secret_pairs(&self, name: &str) -> Option<Vec<(String, String)>> {
        let secret = self.secrets.get(name)?.as_ref()?;
        let data = secret.data.iter().flatten();
        Some(
            data.map(|(k, v)| (k.clone(), String::from_utf8_lossy(&v.0).into_owned()))
                .collect(),
        )
    }
}

/// The environment of one container: `base` (PATH, service variables, ...), then `envFrom`,
/// then `env`, each `env` value expanded with the variables defined before it. A later
/// definition of a name replaces an earlier one. Fails when a non-optional reference is missing.
pub fn container_env(
    pod: &Pod,
    container: &Container,
    sources: &Sources,
    base: Vec<(String, String)>,
) -> Result<Vec<(String, String)>, Error> {
    let mut vars = base;
    for from in container.env_from.iter().flatten() {
        vars.extend(env_from_pairs(from, sources)?);
    }
    for var in container.env.iter().flatten() {
        let value = env_var_value(pod, var, sources, &vars)?.filter(|v| is_env_value(v));
        if let Some(value) = value {
            vars.push((var.name.clone(), value));
        }
    }
    Ok(dedup_keep_last(vars))
}

fn env_from_pairs(from: &EnvFromSource, sources: &Sources) -> Result<Vec<(String, String)>, Error> {
    let prefix = from.prefix.clone().unwrap_or_default();
    let (pairs, kind, name, optional) = if let Some(cm) = &from.config_map_ref {
        (
            sources.config_map_pairs(&cm.name),
            "configmap",
            &cm.name,
            cm.optional,
        )
    } else if let Some(secret) = &from.secret_ref {
        (
            sources.secret_pairs(&secret.name),
            "secret",
            &secret.name,
            secret.optional,
        )
    } else {
        return Ok(Vec::new());
    };
    match pairs {
        Some(pairs) => Ok(pairs
            .into_iter()
            .map(|(k, v)| (format!("{prefix}{k}"), v))
            .filter(|(k, v)| is_env_name(k) && is_env_value(v))
            .collect()),
        None if optional == Some(true) => Ok(Vec::new()),
        None => Err(Error::config(format!("{kind} \"{name}\" not found"))),
    }
}

fn env_var_value(
    pod: &Pod,
    var: &EnvVar,
    sources: &Sources,
    defined: &[(String, String)],
) -> Result<Option<String>, Error> {
    let Some(source) = &var.value_from else {
        return Ok(Some(expand_with(
            var.value.as_deref().unwrap_or(""),
            defined,
        )));
    };
    if let Some(key) = &source.secret_key_ref {
        let value = sources.secret_value(&key.name, &key.key);
        return required(value, key.optional, "secret", &key.name, &key.key);
    }
    if let Some(key) = &source.config_map_key_ref {
        let value = sources.config_map_value(&key.name, &key.key);
        return required(value, key.optional, "configmap", &key.name, &key.key);
    }
    if let Some(field) = &source.field_ref {
        return field_value(pod, field).map(Some);
    }
    Ok(None)
}

fn required(
    value: Option<String>,
    optional: Option<bool>,
    kind: &str,
    name: &str,
    key: &str,
) -> Result<Option<String>, Error> {
    match value {
        Some(value) => Ok(Some(value)),
        None if optional == Some(true) => Ok(None),
        None => Err(Error::config(format!(
            "couldn't find key {key} in {kind} \"{name}\""
        ))),
    }
}

/// The value of a downward-API field of the pod.
pub fn field_value(pod: &Pod, field: &ObjectFieldSelector) -> Result<String, Error> {
    let meta = &pod.metadata;
    let spec = pod.spec.as_ref();
    let path = field.field_path.as_str();
    let value = match path {
        "metadata.name" => meta.name.clone(),
        "metadata.namespace" => meta.namespace.clone(),
        "metadata.uid" => meta.uid.clone(),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()),
        "spec.serviceAccountName" => spec.and_then(|s| s.service_account_name.clone()),
        "status.podIP" | "status.hostIP" => Some(crate::status::POD_IP.to_owned()),
        _ => map_field(path, "metadata.labels", meta.labels.as_ref())
            .or_else(|| map_field(path, "metadata.annotations", meta.annotations.as_ref()))
            .ok_or_else(|| Error::config(format!("unsupported field path {path}")))?,
    };
    Ok(value.unwrap_or_default())
}

/// `metadata.labels['key']` style paths; `Some(None)` when the key is absent.
fn map_field(
    path: &str,
    prefix: &str,
    map: Option<&BTreeMap<String, String>>,
) -> Option<Option<String>> {
    let key = path
        .strip_prefix(prefix)?
        .strip_prefix("['")?
        .strip_suffix("']")?;
    Some(map.and_then(|m| m.get(key).cloned()))
}

fn is_env_name(name: &str) -> bool {
    !name.is_empty() && !name.contains('=') && !name.contains('\0')
}

/// A process environment cannot hold NUL bytes; such a variable is left out.
fn is_env_value(value: &str) -> bool {
    !value.contains('\0')
}

fn dedup_keep_last(vars: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut seen = BTreeSet::new();
    let mut out: Vec<(String, String)> = vars
        .into_iter()
        .rev()
        .filter(|(k, _)| seen.insert(k.clone()))
        .collect();
    out.reverse();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;
    use serde_json::json;

    fn pod() -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u1", "labels": {"app": "a"}},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}
        }))
        .unwrap()
    }

    fn container(extra: serde_json::Value) -> Container {
        let mut value = json!({"name": "c", "image": "busybox"});
        value
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        serde_json::from_value(value).unwrap()
    }

    fn sources() -> Sources {
        let cm: ConfigMap = serde_json::from_value(json!({
            "metadata": {"name": "cfg"}, "data": {"MODE": "fast", "bad=key": "x"},
            "binaryData": {"BLOB": "aGk="}
        }))
        .unwrap();
        let data = [("password".to_owned(), ByteString(b"s3cr3t".to_vec()))];
        let secret = Secret {
            data: Some(data.into()),
            ..Secret::default()
        };
        Sources {
            config_maps: [("cfg".to_owned(), Some(cm)), ("gone".to_owned(), None)].into(),
            secrets: [("db".to_owned(), Some(secret))].into(),
        }
    }

    fn get<'a>(vars: &'a [(String, String)], name: &str) -> Option<&'a str> {
        vars.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn env_reads_secrets_config_maps_fields_and_expands_earlier_values() {
        let c = container(json!({"env": [
            {"name": "PASS", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
            {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "MODE"}}},
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
            {"name": "URL", "value": "http://$(POD).$(NS):$(PORT)/$(UNSET)"}
        ]}));
        let base = vec![("PORT".to_owned(), "6443".to_owned())];
        let vars = container_env(&pod(), &c, &sources(), base).unwrap();
        assert_eq!(get(&vars, "PASS"), Some("s3cr3t"));
        assert_eq!(get(&vars, "MODE"), Some("fast"));
        assert_eq!(get(&vars, "APP"), Some("a"));
        assert_eq!(get(&vars, "URL"), Some("http://p.ns:6443/$(UNSET)"));
    }

    #[test]
    fn env_from_adds_prefixed_keys_skips_invalid_names_and_env_overrides_it() {
        let c = container(json!({
            "envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "CFG_"},
                        {"secretRef": {"name": "db"}}],
            "env": [{"name": "CFG_MODE", "value": "slow"}]
        }));
        let vars = container_env(&pod(), &c, &sources(), Vec::new()).unwrap();
        assert_eq!(get(&vars, "CFG_MODE"), Some("slow"));
        assert!(
            get(&vars, "CFG_BLOB").is_none(),
            "binaryData is not for env"
        );
        assert_eq!(get(&vars, "password"), Some("s3cr3t"));
        assert!(get(&vars, "CFG_bad=key").is_none());
        assert_eq!(vars.iter().filter(|(k, _)| k == "CFG_MODE").count(), 1);
    }

    #[test]
    fn missing_required_reference_is_a_config_error_naming_no_value() {
        let c = container(json!({"env": [
            {"name": "X", "valueFrom": {"secretKeyRef": {"name": "db", "key": "nope"}}}
        ]}));
        let err = container_env(&pod(), &c, &sources(), Vec::new()).unwrap_err();
        assert_eq!(err.to_string(), "couldn't find key nope in secret \"db\"");
        let c = container(json!({"envFrom": [{"configMapRef": {"name": "gone"}}]}));
        let err = container_env(&pod(), &c, &sources(), Vec::new()).unwrap_err();
        assert_eq!(err.to_string(), "configmap \"gone\" not found");
    }

    #[test]
    fn values_with_nul_bytes_are_left_out_of_the_environment() {
        let mut sources = sources();
        let data = [("bin".to_owned(), ByteString(vec![0, 1]))];
        let secret = Secret {
            data: Some(data.into()),
            ..Secret::default()
        };
        sources.secrets.insert("raw".to_owned(), Some(secret));
        let c = container(json!({"envFrom": [{"secretRef": {"name": "raw"}}], "env": [
            {"name": "B", "valueFrom": {"secretKeyRef": {"name": "raw", "key": "bin"}}}
        ]}));
        let vars = container_env(&pod(), &c, &sources, Vec::new()).unwrap();
        assert!(vars.is_empty(), "{vars:?}");
    }

    #[test]
    fn optional_missing_references_are_skipped() {
        let c = container(json!({
            "envFrom": [{"configMapRef": {"name": "gone", "optional": true}}],
            "env": [{"name": "X", "valueFrom": {"secretKeyRef":
                {"name": "nosuch", "key": "k", "optional": true}}}]
        }));
        let vars = container_env(&pod(), &c, &sources(), Vec::new()).unwrap();
        assert!(vars.is_empty());
    }

    #[test]
    fn references_cover_env_env_from_and_volumes() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p"},
            "spec": {
                "initContainers": [{"name": "i", "envFrom": [{"secretRef": {"name": "s1"}}]}],
                "containers": [{"name": "c", "env": [{"name": "A", "valueFrom":
                    {"configMapKeyRef": {"name": "c1", "key": "k"}}}]}],
                "volumes": [
                    {"name": "v1", "secret": {"secretName": "s2"}},
                    {"name": "v2", "configMap": {"name": "c2"}},
                    {"name": "v3", "projected": {"sources": [
                        {"configMap": {"name": "kube-root-ca.crt"}}]}}
                ]
            }
        }))
        .unwrap();
        let refs = references(&pod);
        let names = |s: &BTreeSet<String>| s.iter().cloned().collect::<Vec<_>>();
        assert_eq!(names(&refs.secrets), ["s1", "s2"]);
        assert_eq!(names(&refs.config_maps), ["c1", "c2", "kube-root-ca.crt"]);
    }
}
