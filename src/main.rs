//! The `datamigrate` command line: `controller`, `crd`, `run` and `translate`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use datamigrate::controller::{self, Config, Context, ErrorBackoff, ShutdownSignal};
use datamigrate::job::WorkPodDefaults;
use datamigrate::metrics::Metrics;
use datamigrate::owned::WorkspaceSettings;
use datamigrate::plan::RetryPolicy;
use datamigrate::server::{self, Probes};
use datamigrate::telemetry::{self, LogFormat};
use datamigrate::{Error, leader};
use tokio::sync::watch;
use tracing::{error, info};

/// DataMigrate: SQL Server to dbt, as a Kubernetes operator.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the Migration controller.
    Controller(ControllerArgs),
    /// Print the Migration CRD as YAML.
    Crd,
    /// Run a Migration's steps on this machine, without a cluster.
    Run(datamigrate::local::RunArgs),
    /// Translate a T-SQL script to a target dialect (the migration's own translation).
    Translate(datamigrate::local::TranslateArgs),
}

#[derive(Args)]
struct ControllerArgs {
    /// Address of /healthz, /readyz and /metrics (use 0.0.0.0:8080 inside a pod).
    #[arg(
        long,
        default_value = "127.0.0.1:8080",
        env = "DATAMIGRATE_METRICS_ADDR"
    )]
    metrics_addr: String,
    /// Reconcile only while holding the Lease (safe with several replicas).
    #[arg(long)]
    leader_elect: bool,
    /// Namespace of the Lease.
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    lease_namespace: String,
    /// Watch only this namespace (repeat for several); all namespaces when absent.
    #[arg(long = "namespace")]
    namespaces: Vec<String>,
    /// YAML file with the defaults of every step Job (image, backoffLimit, pod template).
    #[arg(long, env = "DATAMIGRATE_WORK_POD_DEFAULTS")]
    work_pod_defaults: Option<PathBuf>,
    /// Size of each Migration's workspace volume.
    #[arg(long, default_value = "1Gi")]
    workspace_size: String,
    /// Storage class of the workspace volumes (the cluster default when absent).
    #[arg(long)]
    workspace_storage_class: Option<String>,
    /// Attempts of a failing step before the Migration stalls.
    #[arg(long, default_value_t = 3)]
    max_step_attempts: i32,
    /// Delay before a failed step's second attempt, doubled for each further one.
    #[arg(long, default_value_t = 10)]
    step_retry_base_seconds: u64,
    /// Longest delay between two attempts of a step.
    #[arg(long, default_value_t = 300)]
    step_retry_max_seconds: u64,
    /// Longest delay between two failed reconciles of one Migration.
    #[arg(long, default_value_t = 300)]
    error_backoff_max_seconds: u64,
    /// Reconciles in flight at once (each holds an API connection; a burst beyond this
    /// waits in the queue instead of crowding the API server).
    #[arg(long, default_value_t = 16)]
    max_concurrent_reconciles: u16,
    /// Log line format.
    #[arg(
        long,
        value_enum,
        default_value = "text",
        env = "DATAMIGRATE_LOG_FORMAT"
    )]
    log_format: LogFormat,
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Crd => match datamigrate::crd::crd_yaml() {
            Ok(yaml) => {
                print!("{yaml}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Run(args) => run_local(args),
        Command::Translate(args) => datamigrate::local::translate(&args),
        Command::Controller(args) => {
            telemetry::init(args.log_format);
            // A startup invariant: without a runtime there is nothing to report to.
            #[allow(clippy::expect_used)]
            let runtime = tokio::runtime::Runtime::new().expect("a Tokio runtime starts");
            match runtime.block_on(run_controller(args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    error!(error = %datamigrate::error_chain(&e), "Controller stopped");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn run_local(args: datamigrate::local::RunArgs) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: failed to start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (stop_tx, mut stop_rx) = watch::channel(false);
    let outcome = runtime.block_on(async {
        tokio::spawn(stop_on_signal(stop_tx));
        // On SIGTERM or SIGINT the run is dropped, which kills the step process it waits on
        // (so no agent is left running on its own), and the exit status says so.
        tokio::select! {
            done = datamigrate::local::run(args) => Some(done),
            _ = stop_rx.changed() => None,
        }
    });
    match outcome {
        Some(Ok(true)) => ExitCode::SUCCESS,
        Some(Ok(false)) => ExitCode::from(1),
        Some(Err(e)) => {
            eprintln!("error: {}", datamigrate::error_chain(&e));
            ExitCode::from(2)
        }
        None => {
            eprintln!("error: interrupted; the running step was stopped");
            ExitCode::from(130)
        }
    }
}

fn config(args: &ControllerArgs) -> Result<Config, Error> {
    let work_pod_defaults = match &args.work_pod_defaults {
        Some(path) => WorkPodDefaults::from_file(path)?,
        None => WorkPodDefaults::default(),
    };
    Ok(Config {
        namespaces: args.namespaces.clone(),
        work_pod_defaults,
        workspace: WorkspaceSettings {
            size: args.workspace_size.clone(),
            storage_class: args.workspace_storage_class.clone(),
        },
        retry: RetryPolicy {
            max_attempts: args.max_step_attempts.max(1),
            base: Duration::from_secs(args.step_retry_base_seconds),
            cap: Duration::from_secs(args.step_retry_max_seconds),
        },
        error_backoff: ErrorBackoff {
            cap: Duration::from_secs(args.error_backoff_max_seconds),
            ..ErrorBackoff::default()
        },
        concurrency: args.max_concurrent_reconciles.max(1),
    })
}

async fn run_controller(args: ControllerArgs) -> Result<(), Error> {
    let config = config(&args)?;
    let client = kube::Client::try_default()
        .await
        .map_err(|source| Error::Client { source })?;
    let metrics = Arc::new(Metrics::new());
    let ready = Arc::new(AtomicBool::new(false));
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(stop_on_signal(stop_tx.clone()));
    let probes = Probes {
        ready: ready.clone(),
        metrics: metrics.clone(),
    };
    let server = tokio::spawn({
        let addr = args.metrics_addr.clone();
        let stop = signal(stop_rx.clone());
        async move { server::serve(&addr, probes, stop).await }
    });
    let leading = if args.leader_elect {
        ready.store(true, Ordering::SeqCst);
        Some(await_leadership(&client, &args.lease_namespace, stop_tx.clone()).await?)
    } else {
        None
    };
    if *stop_rx.borrow() {
        return Ok(());
    }
    let scopes = args.namespaces.len().max(1);
    let synced = Arc::new(AtomicUsize::new(0));
    tokio::spawn(mark_ready(synced.clone(), scopes, ready));
    let ctx = Arc::new(Context::new(client, config, metrics));
    info!(namespaces = ?args.namespaces, "Starting the controller");
    controller::run(ctx, synced, || signal(stop_rx.clone())).await;
    info!("Controller stopped");
    drop(leading);
    let _ = stop_tx.send(true);
    match server.await {
        Ok(result) => result,
        Err(_) => Ok(()),
    }
}

/// Waits for the Lease; then watches it and stops the process the moment it is lost.
async fn await_leadership(
    client: &kube::Client,
    namespace: &str,
    stop: watch::Sender<bool>,
) -> Result<watch::Receiver<bool>, Error> {
    let identity =
        std::env::var("POD_NAME").unwrap_or_else(|_| format!("datamigrate-{}", std::process::id()));
    let mut leader = leader::elect(client.clone(), namespace, &identity).await?;
    let mut stopping = stop.subscribe();
    info!(identity = %identity, "Waiting for the leader Lease");
    while !*leader.borrow_and_update() {
        tokio::select! {
            changed = leader.changed() => if changed.is_err() { break },
            _ = stopping.changed() => return Ok(leader),
        }
    }
    info!("Acquired the leader Lease");
    let mut watch_loss = leader.clone();
    tokio::spawn(async move {
        while watch_loss.changed().await.is_ok() {
            if !*watch_loss.borrow() {
                error!("Lost the leader Lease, exiting");
                std::process::exit(1);
            }
        }
    });
    Ok(leader)
}

async fn mark_ready(synced: Arc<AtomicUsize>, scopes: usize, ready: Arc<AtomicBool>) {
    while synced.load(Ordering::SeqCst) < scopes {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    info!("Watch caches synced");
    ready.store(true, Ordering::SeqCst);
}

fn signal(mut stop: watch::Receiver<bool>) -> ShutdownSignal {
    Box::pin(async move {
        let _ = stop.wait_for(|s| *s).await;
    })
}

async fn stop_on_signal(stop: watch::Sender<bool>) {
    let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    else {
        return;
    };
    tokio::select! {
        _ = term.recv() => info!("Received SIGTERM, shutting down"),
        _ = tokio::signal::ctrl_c() => info!("Received SIGINT, shutting down"),
    }
    let _ = stop.send(true);
}
