//! `bench-driver`: the load driver and measuring side of `scripts/bench`.
//!
//! `run` starts the floor client and then the operator against the control plane named by
//! `KUBECONFIG`, one after the other (never together), runs the scenarios of issue 7 and writes
//! the figures as JSON. `report` merges the size and agent figures in and prints the table.
//! Timestamps are the driver's own monotonic clock: just before a create request is sent, and
//! when the driver's own watches deliver the Job or the status write.

mod apiserver;
mod cluster;
mod error;
mod http;
mod procs;
mod results;
mod scenarios;
mod tracker;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use kube::Client;

use crate::error::{Error, Result};
use crate::http::ReconcileMetric;
use crate::results::{Latency, Results, Size};
use crate::scenarios::{Bench, BurstRun, Operator};
use crate::tracker::{Need, Tracker};

/// Namespaces, one per scenario and client.
const NS_FLOOR_LATENCY: &str = "bench-floor-latency";
const NS_FLOOR_BURST: &str = "bench-floor-burst";
const NS_OPERATOR_LATENCY: &str = "bench-operator-latency";
const NS_OPERATOR: &str = "bench-operator";
/// Bound on deleting one scenario's Migrations.
const DELETE_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Parser)]
#[command(
    name = "bench-driver",
    about = "Measures the operator against a floor client"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the scenarios and write the figures as JSON.
    Run(RunArgs),
    /// Merge size and agent figures into a results file and print the table.
    Report(ReportArgs),
}

#[derive(Parser, Clone)]
struct RunArgs {
    /// The operator binary (a release build).
    #[arg(long)]
    operator: PathBuf,
    /// The operator's arguments, split on spaces; `{addr}` becomes its metrics address.
    #[arg(
        long,
        env = "BENCH_OPERATOR_ARGS",
        default_value = "controller --metrics-addr={addr}"
    )]
    operator_args: String,
    /// The floor binary.
    #[arg(long)]
    floor: PathBuf,
    /// Where the JSON goes.
    #[arg(long, default_value = "target/bench/driver.json")]
    out: PathBuf,
    /// Folder for the clients' logs.
    #[arg(long, default_value = "target/bench/logs")]
    log_dir: PathBuf,
    /// Factor on every count below (0.1 for a quick try).
    #[arg(long, env = "BENCH_SCALE", default_value_t = 1.0)]
    scale: f64,
    /// Migrations in the latency scenario, before scaling.
    #[arg(long, env = "BENCH_LATENCY_N", default_value_t = 500)]
    latency_n: usize,
    /// Migrations in the burst scenario, before scaling (also the start-up and first memory
    /// point).
    #[arg(long, env = "BENCH_BURST_N", default_value_t = 1000)]
    burst_n: usize,
    /// The largest memory point, before scaling (0 or at most burst-n to skip it).
    #[arg(long, env = "BENCH_MEMORY_MAX", default_value_t = 10000)]
    memory_max: usize,
    /// Create requests in flight during bursts.
    #[arg(long, env = "BENCH_CONCURRENCY", default_value_t = 32)]
    concurrency: usize,
    /// Seconds to wait before a steady memory sample.
    #[arg(long, env = "BENCH_SETTLE_SECONDS", default_value_t = 10)]
    settle_seconds: u64,
    /// Comma-separated scenarios: latency, burst (with memory and start-up), scale.
    #[arg(long, env = "BENCH_SCENARIOS", default_value = "latency,burst,scale")]
    scenarios: String,
    /// Run the floor only (to try the harness before the operator exists).
    #[arg(long, env = "BENCH_FLOOR_ONLY")]
    floor_only: bool,
    /// Exact name of the reconcile counter sample (default: guessed from `/metrics`).
    #[arg(long, env = "BENCH_RECONCILE_METRIC")]
    reconcile_metric: Option<String>,
    /// PIDs of the control plane's processes, comma separated, for their CPU time.
    #[arg(long, env = "BENCH_CONTROL_PLANE_PIDS", default_value = "")]
    control_plane_pids: String,
}

