//! The pod status writer.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;
use tokio::sync::watch;
use tracing::warn;

use crate::ctx::Ctx;
use crate::error::{chain, is_not_found};
use crate::pod::PodKey;
use crate::status::PodRun;

/// Writes the pod's status in the background, coalescing changes and retrying while the API
/// server is away.
pub struct StatusWriter {
    version: watch::Sender<u64>,
    written: watch::Receiver<u64>,
}

impl StatusWriter {
    pub fn spawn(ctx: Arc<Ctx>, key: PodKey, shared: Arc<Mutex<PodRun>>) -> Self {
        let (version, mut wanted) = watch::channel(0_u64);
        let (written_tx, written) = watch::channel(0_u64);
        tokio::spawn(async move {
            let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &key.namespace);
            while wanted.changed().await.is_ok() {
                let target = *wanted.borrow_and_update();
                if !write_until_done(&api, &key, &shared).await {
                    break;
                }
                let _ = written_tx.send(target);
            }
        });
        Self { version, written }
    }

    pub fn notify(&self) {
        self.version.send_modify(|v| *v += 1);
    }

    /// Waits (at most a minute) until the latest change is written.
    pub async fn flush(&mut self) {
        let target = *self.version.borrow();
        let wait = self.written.wait_for(|w| *w >= target);
        let _ = tokio::time::timeout(Duration::from_secs(60), wait).await;
    }
}

/// Patches the status until it is accepted; false once the pod is gone.
async fn write_until_done(api: &Api<Pod>, key: &PodKey, shared: &Mutex<PodRun>) -> bool {
    let mut delay = Duration::from_millis(200);
    loop {
        let status = {
            let mut run = shared
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            run.status(Timestamp::now())
        };
        let patch = Patch::Merge(json!({"status": status}));
        match api
            .patch_status(&key.name, &PatchParams::default(), &patch)
            .await
        {
            Ok(_) => return true,
            Err(error) if is_not_found(&error) => return false,
            Err(error) => {
                let error = chain(&error);
                let (pod, namespace) = (&key.name, &key.namespace);
                warn!(%pod, %namespace, error = %error, "Failed to write pod status");
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}
