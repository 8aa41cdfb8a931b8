//! The objects the benchmark puts in the cluster: namespaces, the script ConfigMap the
//! Migrations point at, and the Migrations themselves.

use std::time::{Duration, Instant};

use datamigrate::crd::Migration;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{ApiResource, DeleteParams, DynamicObject, ListParams, PostParams};
use kube::{Api, Client};

use crate::error::{self, Error, Result};
use crate::tracker::Tracker;

/// ConfigMap every bench Migration reads its (tiny) script from.
pub const SCRIPT_CONFIGMAP: &str = "bench-script";
/// Label on every object the driver creates.
pub const BENCH_LABEL: &str = "datamigrate.ai/bench";
/// A valid one-table script, so the spec is the one a user would write.
const SCRIPT: &str = "CREATE TABLE dbo.t (id INT NOT NULL PRIMARY KEY);\n";

/// Creates `ns` (if missing) and its script ConfigMap.
pub async fn prepare_namespace(client: &Client, ns: &str) -> Result<()> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let namespace: Namespace = serde_json::from_value(serde_json::json!({
        "metadata": {"name": ns, "labels": {BENCH_LABEL: "true"}}
    }))
    .map_err(error::json("build a namespace"))?;
    create_or_keep(&namespaces, &namespace, &format!("create namespace {ns}")).await?;
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let configmap: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": SCRIPT_CONFIGMAP, "labels": {BENCH_LABEL: "true"}},
        "data": {"schema.sql": SCRIPT}
    }))
    .map_err(error::json("build the script configmap"))?;
    create_or_keep(
        &configmaps,
        &configmap,
        &format!("create configmap in {ns}"),
    )
    .await
}

async fn create_or_keep<K>(api: &Api<K>, obj: &K, what: &str) -> Result<()>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    match api.create(&PostParams::default(), obj).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.is_already_exists() => Ok(()),
        Err(e) => Err(error::kube(what)(e)),
    }
}

/// The Migrations API of `ns`, untyped so the driver never depends on optional spec fields.
pub fn migrations(client: &Client, ns: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), ns, &ApiResource::erase::<Migration>(&()))
}

/// A minimal valid Migration: a script from the bench ConfigMap to a DuckDB project.
pub fn migration(name: &str) -> DynamicObject {
    let mut obj = DynamicObject::new(name, &ApiResource::erase::<Migration>(&()));
    obj.metadata.labels = Some([(BENCH_LABEL.to_owned(), "true".to_owned())].into());
    obj.data = serde_json::json!({"spec": {
        "source": {"script": {"configMapKeyRef": {"name": SCRIPT_CONFIGMAP, "key": "schema.sql"}}},
        "target": {"dialect": "duckdb", "projectName": "bench"}
    }});
    obj
}

/// Name of the `i`th Migration of a scenario.
pub fn migration_name(prefix: &str, i: usize) -> String {
    format!("{prefix}-{i:05}")
}

/// Records the send time and creates one Migration.
pub async fn create_migration(
    api: &Api<DynamicObject>,
    tracker: &Tracker,
    name: &str,
) -> Result<()> {
    let obj = migration(name);
    tracker.sent(name);
    api.create(&PostParams::default(), &obj)
        .await
        .map(|_| ())
        .map_err(error::kube(format!("create migration {name}")))
}

/// Creates the Migrations `from..to` with at most `concurrency` requests in flight; returns
/// how long the creates took.
pub async fn create_many(
    api: &Api<DynamicObject>,
    tracker: &Tracker,
    prefix: &str,
    range: std::ops::Range<usize>,
    concurrency: usize,
) -> Result<Duration> {
    let start = Instant::now();
    futures::stream::iter(range)
        .map(|i| {
            let name = migration_name(prefix, i);
            async move { create_migration(api, tracker, &name).await }
        })
        .buffer_unordered(concurrency.max(1))
        .try_collect::<Vec<()>>()
        .await?;
    Ok(start.elapsed())
}

/// Deletes every bench Migration of `ns` and waits until they are gone (a running operator
/// removes its finalizers, if it has any).
pub async fn delete_migrations(client: &Client, ns: &str, timeout: Duration) -> Result<()> {
    let api = migrations(client, ns);
    let selector = ListParams::default().labels(&format!("{BENCH_LABEL}=true"));
    api.delete_collection(&DeleteParams::background(), &selector)
        .await
        .map_err(error::kube(format!("delete the migrations of {ns}")))?;
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        let left = api
            .list_metadata(&selector.clone().limit(1))
            .await
            .map_err(error::kube(format!("list the migrations of {ns}")))?;
        if left.items.is_empty() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let what = format!("the migrations of {ns} to be deleted");
    Err(Error::Timeout {
        what,
        seconds: timeout.as_secs(),
    })
}

/// Deletes `ns` without waiting (its Jobs and pods go with it).
pub async fn delete_namespace(client: &Client, ns: &str) -> Result<()> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    match namespaces.delete(ns, &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(error::kube(format!("delete namespace {ns}"))(e)),
    }
}
