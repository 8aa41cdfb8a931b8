//! The scenarios: starting the clients under test, sequential latency, bursts, memory
//! samples and start-up times.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::Client;

use crate::error::{Error, Result};
use crate::http::{self, ReconcileMetric};
use crate::procs::{self, Memory, Proc};
use crate::results::{BurstSide, MemoryPoint, StartupPoint, Stats};
use crate::tracker::{Marks, Need, Tracker};
use crate::{apiserver, cluster};

/// Bound on one Migration's wait in the latency scenario.
const ONE_TIMEOUT: Duration = Duration::from_secs(30);
/// A latency run stops after this many timeouts in a row (the client is not working).
const MAX_TIMEOUTS_IN_A_ROW: usize = 3;
/// Bound on a start-up (spawn to ready).
const STARTUP_TIMEOUT: Duration = Duration::from_secs(120);
/// How long after `/healthz` a start-up waits for `/readyz` and the first reconcile.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Poll interval of `/healthz` and `/readyz` during start-up.
const STARTUP_POLL: Duration = Duration::from_millis(1);
/// Poll interval of `/metrics` while waiting for the operator to go quiet.
const METRICS_POLL: Duration = Duration::from_millis(200);
/// The reconcile counter must stay (nearly) unchanged this long to count as quiet.
const QUIET_FOR: Duration = Duration::from_secs(3);
/// Reconciles per `QUIET_FOR` still counted as quiet, per this many Migrations present: the
/// operator's periodic requeue of running Migrations (every 300 s, 1% of them per 3 s) never
/// stops, so with thousands present an unchanged counter would never be seen.
const QUIET_ALLOWANCE_PER: usize = 50;
/// Bound on the wait for quiet.
const QUIET_TIMEOUT: Duration = Duration::from_secs(600);
/// Memory samples taken, one per this interval, after settling.
const MEMORY_SAMPLE_EVERY: Duration = Duration::from_millis(200);

/// What the scenarios share.
pub struct Bench {
    /// Client of the bench's own control plane.
    pub client: Client,
    /// Where process logs go.
    pub log_dir: PathBuf,
    /// The operator binary.
    pub operator: PathBuf,
    /// The operator's arguments; `{addr}` becomes its metrics address.
    pub operator_args: Vec<String>,
    /// The floor binary.
    pub floor: PathBuf,
    /// The floor's arguments.
    pub floor_args: Vec<String>,
    /// How to count reconciles on `/metrics`.
    pub metric: ReconcileMetric,
    /// Create requests in flight during bursts.
    pub concurrency: usize,
    /// Pause before taking a steady memory sample.
    pub settle: Duration,
    /// PIDs of kube-apiserver, etcd and kube-controller-manager, when known.
    pub control_plane_pids: Vec<u32>,
}

/// The operator while it runs.
pub struct Operator {
    /// Its process.
    pub proc: Proc,
    /// Its `/metrics`, `/healthz` and `/readyz` address.
    pub addr: SocketAddr,
}

impl Bench {
    /// Starts the floor and waits until its watch is live.
    pub async fn start_floor(&self, tag: &str) -> Result<Proc> {
        let mut proc = Proc::spawn(
            &format!("floor-{tag}"),
            &self.floor,
            &self.floor_args,
            &self.log_dir,
            true,
        )?;
        let stdout = proc.take_stdout().ok_or_else(|| Error::Invalid {
            what: "the floor's stdout is not piped".into(),
        })?;
        let log = self.log_dir.join(format!("floor-{tag}.stdout.log"));
        procs::wait_for_line(stdout, "ready", log, STARTUP_TIMEOUT).await?;
        Ok(proc)
    }

