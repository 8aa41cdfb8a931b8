//! The test Node: registered Ready, with a heartbeat (node status and its Lease in
//! `kube-node-lease`) so it stays Ready if a node-lifecycle controller is ever started.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;
use tracing::{info, warn};

use crate::error::{Error, chain};

/// The field manager of everything the runner applies.
pub const FIELD_MANAGER: &str = "pod-runner";
/// How often the node status and its Lease are renewed.
const HEARTBEAT: Duration = Duration::from_secs(10);
const LEASE_SECONDS: i32 = 40;
const LEASE_NAMESPACE: &str = "kube-node-lease";

/// The Node object the runner applies (labels, no taints).
pub fn node_object(name: &str) -> serde_json::Value {
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": std::env::consts::ARCH.replace("x86_64", "amd64"),
                "datamigrate.dev/pod-runner": "true",
            },
        },
    })
}

/// The Node's status: Ready, loopback address, capacity and a runner-specific node info.
pub fn node_status(name: &str, now: Timestamp) -> serde_json::Value {
    let time = Time(now);
    let condition = |kind: &str, status: &str, reason: &str, message: &str| {
        json!({"type": kind, "status": status, "reason": reason, "message": message,
               "lastHeartbeatTime": time, "lastTransitionTime": time})
    };
    let capacity =
        json!({"cpu": "8", "memory": "32Gi", "pods": "250", "ephemeral-storage": "100Gi"});
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name},
        "status": {
            "conditions": [
                condition("Ready", "True", "KubeletReady", "pod-runner is posting ready status"),
                condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "ok"),
                condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "ok"),
                condition("PIDPressure", "False", "KubeletHasSufficientPID", "ok"),
            ],
            "addresses": [
                {"type": "InternalIP", "address": crate::status::POD_IP},
                {"type": "Hostname", "address": name},
            ],
            "capacity": capacity,
            "allocatable": capacity,
            "nodeInfo": {
                "architecture": "amd64", "bootID": "", "containerRuntimeVersion": "pod-runner://0",
                "kernelVersion": "", "kubeProxyVersion": "", "kubeletVersion": "v1.37.2",
                "machineID": name, "operatingSystem": "linux", "osImage": "pod-runner",
                "systemUUID": name,
            },
        },
    })
}

/// Applies the Node and its status once.
pub async fn register(client: &kube::Client, name: &str) -> Result<(), Error> {
    let api: Api<Node> = Api::all(client.clone());
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let api_error = |source| Error::Api {
        action: "apply node",
        name: name.to_owned(),
        source,
    };
    api.patch(name, &params, &Patch::Apply(node_object(name)))
        .await
        .map_err(api_error)?;
    renew(client, name).await
}

async fn renew(client: &kube::Client, name: &str) -> Result<(), Error> {
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let now = Timestamp::now();
    let nodes: Api<Node> = Api::all(client.clone());
    let status = Patch::Apply(node_status(name, now));
    let api_error = |action| {
        move |source| Error::Api {
            action,
            name: name.to_owned(),
            source,
        }
    };
    nodes
        .patch_status(name, &params, &status)
        .await
        .map_err(api_error("apply node status"))?;
    let leases: Api<Lease> = Api::namespaced(client.clone(), LEASE_NAMESPACE);
    let lease = json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": name},
        "spec": {"holderIdentity": name, "leaseDurationSeconds": LEASE_SECONDS,
                 "renewTime": MicroTime(now)},
    });
    leases
        .patch(name, &params, &Patch::Apply(lease))
        .await
        .map_err(api_error("apply lease"))?;
    Ok(())
}

/// Registers the node, retrying until the API server answers, then renews it forever.
pub async fn keep_alive(client: kube::Client, name: String) {
    let mut registered = false;
    loop {
        let result = if registered {
            renew(&client, &name).await
        } else {
            register(&client, &name).await
        };
        match result {
            Ok(()) if !registered => {
                registered = true;
                info!(node = %name, "Registered node");
            }
            Ok(()) => {}
            Err(error) => warn!(node = %name, error = %chain(&error), "Failed to renew node"),
        }
        let pause = if registered {
            HEARTBEAT
        } else {
            Duration::from_secs(1)
        };
        tokio::time::sleep(pause).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_status_is_ready_on_loopback() {
        let status = node_status("n1", Timestamp::UNIX_EPOCH);
        let ready = &status["status"]["conditions"][0];
        assert_eq!(
            (ready["type"].as_str(), ready["status"].as_str()),
            (Some("Ready"), Some("True"))
        );
        assert_eq!(status["status"]["addresses"][0]["address"], "127.0.0.1");
        let node: Node = serde_json::from_value(status).unwrap();
        assert_eq!(
            node.status.unwrap().node_info.unwrap().operating_system,
            "linux"
        );
    }

    #[test]
    fn node_object_has_no_taints_and_hostname_label() {
        let node: Node = serde_json::from_value(node_object("n1")).unwrap();
        assert!(node.spec.is_none());
        assert_eq!(
            node.metadata.labels.unwrap()["kubernetes.io/hostname"],
            "n1"
        );
    }
}