#[derive(Parser)]
struct ReportArgs {
    /// The driver's JSON.
    #[arg(long, default_value = "target/bench/driver.json")]
    results: PathBuf,
    /// The stripped release binary to size.
    #[arg(long)]
    binary: Option<PathBuf>,
    /// Size of the base image in bytes (estimate).
    #[arg(long, default_value_t = 0)]
    base_image_bytes: u64,
    /// What the base image is and where its size comes from.
    #[arg(long, default_value = "")]
    base_image_note: String,
    /// The agent benchmark's JSON output, if it ran.
    #[arg(long)]
    agent: Option<PathBuf>,
    /// A note to add (repeatable).
    #[arg(long)]
    note: Vec<String>,
    /// Where the merged JSON goes.
    #[arg(long, default_value = "target/bench/results.json")]
    out: PathBuf,
    /// Where the Markdown table goes too.
    #[arg(long)]
    markdown: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let outcome = match Cli::parse().command {
        Command::Run(args) => run(args).await,
        Command::Report(args) => report(&args),
    };
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %error::chain(&e), "Benchmark failed");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Scales a count, keeping at least one.
fn scaled(n: usize, scale: f64) -> usize {
    if n == 0 {
        0
    } else {
        ((n as f64 * scale).round() as usize).max(1)
    }
}

async fn run(args: RunArgs) -> Result<()> {
    let started = Instant::now();
    std::fs::create_dir_all(&args.log_dir).map_err(error::io("create the log folder"))?;
    let client = Client::try_default()
        .await
        .map_err(error::kube("build a client"))?;
    let bench = bench_from(&args, client.clone());
    let mut r = Results {
        machine: machine(&client).await,
        run: run_info(&args, &bench),
        ..Results::default()
    };
    let want = |s: &str| r.run.scenarios.iter().any(|x| x == s);
    let (lat, burst, scale) = (want("latency"), want("burst"), want("scale"));
    let mut latency = Latency {
        n: r.run.latency_n,
        ..Latency::default()
    };
    if lat || burst {
        note(
            &mut r.notes,
            floor_phase(
                &bench,
                &r.run,
                lat,
                burst,
                &mut latency,
                &mut r.burst,
                &mut r.memory,
            )
            .await,
        );
    }
    if !args.floor_only && lat {
        note(
            &mut r.notes,
            operator_latency(&bench, r.run.latency_n, &mut latency, &mut r.startup).await,
        );
    }
    if lat {
        r.latency = Some(latency);
    }
    if !args.floor_only && (burst || scale) {
        let outcome = operator_phase(&bench, &mut r, burst, scale).await;
        note(&mut r.notes, outcome);
    }
    r.run.duration_s = started.elapsed().as_secs_f64();
    r.machine.load_end = load_average();
    write_json(&args.out, &r)?;
    println!("{}", results::table(&r));
    Ok(())
}

fn note(notes: &mut Vec<String>, outcome: Result<()>) {
    if let Err(e) = outcome {
        let text = error::chain(&e);
        tracing::error!(error = %text, "Scenario failed");
        notes.push(text);
    }
}

fn bench_from(args: &RunArgs, client: Client) -> Bench {
    let metric = args
        .reconcile_metric
        .clone()
        .map_or(ReconcileMetric::Guess, ReconcileMetric::Named);
    let floor_args = vec!["--concurrency".to_owned(), args.concurrency.to_string()];
    Bench {
        client,
        log_dir: args.log_dir.clone(),
        operator: args.operator.clone(),
        operator_args: args
            .operator_args
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
        floor: args.floor.clone(),
        floor_args,
        metric,
        concurrency: args.concurrency,
        settle: Duration::from_secs(args.settle_seconds),
        control_plane_pids: args
            .control_plane_pids
            .split(',')
            .filter_map(|p| p.trim().parse().ok())
            .collect(),
    }
}

fn run_info(args: &RunArgs, bench: &Bench) -> results::RunInfo {
    results::RunInfo {
        started_at: chrono::Utc::now().to_rfc3339(),
        duration_s: 0.0,
        scale: args.scale,
        latency_n: scaled(args.latency_n, args.scale),
        burst_n: scaled(args.burst_n, args.scale),
        memory_max: scaled(args.memory_max, args.scale),
        concurrency: args.concurrency,
        operator_command: format!("{} {}", args.operator.display(), args.operator_args),
        floor_command: format!("{} {}", args.floor.display(), bench.floor_args.join(" ")),
        scenarios: args
            .scenarios
            .split(',')
            .map(|s| s.trim().to_owned())
            .collect(),
    }
}