    /// Starts the operator and measures spawn to `/healthz` 200 and to `/readyz` 200.
    pub async fn start_operator(
        &self,
        tag: &str,
        migrations: usize,
    ) -> Result<(Operator, StartupPoint)> {
        let addr = procs::free_loopback_addr()?;
        let args: Vec<String> = self
            .operator_args
            .iter()
            .map(|a| a.replace("{addr}", &addr.to_string()))
            .collect();
        let proc = Proc::spawn(
            &format!("operator-{tag}"),
            &self.operator,
            &args,
            &self.log_dir,
            false,
        )?;
        let mut op = Operator { proc, addr };
        match wait_started(&mut op, &self.metric, migrations > 0).await {
            Ok(mut point) => {
                point.migrations = migrations;
                tracing::info!(tag, pid = op.proc.pid(), ?point, "Operator started");
                Ok((op, point))
            }
            Err(e) => {
                let _ = op.proc.stop().await;
                Err(e)
            }
        }
    }

    /// CPU seconds of the control plane's processes (0 when none are known).
    fn control_plane_cpu(&self) -> Option<f64> {
        if self.control_plane_pids.is_empty() {
            return None;
        }
        self.control_plane_pids
            .iter()
            .map(|&p| procs::read_cpu_seconds(p).ok())
            .sum()
    }

    /// Creates `n` Migrations one after another, each once the previous one has what `need`
    /// asks for.
    pub async fn latency(&self, ns: &str, n: usize, need: Need) -> Result<LatencyRun> {
        cluster::prepare_namespace(&self.client, ns).await?;
        let tracker = Tracker::start(&self.client, ns).await?;
        let api = cluster::migrations(&self.client, ns);
        let before = apiserver::request_counts().await;
        let mut in_a_row = 0;
        for i in 0..n {
            let name = cluster::migration_name("lat", i);
            cluster::create_migration(&api, &tracker, &name).await?;
            if tracker.wait_one(&name, need, ONE_TIMEOUT).await {
                in_a_row = 0;
                continue;
            }
            in_a_row += 1;
            tracing::warn!(%name, "Timed out waiting for the first job or status");
            if in_a_row >= MAX_TIMEOUTS_IN_A_ROW {
                return Err(Error::Timeout {
                    what: format!("{in_a_row} migrations in a row in {ns}"),
                    seconds: ONE_TIMEOUT.as_secs(),
                });
            }
        }
        let marks: Vec<Marks> = tracker
            .snapshot()
            .into_values()
            .filter(|m| m.sent.is_some())
            .collect();
        Ok(LatencyRun {
            seen: stats_of(&marks, Marks::seen_ms),
            job: stats_of(&marks, Marks::job_ms),
            status: (need == Need::JobAndStatus).then(|| stats_of(&marks, Marks::status_ms)),
            requests: requests_since(before, marks.len()).await,
        })
    }

    /// Creates the Migrations `range` of `ns` at once and measures until all have what `need`
    /// asks for and the client has gone quiet.
    pub async fn burst(&self, b: BurstRun<'_>) -> Result<BurstSide> {
        let api = cluster::migrations(&self.client, b.ns);
        let (cpu0, cp0) = (b.proc.cpu_seconds()?, self.control_plane_cpu());
        let count0 = match b.operator_addr {
            Some(addr) => reconciles(addr, &self.metric).await,
            None => None,
        };
        let requests0 = apiserver::request_counts().await;
        let t0 = Instant::now();
        let create =
            cluster::create_many(&api, b.tracker, "burst", b.range.clone(), self.concurrency)
                .await?;
        let done = b.tracker.wait_all(b.need, b.timeout).await;
        let quiet = match b.operator_addr {
            Some(addr) => wait_quiet(addr, &self.metric, b.range.end).await,
            None => {
                tokio::time::sleep(QUIET_FOR).await;
                None
            }
        };
        let cpu_s = b.proc.cpu_seconds()? - cpu0;
        let cp_s = self.control_plane_cpu().zip(cp0).map(|(a, b)| a - b);
        let mut side = summarise(b.tracker, &b.range, t0, b.need);
        side.create_s = create.as_secs_f64();
        side.cpu_s = cpu_s;
        side.cpu_ms_per_migration = cpu_s * 1e3 / side.n.max(1) as f64;
        side.control_plane_cpu_s = cp_s;
        side.api_requests_per_migration = requests_since(requests0, side.n).await;
        if let (Some((c0, _)), Some((c1, names, last))) = (count0, quiet) {
            let count = c1 - c0;
            side.reconciles = Some(count);
            side.reconciles_per_s = Some(count / last.saturating_duration_since(t0).as_secs_f64());
            side.cpu_ms_per_reconcile = (count > 0.0).then(|| cpu_s * 1e3 / count);
            side.reconcile_metric = names;
        }
        if !done {
            return Err(Error::Timeout {
                what: format!("all first jobs of the burst in {}", b.ns),
                seconds: b.timeout.as_secs(),
            });
        }
        Ok(side)
    }

