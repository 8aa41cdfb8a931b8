//! Timestamps per Migration, taken from watches: when the driver sent it, when its first Job
//! appeared (a Job whose owner is the Migration), when its status was first written.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use datamigrate::crd::Migration;
use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use kube::api::{ApiResource, DynamicObject};
use kube::core::PartialObjectMeta;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event, watcher};
use kube::{Api, Client, ResourceExt};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

use crate::error::{Error, Result};

/// How long the watches get to list and start.
const WATCH_START: Duration = Duration::from_secs(30);

/// What was seen of one Migration.
#[derive(Debug, Default, Clone, Copy)]
pub struct Marks {
    /// Just before the create request was sent.
    pub sent: Option<Instant>,
    /// When the driver's Migration watch first saw it (one write, one watch hop).
    pub seen: Option<Instant>,
    /// When the driver's Job watch first saw a Job owned by it.
    pub job: Option<Instant>,
    /// When the driver's Migration watch first saw it with a non-empty status.
    pub status: Option<Instant>,
}

impl Marks {
    /// Sent to first Job, in milliseconds.
    pub fn job_ms(&self) -> Option<f64> {
        Some(
            self.job?
                .saturating_duration_since(self.sent?)
                .as_secs_f64()
                * 1e3,
        )
    }

    /// Sent to visible on a watch, in milliseconds.
    pub fn seen_ms(&self) -> Option<f64> {
        Some(
            self.seen?
                .saturating_duration_since(self.sent?)
                .as_secs_f64()
                * 1e3,
        )
    }

    /// Sent to first status write, in milliseconds.
    pub fn status_ms(&self) -> Option<f64> {
        Some(
            self.status?
                .saturating_duration_since(self.sent?)
                .as_secs_f64()
                * 1e3,
        )
    }
}

/// Which mark a waiter needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// The first Job.
    Job,
    /// The first Job and the first status write.
    JobAndStatus,
}

impl Need {
    fn met(self, m: &Marks) -> bool {
        match self {
            Self::Job => m.job.is_some(),
            Self::JobAndStatus => m.job.is_some() && m.status.is_some(),
        }
    }
}

/// The marks of one namespace, fed by two watches.
pub struct Tracker {
    marks: Mutex<HashMap<String, Marks>>,
    changed: Notify,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Tracker {
    /// Starts the watches on Jobs and Migrations of `ns`; returns once both have listed.
    pub async fn start(client: &Client, ns: &str) -> Result<Arc<Self>> {
        let tracker = Arc::new(Self {
            marks: Mutex::new(HashMap::new()),
            changed: Notify::new(),
            tasks: Mutex::new(Vec::new()),
        });
        let (ready_tx, mut ready_rx) = mpsc::channel::<()>(2);
        let jobs = tokio::spawn(watch_jobs(
            Api::namespaced(client.clone(), ns),
            Arc::clone(&tracker),
            ready_tx.clone(),
        ));
        let resource = ApiResource::erase::<Migration>(&());
        let migrations = tokio::spawn(watch_migrations(
            Api::namespaced_with(client.clone(), ns, &resource),
            Arc::clone(&tracker),
            ready_tx,
        ));
        tracker.lock_tasks().extend([jobs, migrations]);
        for _ in 0..2 {
            let started = tokio::time::timeout(WATCH_START, ready_rx.recv()).await;
            if !matches!(started, Ok(Some(()))) {
                tracker.stop();
                let what = format!("the watches of namespace {ns}");
                return Err(Error::Timeout {
                    what,
                    seconds: WATCH_START.as_secs(),
                });
            }
        }
        Ok(tracker)
    }

    /// Stops the watches.
    pub fn stop(&self) {
        for task in self.lock_tasks().drain(..) {
            task.abort();
        }
    }

    /// Records that `name` is about to be sent.
    pub fn sent(&self, name: &str) {
        self.lock().entry(name.to_owned()).or_default().sent = Some(Instant::now());
    }

    /// A copy of every mark.
    pub fn snapshot(&self) -> HashMap<String, Marks> {
        self.lock().clone()
    }

    /// Waits until `name` has what `need` asks for; false on timeout.
    pub async fn wait_one(&self, name: &str, need: Need, timeout: Duration) -> bool {
        self.wait_until(timeout, |marks| {
            marks.get(name).is_some_and(|m| need.met(m))
        })
        .await
    }

    /// Waits until every sent Migration has what `need` asks for; false on timeout.
    pub async fn wait_all(&self, need: Need, timeout: Duration) -> bool {
        self.wait_until(timeout, |marks| {
            marks
                .values()
                .filter(|m| m.sent.is_some())
                .all(|m| need.met(m))
        })
        .await
    }

    async fn wait_until<F>(&self, timeout: Duration, done: F) -> bool
    where
        F: Fn(&HashMap<String, Marks>) -> bool,
    {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            if done(&self.lock()) {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return false;
            }
        }
    }