/// Floor: latency and burst, then its memory; its Migrations are deleted before the
/// operator starts, so the operator never sees them.
async fn floor_phase(
    bench: &Bench,
    run: &results::RunInfo,
    lat: bool,
    burst: bool,
    latency: &mut Latency,
    bursts: &mut results::Burst,
    memory: &mut Vec<results::MemoryPoint>,
) -> Result<()> {
    let floor = bench.start_floor("run").await?;
    let outcome = async {
        if lat {
            tracing::info!(n = run.latency_n, "Floor latency");
            let run = bench
                .latency(NS_FLOOR_LATENCY, run.latency_n, Need::Job)
                .await?;
            latency.floor_seen = Some(run.seen);
            latency.floor_job = Some(run.job);
            latency.floor_requests = run.requests;
        }
        if burst {
            tracing::info!(n = run.burst_n, "Floor burst");
            cluster::prepare_namespace(&bench.client, NS_FLOOR_BURST).await?;
            let tracker = Tracker::start(&bench.client, NS_FLOOR_BURST).await?;
            bursts.floor = Some(
                bench
                    .burst(BurstRun {
                        ns: NS_FLOOR_BURST,
                        tracker: &tracker,
                        range: 0..run.burst_n,
                        proc: &floor,
                        operator_addr: None,
                        need: Need::Job,
                        timeout: burst_timeout(run.burst_n),
                    })
                    .await?,
            );
            memory.push(
                bench
                    .memory_point(&floor, "floor", run.burst_n, "after burst")
                    .await?,
            );
        }
        Ok::<(), Error>(())
    }
    .await;
    let stopped = floor.stop().await;
    for ns in [NS_FLOOR_LATENCY, NS_FLOOR_BURST] {
        cluster::delete_migrations(&bench.client, ns, DELETE_TIMEOUT).await?;
        cluster::delete_namespace(&bench.client, ns).await?;
    }
    outcome.and(stopped)
}

/// Generous bound on a burst of `n`: a minute plus 200 ms per Migration.
fn burst_timeout(n: usize) -> Duration {
    Duration::from_secs(60) + Duration::from_millis(200 * n as u64)
}

/// Operator: sequential latency on a fresh process; its Migrations are deleted while it
/// still runs (in case it holds finalizers).
async fn operator_latency(
    bench: &Bench,
    n: usize,
    latency: &mut Latency,
    startup: &mut Vec<results::StartupPoint>,
) -> Result<()> {
    let (op, point) = bench.start_operator("latency", 0).await?;
    startup.push(point);
    tracing::info!(n, "Operator latency");
    let outcome = bench
        .latency(NS_OPERATOR_LATENCY, n, Need::JobAndStatus)
        .await;
    let deleted =
        cluster::delete_migrations(&bench.client, NS_OPERATOR_LATENCY, DELETE_TIMEOUT).await;
    let stopped = op.proc.stop().await;
    let run = outcome?;
    latency.operator_seen = Some(run.seen);
    latency.operator_job = Some(run.job);
    latency.operator_status = run.status;
    latency.operator_requests = run.requests;
    deleted.and(stopped)?;
    cluster::delete_namespace(&bench.client, NS_OPERATOR_LATENCY).await
}

/// Operator: memory with 0, a burst of `burst_n` (reconciles, CPU), memory, a restart with
/// them present (start-up), then growth to `memory_max` and another restart.
async fn operator_phase(bench: &Bench, r: &mut Results, burst: bool, scale: bool) -> Result<()> {
    cluster::prepare_namespace(&bench.client, NS_OPERATOR).await?;
    let tracker = Tracker::start(&bench.client, NS_OPERATOR).await?;
    let (op, point) = bench.start_operator("fresh", 0).await?;
    r.startup.push(point);
    let mut op = Some(op);
    let outcome = grow_and_restart(bench, r, &tracker, &mut op, burst, scale).await;
    if let Some(op) = op {
        op.proc.stop().await?;
    }
    outcome
}