    /// Waits for the operator to go quiet, then for `settle`, and samples its memory.
    pub async fn operator_memory(
        &self,
        op: &Operator,
        migrations: usize,
        phase: &str,
    ) -> Result<MemoryPoint> {
        wait_quiet(op.addr, &self.metric, migrations).await;
        self.memory_point(&op.proc, "operator", migrations, phase)
            .await
    }

    /// Waits for `settle`, then samples resident memory a few times and keeps the last.
    pub async fn memory_point(
        &self,
        proc: &Proc,
        who: &str,
        migrations: usize,
        phase: &str,
    ) -> Result<MemoryPoint> {
        tokio::time::sleep(self.settle).await;
        let mut last: Memory = proc.memory()?;
        for _ in 0..5 {
            tokio::time::sleep(MEMORY_SAMPLE_EVERY).await;
            last = proc.memory()?;
        }
        Ok(MemoryPoint {
            process: who.to_owned(),
            migrations,
            phase: phase.to_owned(),
            steady_mb: crate::results::mb(last.rss),
            peak_mb: crate::results::mb(last.hwm),
            anon_mb: crate::results::mb(last.anon),
            file_mb: crate::results::mb(last.file),
        })
    }
}

/// What one latency run measured.
pub struct LatencyRun {
    /// Apply to the Migration visible on the driver's watch.
    pub seen: Stats,
    /// Apply to first Job.
    pub job: Stats,
    /// Apply to first status write, when it was awaited.
    pub status: Option<Stats>,
    /// API requests per Migration over the run, every client included.
    pub requests: apiserver::Counts,
}

/// API requests per Migration since `before` (empty when the counters cannot be read).
async fn requests_since(before: Option<apiserver::Counts>, n: usize) -> apiserver::Counts {
    match (before, apiserver::request_counts().await) {
        (Some(before), Some(after)) => apiserver::per_migration(&before, &after, n),
        _ => apiserver::Counts::new(),
    }
}

/// Statistics of one latency over `marks`; a missing one counts as a timeout.
fn stats_of(marks: &[Marks], pick: fn(&Marks) -> Option<f64>) -> Stats {
    let samples: Vec<f64> = marks.iter().filter_map(pick).collect();
    let missing = marks.len() - samples.len();
    Stats::of(samples, missing)
}

/// One burst: where, which Migrations, who is measured, what to wait for.
pub struct BurstRun<'a> {
    /// Namespace (prepared, tracked).
    pub ns: &'a str,
    /// The namespace's tracker.
    pub tracker: &'a Arc<Tracker>,
    /// Indexes of the Migrations to create.
    pub range: std::ops::Range<usize>,
    /// The client under test.
    pub proc: &'a Proc,
    /// The operator's metrics address (none for the floor).
    pub operator_addr: Option<SocketAddr>,
    /// What every Migration must reach.
    pub need: Need,
    /// Bound on the wait.
    pub timeout: Duration,
}

/// Latency statistics and completion times of the burst's Migrations.
fn summarise(
    tracker: &Tracker,
    range: &std::ops::Range<usize>,
    t0: Instant,
    need: Need,
) -> BurstSide {
    let names: HashSet<String> = range
        .clone()
        .map(|i| cluster::migration_name("burst", i))
        .collect();
    let marks: Vec<_> = tracker
        .snapshot()
        .into_iter()
        .filter(|(name, _)| names.contains(name))
        .map(|(_, m)| m)
        .collect();
    let jobs: Vec<f64> = marks.iter().filter_map(|m| m.job_ms()).collect();
    let last = |pick: fn(&Marks) -> Option<Instant>| {
        marks
            .iter()
            .filter_map(pick)
            .max()
            .map(|t| t.saturating_duration_since(t0).as_secs_f64())
    };
    BurstSide {
        n: marks.len(),
        job: Stats::of(jobs.clone(), marks.len() - jobs.len()),
        all_jobs_s: last(|m| m.job).unwrap_or_default(),
        all_status_s: (need == Need::JobAndStatus)
            .then(|| last(|m| m.status))
            .flatten(),
        ..BurstSide::default()
    }
}