    fn mark(&self, name: String, set: impl FnOnce(&mut Marks)) {
        set(self.lock().entry(name).or_default());
        self.changed.notify_waiters();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Marks>> {
        self.marks.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_tasks(&self) -> std::sync::MutexGuard<'_, Vec<JoinHandle<()>>> {
        self.tasks.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Marks the owner of every Job that appears.
async fn watch_jobs(
    api: Api<PartialObjectMeta<Job>>,
    tracker: Arc<Tracker>,
    ready: mpsc::Sender<()>,
) {
    let stream = watcher(api, watcher::Config::default()).default_backoff();
    let mut stream = std::pin::pin!(stream);
    while let Some(event) = stream.next().await {
        match event {
            Ok(Event::Apply(job) | Event::InitApply(job)) => {
                let now = Instant::now();
                let owners = job
                    .owner_references()
                    .iter()
                    .filter(|o| o.kind == "Migration");
                for owner in owners {
                    tracker.mark(owner.name.clone(), |m| {
                        m.job.get_or_insert(now);
                    });
                }
            }
            Ok(Event::InitDone) => {
                let _ = ready.try_send(());
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = &e as &dyn std::error::Error, "Job watch failed"),
        }
    }
}

/// Marks when each Migration is first seen, and first seen with a non-empty status.
async fn watch_migrations(api: Api<DynamicObject>, tracker: Arc<Tracker>, ready: mpsc::Sender<()>) {
    let stream = watcher(api, watcher::Config::default()).default_backoff();
    let mut stream = std::pin::pin!(stream);
    while let Some(event) = stream.next().await {
        match event {
            Ok(Event::Apply(obj) | Event::InitApply(obj)) => {
                let now = Instant::now();
                let written = has_status(&obj);
                tracker.mark(obj.name_any(), |m| {
                    m.seen.get_or_insert(now);
                    if written {
                        m.status.get_or_insert(now);
                    }
                });
            }
            Ok(Event::InitDone) => {
                let _ = ready.try_send(());
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(
                error = &e as &dyn std::error::Error,
                "Migration watch failed"
            ),
        }
    }
}

/// True when the object carries a status with at least one field.
fn has_status(obj: &DynamicObject) -> bool {
    obj.data
        .get("status")
        .and_then(|s| s.as_object())
        .is_some_and(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_give_latencies_only_when_both_ends_are_known() {
        let sent = Instant::now();
        let m = Marks {
            sent: Some(sent),
            seen: None,
            job: Some(sent + Duration::from_millis(7)),
            status: None,
        };
        assert!((m.job_ms().unwrap() - 7.0).abs() < 0.01);
        assert!(m.status_ms().is_none());
        assert!(Need::Job.met(&m) && !Need::JobAndStatus.met(&m));
    }

    #[test]
    fn empty_status_does_not_count_as_written() {
        let mut obj = DynamicObject::new("a", &ApiResource::erase::<Migration>(&()));
        assert!(!has_status(&obj));
        obj.data = serde_json::json!({"status": {}});
        assert!(!has_status(&obj));
        obj.data = serde_json::json!({"status": {"phase": "Pending"}});
        assert!(has_status(&obj));
    }
}
