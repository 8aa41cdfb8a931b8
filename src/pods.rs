//! Step pods that cannot start: a missing Secret or claim, an image that cannot be pulled, a
//! pod no node can take.
//!
//! The Job of such a pod shows only that it is active, so the controller watches the pods of
//! its Jobs (by the managed-by label, without caching them) and keeps just the blocked ones, a
//! few entries at most. A pod entering or leaving a blocked state triggers a reconcile of its
//! Migration, which then reports the pod's reason in the Ready condition and an Event.

use std::collections::BTreeMap;
use std::sync::Mutex;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;

use crate::crd::Migration;
use crate::job::LABEL_MIGRATION;
use crate::truncate;

/// Container waiting reasons that mean the container will not start without a change (to the
/// cluster, the referenced objects or the spec); `ContainerCreating` and `PodInitializing` are
/// the ordinary way to start and are left out.
const BLOCKING_REASONS: &[&str] = &[
    "CreateContainerConfigError",
    "CreateContainerError",
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "ErrImageNeverPull",
    "RunContainerError",
];

/// Label the Job controller puts on its pods.
const LABEL_JOB_NAME: &str = "batch.kubernetes.io/job-name";

/// Why one pod of a step Job cannot start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodBlocker {
    /// The Migration, by the pod's migration label.
    pub migration: String,
    /// The pod's Job.
    pub job: String,
    /// The pod.
    pub pod: String,
    /// The kubelet's or the scheduler's reason (`CreateContainerConfigError`, `Unschedulable`).
    pub reason: String,
    /// Its message, one line.
    pub message: String,
}

/// The blocked step pods, by namespace and pod name.
#[derive(Debug, Default)]
pub struct Blockers {
    blocked: Mutex<BTreeMap<(String, String), PodBlocker>>,
    /// Filled during a watch re-list; replaces `blocked` when the list is done, so pods deleted
    /// while the watch was down leave no entry behind.
    relist: Mutex<Option<BTreeMap<(String, String), PodBlocker>>>,
}

impl Blockers {
    /// Why a pod of `job` (in `namespace`) cannot start, if one cannot.
    #[must_use]
    pub fn for_job(&self, namespace: &str, job: &str) -> Option<PodBlocker> {
        let blocked = self.blocked.lock().unwrap_or_else(|e| e.into_inner());
        blocked
            .iter()
            .find(|((ns, _), b)| ns == namespace && b.job == job)
            .map(|(_, b)| b.clone())
    }

    /// How many pods are blocked.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.blocked.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether no pod is blocked.
    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes one watch event; returns the pod when its Migration should be reconciled (the
    /// pod became blocked, changed its reason, or stopped being blocked).
    pub fn observe(&self, event: watcher::Event<Pod>) -> Option<Pod> {
        match event {
            watcher::Event::Init => {
                *self.relist.lock().unwrap_or_else(|e| e.into_inner()) = Some(BTreeMap::new());
                None
            }
            watcher::Event::InitApply(pod) => {
                if let (Some(key), Some(b)) = (pod_key(&pod), blocker(&pod)) {
                    let mut relist = self.relist.lock().unwrap_or_else(|e| e.into_inner());
                    relist.get_or_insert_default().insert(key, b);
                }
                // The re-listed state is compared when the list is done; every Migration is
                // reconciled at start-up anyway.
                None
            }
            watcher::Event::InitDone => {
                let fresh = self.relist.lock().unwrap_or_else(|e| e.into_inner()).take();
                *self.blocked.lock().unwrap_or_else(|e| e.into_inner()) = fresh.unwrap_or_default();
                None
            }
            watcher::Event::Apply(pod) => self.update(pod, true),
            watcher::Event::Delete(pod) => self.update(pod, false),
        }
    }

    fn update(&self, pod: Pod, exists: bool) -> Option<Pod> {
        let key = pod_key(&pod)?;
        let now = if exists { blocker(&pod) } else { None };
        let mut blocked = self.blocked.lock().unwrap_or_else(|e| e.into_inner());
        let before = match &now {
            Some(b) => blocked.insert(key, b.clone()),
            None => blocked.remove(&key),
        };
        (before != now).then_some(pod)
    }
}

fn pod_key(pod: &Pod) -> Option<(String, String)> {
    Some((pod.namespace()?, pod.metadata.name.clone()?))
}

/// Why `pod` cannot start, if it cannot: a container (init containers first) waiting for a
/// blocking reason, or the scheduler finding no node.
#[must_use]
pub fn blocker(pod: &Pod) -> Option<PodBlocker> {
    let labels = pod.metadata.labels.as_ref()?;
    let (migration, job) = (labels.get(LABEL_MIGRATION)?, labels.get(LABEL_JOB_NAME)?);
    let status = pod.status.as_ref()?;
    if matches!(status.phase.as_deref(), Some("Succeeded" | "Failed")) {
        return None;
    }
    let waiting = [&status.init_container_statuses, &status.container_statuses]
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|c| c.state.as_ref()?.waiting.as_ref())
        .find(|w| {
            w.reason
                .as_deref()
                .is_some_and(|r| BLOCKING_REASONS.contains(&r))
        })
        .map(|w| (w.reason.clone(), w.message.clone()));
    let unschedulable = || {
        status
            .conditions
            .iter()
            .flatten()
            .find(|c| {
                c.type_ == "PodScheduled"
                    && c.status == "False"
                    && c.reason.as_deref() == Some("Unschedulable")
            })
            .map(|c| (c.reason.clone(), c.message.clone()))
    };
    let (reason, message) = waiting.or_else(unschedulable)?;
    Some(PodBlocker {
        migration: migration.clone(),
        job: job.clone(),
        pod: pod.metadata.name.clone()?,
        reason: reason.unwrap_or_default(),
        message: one_line(message.as_deref().unwrap_or("no message")),
    })
}

fn one_line(text: &str) -> String {
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    truncate(&joined, 512)
}

/// The Migration a step pod belongs to, by its migration label.
#[must_use]
pub fn owner_migration(pod: &Pod) -> Option<ObjectRef<Migration>> {
    let name = pod.labels().get(LABEL_MIGRATION)?;
    Some(ObjectRef::new(name).within(&pod.namespace()?))
}

/// The pods of `stream` whose Migration should be reconciled (see [`Blockers::observe`]).
pub fn triggers<S>(
    stream: S,
    blockers: std::sync::Arc<Blockers>,
) -> impl Stream<Item = Result<Pod, watcher::Error>> + Send + 'static
where
    S: Stream<Item = Result<watcher::Event<Pod>, watcher::Error>> + Send + 'static,
{
    stream.filter_map(move |event| {
        let out = match event {
            Ok(event) => blockers.observe(event).map(Ok),
            Err(e) => Some(Err(e)),
        };
        futures::future::ready(out)
    })
}

#[cfg(test)]
#[path = "pods_tests.rs"]
mod tests;