async fn grow_and_restart(
    bench: &Bench,
    r: &mut Results,
    tracker: &Arc<Tracker>,
    op: &mut Option<Operator>,
    burst: bool,
    scale: bool,
) -> Result<()> {
    let current = op.take().ok_or_else(|| Error::Invalid {
        what: "no operator".into(),
    })?;
    r.memory
        .push(bench.operator_memory(&current, 0, "fresh start").await?);
    let mut present = 0;
    let mut current = Some(current);
    let steps = [(burst, r.run.burst_n), (scale, r.run.memory_max)];
    for (enabled, target) in steps {
        if !enabled || target <= present {
            continue;
        }
        let running = current.take().ok_or_else(|| Error::Invalid {
            what: "no operator".into(),
        })?;
        let grown = grow(bench, r, tracker, &running, present, target).await;
        let restarted = match grown {
            Ok(()) => restart(bench, r, running, target).await,
            Err(e) => {
                *op = Some(running);
                return Err(e);
            }
        }?;
        current = Some(restarted);
        present = target;
    }
    *op = current;
    Ok(())
}

/// Adds Migrations `present..target` at once and records the burst and memory figures.
async fn grow(
    bench: &Bench,
    r: &mut Results,
    tracker: &Arc<Tracker>,
    op: &Operator,
    present: usize,
    target: usize,
) -> Result<()> {
    tracing::info!(present, target, "Operator burst");
    let side = bench
        .burst(BurstRun {
            ns: NS_OPERATOR,
            tracker,
            range: present..target,
            proc: &op.proc,
            operator_addr: Some(op.addr),
            need: Need::JobAndStatus,
            timeout: burst_timeout(target - present),
        })
        .await?;
    if present == 0 {
        r.burst.operator = Some(side);
    } else {
        let text = serde_json::to_string(&side).map_err(error::json("encode a burst"))?;
        r.notes
            .push(format!("growth burst {present}..{target}: {text}"));
    }
    r.memory
        .push(bench.operator_memory(op, target, "after burst").await?);
    Ok(())
}

/// Stops the operator and starts it again with `present` Migrations: start-up and memory.
async fn restart(bench: &Bench, r: &mut Results, op: Operator, present: usize) -> Result<Operator> {
    op.proc.stop().await?;
    let (op, point) = bench
        .start_operator(&format!("restart-{present}"), present)
        .await?;
    r.startup.push(point);
    r.memory
        .push(bench.operator_memory(&op, present, "after restart").await?);
    Ok(op)
}

async fn machine(client: &Client) -> results::Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib: f64 = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or_default();
    results::Machine {
        cpus: std::thread::available_parallelism().map_or(0, usize::from),
        cpu_model: cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map_or(String::new(), |(_, v)| v.trim().to_owned()),
        memory_gib: (mem_kib / 1024.0 / 1024.0 * 10.0).round() / 10.0,
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
            .to_owned(),
        kube_version: client
            .apiserver_version()
            .await
            .map_or(String::new(), |v| v.git_version),
        load_start: load_average(),
        load_end: String::new(),
    }
}

/// The 1, 5 and 15 minute load averages.
fn load_average() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn write_json(path: &Path, r: &Results) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(error::io(format!("create {}", dir.display())))?;
    }
    let text = serde_json::to_string_pretty(r).map_err(error::json("encode the results"))?;
    std::fs::write(path, text + "\n").map_err(error::io(format!("write {}", path.display())))
}

fn report(args: &ReportArgs) -> Result<()> {
    let text = std::fs::read_to_string(&args.results)
        .map_err(error::io(format!("read {}", args.results.display())))?;
    let mut r: Results = serde_json::from_str(&text).map_err(error::json("read the results"))?;
    if let Some(binary) = &args.binary {
        let meta =
            std::fs::metadata(binary).map_err(error::io(format!("stat {}", binary.display())))?;
        r.size = Some(Size {
            binary_bytes: meta.len(),
            base_image_bytes: args.base_image_bytes,
            base_image_note: args.base_image_note.clone(),
        });
    }
    if let Some(agent) = &args.agent {
        r.agent = Some(read_agent(agent));
    }
    r.notes.extend(args.note.iter().cloned());
    write_json(&args.out, &r)?;
    let table = results::table(&r);
    println!("{table}");
    if let Some(md) = &args.markdown {
        std::fs::write(md, &table).map_err(error::io(format!("write {}", md.display())))?;
    }
    Ok(())
}

/// The agent benchmark's output: its JSON, else its last line that is JSON, else its text.
fn read_agent(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    serde_json::from_str(&text)
        .ok()
        .or_else(|| {
            text.lines()
                .rev()
                .find_map(|l| serde_json::from_str(l).ok())
        })
        .unwrap_or_else(|| serde_json::json!({ "output": text }))
}
