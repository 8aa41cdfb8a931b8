//! `bench-floor`: the floor of `scripts/bench`. A minimal client that watches Migrations and
//! creates one Job per new Migration, and nothing else: no status, no cache of other kinds, no
//! retries beyond the watcher's own backoff. What the operator costs is reported as a ratio to
//! what this client costs against the same API server in the same run.
//!
//! It prints `ready` on stdout once its first list of Migrations is done (the watch is live).

use std::collections::HashSet;
use std::io::Write as _;
use std::sync::Arc;

use clap::Parser;
use datamigrate::crd::Migration;
use futures::StreamExt;
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::PostParams;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use tokio::sync::Semaphore;
use tracing::{info, warn};

/// Label on every Job this client creates.
const MANAGED_BY: &str = "datamigrate-bench-floor";
/// Label naming the Job's Migration.
const MIGRATION_LABEL: &str = "datamigrate.ai/migration";
/// Suffix of the Job's name (`<migration>-floor`).
const JOB_SUFFIX: &str = "-floor";

/// Command-line options.
#[derive(Debug, Parser)]
#[command(
    name = "bench-floor",
    about = "Creates one Job per new Migration, nothing else"
)]
struct Args {
    /// Watch only this namespace (default: every namespace).
    #[arg(long)]
    namespace: Option<String>,
    /// Image of the Job's one container (never pulled: the bench runs no node).
    #[arg(long, default_value = "busybox:1.36")]
    image: String,
    /// Create the Jobs suspended (the Job controller then creates no pods).
    #[arg(long)]
    suspend: bool,
    /// Most Job creations in flight at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
}

/// Why a Job could not be made for a Migration.
#[derive(Debug, thiserror::Error)]
enum Error {
    /// The Migration has no namespace or uid (not a stored object).
    #[error("migration {name} has no namespace or uid")]
    NotStored {
        /// The Migration's name.
        name: String,
    },
    /// The API server refused the Job.
    #[error("failed to create job {name}")]
    CreateJob {
        /// The Job's name.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .json()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let args = Args::parse();
    let client = match Client::try_default().await {
        Ok(client) => client,
        Err(e) => {
            warn!(
                error = &e as &dyn std::error::Error,
                "Failed to build the client"
            );
            return std::process::ExitCode::FAILURE;
        }
    };
    run(client, Arc::new(args)).await;
    std::process::ExitCode::SUCCESS
}

/// Watches Migrations and hands each one not seen before to `create_job`.
async fn run(client: Client, args: Arc<Args>) {
    let migrations: Api<Migration> = match &args.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let permits = Arc::new(Semaphore::new(args.concurrency.max(1)));
    let mut seen: HashSet<String> = HashSet::new();
    let mut ready = false;
    let stream = watcher(migrations, watcher::Config::default()).default_backoff();
    let mut stream = std::pin::pin!(stream);
    while let Some(event) = stream.next().await {
        match event {
            Ok(Event::Apply(m) | Event::InitApply(m)) => {
                if seen.insert(m.uid().unwrap_or_default()) {
                    spawn_create(client.clone(), Arc::clone(&args), &permits, m).await;
                }
            }
            Ok(Event::Delete(m)) => {
                seen.remove(&m.uid().unwrap_or_default());
            }
            Ok(Event::InitDone) if !ready => {
                ready = true;
                announce_ready();
            }
            Ok(Event::Init | Event::InitDone) => {}
            Err(e) => warn!(
                error = &e as &dyn std::error::Error,
                "Watch failed, retrying"
            ),
        }
    }
}

/// Prints `ready` for the bench driver.
fn announce_ready() {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "ready");
    let _ = out.flush();
    info!("Watching migrations");
}

/// Waits for a free slot, then creates the Migration's Job in a task of its own.
async fn spawn_create(client: Client, args: Arc<Args>, permits: &Arc<Semaphore>, m: Migration) {
    let Ok(permit) = Arc::clone(permits).acquire_owned().await else {
        return;
    };
    tokio::spawn(async move {
        if let Err(e) = create_job(client, &args, &m).await {
            warn!(
                error = &e as &dyn std::error::Error,
                "Failed to create the job"
            );
        }
        drop(permit);
    });
}

/// Creates the Job; one that exists already counts as done.
async fn create_job(client: Client, args: &Args, m: &Migration) -> Result<(), Error> {
    let job = build_job(m, &args.image, args.suspend)?;
    let name = job.name_any();
    let ns = job.namespace().unwrap_or_default();
    let jobs: Api<Job> = Api::namespaced(client, &ns);
    match jobs.create(&PostParams::default(), &job).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.is_already_exists() => Ok(()),
        Err(source) => Err(Error::CreateJob { name, source }),
    }
}

/// One small Job owned by the Migration, shaped like a step Job (one container, no retries).
fn build_job(m: &Migration, image: &str, suspend: bool) -> Result<Job, Error> {
    let name = m.name_any();
    let (Some(ns), Some(owner)) = (m.namespace(), m.controller_owner_ref(&())) else {
        return Err(Error::NotStored { name });
    };
    let labels = [
        (
            "app.kubernetes.io/managed-by".to_owned(),
            MANAGED_BY.to_owned(),
        ),
        (MIGRATION_LABEL.to_owned(), name.clone()),
    ];
    Ok(Job {
        metadata: ObjectMeta {
            name: Some(format!("{name}{JOB_SUFFIX}")),
            namespace: Some(ns),
            labels: Some(labels.into_iter().collect()),
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        },
        spec: Some(JobSpec {
            suspend: Some(suspend),
            backoff_limit: Some(0),
            template: PodTemplateSpec {
                metadata: None,
                spec: Some(PodSpec {
                    restart_policy: Some("Never".to_owned()),
                    containers: vec![Container {
                        name: "step".to_owned(),
                        image: Some(image.to_owned()),
                        command: Some(vec!["true".to_owned()]),
                        ..Container::default()
                    }],
                    ..PodSpec::default()
                }),
            },
            ..JobSpec::default()
        }),
        status: None,
    })
}