/// Polls `/healthz` and `/readyz` until both answer 200; returns the times since spawn.
/// Polls until `/healthz` answers 200 (required), then keeps polling `/readyz` and, when
/// Migrations are present, `/metrics` for the first reconcile, for at most `READY_TIMEOUT`:
/// a `/readyz` that never turns 200 is recorded as missing, not fatal, so the other figures
/// are still measured.
async fn wait_started(
    op: &mut Operator,
    metric: &ReconcileMetric,
    expect_reconciles: bool,
) -> Result<StartupPoint> {
    let mut point = StartupPoint::default();
    let (mut healthz, mut readyz, mut reconciled) = (None, None, None);
    while op.proc.started.elapsed() < STARTUP_TIMEOUT {
        op.proc.ensure_running()?;
        if healthz.is_none() && is_ok(op.addr, "/healthz").await {
            healthz = Some(op.proc.started.elapsed());
        }
        if readyz.is_none() && is_ok(op.addr, "/readyz").await {
            readyz = Some(op.proc.started.elapsed());
        }
        let want_count = expect_reconciles && reconciled.is_none() && healthz.is_some();
        if want_count && first_reconcile_seen(op.addr, metric).await {
            reconciled = Some(op.proc.started.elapsed());
        }
        let waited_enough = healthz.is_some_and(|h| op.proc.started.elapsed() > h + READY_TIMEOUT);
        let all = readyz.is_some() && (reconciled.is_some() || !expect_reconciles);
        if healthz.is_some() && (all || waited_enough) {
            point.healthz_ms = healthz.map_or(0.0, ms);
            point.readyz_ms = readyz.map(ms);
            point.first_reconcile_ms = reconciled.map(ms);
            return Ok(point);
        }
        tokio::time::sleep(STARTUP_POLL).await;
    }
    Err(Error::Timeout {
        what: "the operator's /healthz".into(),
        seconds: STARTUP_TIMEOUT.as_secs(),
    })
}

async fn first_reconcile_seen(addr: SocketAddr, metric: &ReconcileMetric) -> bool {
    reconciles(addr, metric).await.is_some_and(|(c, _)| c > 0.0)
}

async fn is_ok(addr: SocketAddr, path: &str) -> bool {
    matches!(http::get(addr, path).await, Ok((200, _)))
}

/// The reconcile count on `/metrics` and the families summed.
async fn reconciles(addr: SocketAddr, metric: &ReconcileMetric) -> Option<(f64, Vec<String>)> {
    let (code, body) = http::get(addr, "/metrics").await.ok()?;
    if code != 200 {
        return None;
    }
    http::sum_counter(&body, metric)
}

/// Waits until the reconcile count stays unchanged for `QUIET_FOR`; returns the count, the
/// families summed and when it last changed. Without the counter it just waits `QUIET_FOR`.
async fn wait_quiet(
    addr: SocketAddr,
    metric: &ReconcileMetric,
    present: usize,
) -> Option<(f64, Vec<String>, Instant)> {
    let allowance = (present / QUIET_ALLOWANCE_PER) as f64;
    let start = Instant::now();
    let mut last: Option<(f64, Vec<String>, Instant)> = None;
    while start.elapsed() < QUIET_TIMEOUT {
        let Some((count, names)) = reconciles(addr, metric).await else {
            tokio::time::sleep(QUIET_FOR).await;
            return None;
        };
        match &last {
            Some((c, _, at)) if count - *c <= allowance => {
                if at.elapsed() >= QUIET_FOR {
                    return last;
                }
            }
            _ => last = Some((count, names, Instant::now())),
        }
        tokio::time::sleep(METRICS_POLL).await;
    }
    tracing::warn!("The operator never went quiet");
    last
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
