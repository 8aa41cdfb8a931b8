//! The figures a run produces (written as JSON) and the table printed from them.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// Target: operator p50 latency, in milliseconds.
pub const TARGET_P50_MS: f64 = 25.0;
/// Target: operator p50 latency as a multiple of the floor's.
pub const TARGET_P50_RATIO: f64 = 1.5;
/// Target: resident memory with 1,000 Migrations, in MB.
pub const TARGET_MB_1K: f64 = 20.0;
/// Target: resident memory with 10,000 Migrations, in MB.
pub const TARGET_MB_10K: f64 = 96.0;
/// Target: start to `/healthz` 200, in milliseconds.
pub const TARGET_HEALTHZ_MS: f64 = 50.0;
/// Target: start to `/readyz` 200 with 1,000 Migrations, in milliseconds.
pub const TARGET_READYZ_MS: f64 = 1000.0;
/// Target: the container image, in MB.
pub const TARGET_IMAGE_MB: f64 = 15.0;

/// Everything one run measured.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Results {
    /// Where it ran.
    pub machine: Machine,
    /// What was run (sizes, arguments).
    pub run: RunInfo,
    /// Sequential apply latencies.
    pub latency: Option<Latency>,
    /// Many Migrations at once.
    pub burst: Burst,
    /// Resident memory samples.
    pub memory: Vec<MemoryPoint>,
    /// Start-up times.
    pub startup: Vec<StartupPoint>,
    /// Binary and image size.
    pub size: Option<Size>,
    /// The agent benchmark's own JSON, when it ran.
    pub agent: Option<serde_json::Value>,
    /// Anything that went wrong or was left out.
    pub notes: Vec<String>,
}

/// The machine.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Machine {
    /// Online CPUs.
    pub cpus: usize,
    /// `model name` from `/proc/cpuinfo`.
    pub cpu_model: String,
    /// `MemTotal`, in GiB.
    pub memory_gib: f64,
    /// `uname -r`.
    pub kernel: String,
    /// The API server's `/version` gitVersion.
    pub kube_version: String,
    /// `/proc/loadavg` (1, 5, 15 minutes) when the run started: other work on the machine.
    pub load_start: String,
    /// `/proc/loadavg` when the run ended.
    pub load_end: String,
}

/// The run's parameters.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct RunInfo {
    /// UTC start time.
    pub started_at: String,
    /// Wall time of the whole run, in seconds.
    pub duration_s: f64,
    /// `BENCH_SCALE`.
    pub scale: f64,
    /// Migrations in the latency scenario.
    pub latency_n: usize,
    /// Migrations in the burst scenario.
    pub burst_n: usize,
    /// Largest memory point.
    pub memory_max: usize,
    /// Create requests in flight during bursts.
    pub concurrency: usize,
    /// The operator's command line.
    pub operator_command: String,
    /// The floor's command line.
    pub floor_command: String,
    /// Scenarios run.
    pub scenarios: Vec<String>,
}

/// Percentiles of a set of latencies.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Stats {
    /// Samples.
    pub n: usize,
    /// Migrations that timed out (not in the samples).
    pub timeouts: usize,
    /// Median, ms.
    pub p50_ms: f64,
    /// 90th percentile, ms.
    pub p90_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Mean, ms.
    pub mean_ms: f64,
    /// Largest, ms.
    pub max_ms: f64,
}

impl Stats {
    /// Nearest-rank percentiles of `samples`.
    pub fn of(mut samples: Vec<f64>, timeouts: usize) -> Self {
        samples.sort_by(f64::total_cmp);
        let n = samples.len();
        if n == 0 {
            return Self {
                timeouts,
                ..Self::default()
            };
        }
        let rank = |p: f64| samples[((p / 100.0 * n as f64).ceil() as usize).clamp(1, n) - 1];
        Self {
            n,
            timeouts,
            p50_ms: rank(50.0),
            p90_ms: rank(90.0),
            p99_ms: rank(99.0),
            mean_ms: samples.iter().sum::<f64>() / n as f64,
            max_ms: samples[n - 1],
        }
    }
}

/// The latency scenario.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Latency {
    /// Migrations created, one after another.
    pub n: usize,
    /// Floor run: apply to the Migration visible on the driver's watch (one write and one
    /// watch hop: what the API server itself costs).
    pub floor_seen: Option<Stats>,
    /// Floor: apply to first Job.
    pub floor_job: Option<Stats>,
    /// Operator run: apply to the Migration visible on the driver's watch.
    pub operator_seen: Option<Stats>,
    /// Operator: apply to first Job.
    pub operator_job: Option<Stats>,
    /// Operator: apply to first status write.
    pub operator_status: Option<Stats>,
    /// Floor run: API requests per Migration by verb and resource, every client included.
    #[serde(default)]
    pub floor_requests: BTreeMap<String, f64>,
    /// Operator run: API requests per Migration by verb and resource, every client included.
    #[serde(default)]
    pub operator_requests: BTreeMap<String, f64>,
}

/// The burst scenario, for one client.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct BurstSide {
    /// Migrations created at once.
    pub n: usize,
    /// First create sent to last create answered, s.
    pub create_s: f64,
    /// First create sent to the last first Job seen, s.
    pub all_jobs_s: f64,
    /// First create sent to the last first status write seen, s (operator only).
    pub all_status_s: Option<f64>,
    /// Apply to first Job, per Migration.
    pub job: Stats,
    /// CPU seconds the client used from the first create until it went quiet.
    pub cpu_s: f64,
    /// CPU milliseconds per Migration.
    pub cpu_ms_per_migration: f64,
    /// Reconciles counted by the operator's metrics over the burst.
    pub reconciles: Option<f64>,
    /// Reconciles per second (first create to last counter change).
    pub reconciles_per_s: Option<f64>,
    /// CPU milliseconds per reconcile.
    pub cpu_ms_per_reconcile: Option<f64>,
    /// The metric families summed as reconciles.
    pub reconcile_metric: Vec<String>,
    /// API requests per Migration by verb and resource, every client included.
    #[serde(default)]
    pub api_requests_per_migration: BTreeMap<String, f64>,
    /// CPU seconds of kube-apiserver, etcd and kube-controller-manager over the same window,
    /// when their PIDs are known.
    pub control_plane_cpu_s: Option<f64>,
}

/// Both sides of the burst scenario.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Burst {
    /// The floor client.
    pub floor: Option<BurstSide>,
    /// The operator.
    pub operator: Option<BurstSide>,
}

/// One memory sample.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct MemoryPoint {
    /// `operator` or `floor`.
    pub process: String,
    /// Migrations (each with its Jobs) in the cluster.
    pub migrations: usize,
    /// What led here (`fresh start`, `after burst`, `after restart`).
    pub phase: String,
    /// Resident now, after settling, MB.
    pub steady_mb: f64,
    /// Peak resident since the process started, MB.
    pub peak_mb: f64,
    /// Of the steady figure: anonymous memory (heap, stacks), MB.
    #[serde(default)]
    pub anon_mb: f64,
    /// Of the steady figure: file-backed pages (the binary's code and data), MB.
    #[serde(default)]
    pub file_mb: f64,
}

/// One start-up measurement.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct StartupPoint {
    /// Migrations present at start.
    pub migrations: usize,
    /// Process spawn to the first `/healthz` 200, ms.
    pub healthz_ms: f64,
    /// Process spawn to the first `/readyz` 200, ms (none: not within 30 s of `/healthz`).
    pub readyz_ms: Option<f64>,
    /// Process spawn to the reconcile counter's first increase, ms (with Migrations present:
    /// the caches are synced and the controller works, whatever `/readyz` says).
    #[serde(default)]
    pub first_reconcile_ms: Option<f64>,
}

/// Binary and image sizes.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Size {
    /// The stripped release binary, bytes.
    pub binary_bytes: u64,
    /// The base image's size, bytes, as given to the report (an estimate without an engine).
    pub base_image_bytes: u64,
    /// What the base image is and where its size comes from.
    pub base_image_note: String,
}

/// Bytes to MB (10^6: the unit the targets use).
pub fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

fn verdict(ok: bool) -> &'static str {
    if ok { "yes" } else { "NO" }
}

/// The Markdown table of the figures against their targets.
pub fn table(r: &Results) -> String {
    let (m, run) = (&r.machine, &r.run);
    let mut out = format!(
        "Measured on {} CPUs ({}), {} GiB, Linux {}, API server {}; load average {} at the \
         start, {} at the end; scale {} (latency {}, burst {}, memory up to {}).\n\n",
        m.cpus,
        m.cpu_model,
        m.memory_gib,
        m.kernel,
        m.kube_version,
        m.load_start,
        m.load_end,
        run.scale,
        run.latency_n,
        run.burst_n,
        run.memory_max
    );
    out.push_str("| scenario | operator | floor | ratio | target | met |\n");
    out.push_str("|---|---|---|---|---|---|\n");
    latency_rows(&mut out, r.latency.as_ref());
    burst_rows(&mut out, &r.burst);
    memory_rows(&mut out, &r.memory);
    startup_rows(&mut out, &r.startup);
    size_rows(&mut out, r.size.as_ref());
    out
}

fn row(out: &mut String, cells: [&str; 6]) {
    let _ = writeln!(out, "| {} |", cells.join(" | "));
}

fn latency_rows(out: &mut String, l: Option<&Latency>) {
    let Some(l) = l else { return };
    let floor_job = l.floor_job.as_ref();
    let lines = [
        (
            "Migration on a watch (one API write)",
            l.operator_seen.as_ref(),
            l.floor_seen.as_ref(),
            false,
        ),
        ("first Job", l.operator_job.as_ref(), floor_job, true),
        (
            "first status write",
            l.operator_status.as_ref(),
            floor_job,
            true,
        ),
    ];
    requests_row(out, "latency", &l.operator_requests, &l.floor_requests);
    for (what, op, floor) in lines.iter().map(|(w, o, f, _)| (*w, *o, *f)) {
        let targeted = what != lines[0].0;
        for p in ["p50", "p99"] {
            latency_row(out, l.n, what, p, op, floor, targeted && p == "p50");
        }
    }
}

/// Total API requests per Migration (every client, watches left out) and the writes among them.
fn requests_row(
    out: &mut String,
    what: &str,
    op: &BTreeMap<String, f64>,
    floor: &BTreeMap<String, f64>,
) {
    if op.is_empty() && floor.is_empty() {
        return;
    }
    let cell = |c: &BTreeMap<String, f64>| {
        if c.is_empty() {
            return "-".to_owned();
        }
        let total: f64 = c.values().sum();
        let writes: f64 = c.iter().filter(|(k, _)| is_write(k)).map(|(_, v)| v).sum();
        format!("{total:.1} ({writes:.1} writes)")
    };
    row(
        out,
        [
            &format!("{what}: API requests per Migration, all clients"),
            &cell(op),
            &cell(floor),
            "-",
            "-",
            "-",
        ],
    );
}

fn is_write(key: &str) -> bool {
    ["POST", "PUT", "PATCH", "APPLY", "DELETE"]
        .iter()
        .any(|v| key.starts_with(v))
}

fn latency_row(
    out: &mut String,
    n: usize,
    what: &str,
    p: &str,
    op: Option<&Stats>,
    floor: Option<&Stats>,
    targeted: bool,
) {
    if op.is_none() && floor.is_none() {
        return;
    }
    let pick = |s: &Stats| if p == "p50" { s.p50_ms } else { s.p99_ms };
    let (opv, fv) = (op.map(pick), floor.map(pick));
    let ratio = opv.zip(fv).map(|(o, f)| o / f);
    let timeouts = op.or(floor).map_or(0, |s| s.timeouts);
    let met = match (targeted, opv) {
        (true, Some(v)) => {
            verdict(v < TARGET_P50_MS && ratio.is_some_and(|x| x <= TARGET_P50_RATIO))
        }
        _ => "-",
    };
    let target = if targeted {
        format!("< {TARGET_P50_MS} ms and <= {TARGET_P50_RATIO}x floor")
    } else {
        "-".to_owned()
    };
    let floor_label = if what == "first status write" {
        " (its first Job)"
    } else {
        ""
    };
    row(
        out,
        [
            &format!("latency {p}: apply to {what} (n={n}, {timeouts} timeouts)"),
            &opv.map_or("-".into(), |v| format!("{v:.1} ms")),
            &fv.map_or("-".into(), |v| format!("{v:.1} ms{floor_label}")),
            &ratio.map_or("-".into(), |x| format!("{x:.2}x")),
            &target,
            met,
        ],
    );
}

fn burst_rows(out: &mut String, b: &Burst) {
    let (op, fl) = (b.operator.as_ref(), b.floor.as_ref());
    let n = op.or(fl).map_or(0, |s| s.n);
    if n == 0 {
        return;
    }
    let cell = |s: Option<&BurstSide>, f: &dyn Fn(&BurstSide) -> Option<f64>, unit: &str| {
        s.and_then(f)
            .map_or("-".to_owned(), |v| format!("{v:.2} {unit}"))
    };
    let ratio = |f: &dyn Fn(&BurstSide) -> Option<f64>| match (op.and_then(f), fl.and_then(f)) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}x", a / b),
        _ => "-".to_owned(),
    };
    let all_jobs = |s: &BurstSide| Some(s.all_jobs_s);
    let cpu = |s: &BurstSide| Some(s.cpu_ms_per_migration);
    let cp = |s: &BurstSide| s.control_plane_cpu_s;
    let requests = |s: Option<&BurstSide>| s.map(|s| s.api_requests_per_migration.clone());
    requests_row(
        out,
        "burst",
        &requests(op).unwrap_or_default(),
        &requests(fl).unwrap_or_default(),
    );
    row(
        out,
        [
            &format!("burst: {n} at once, time to all first Jobs"),
            &cell(op, &all_jobs, "s"),
            &cell(fl, &all_jobs, "s"),
            &ratio(&all_jobs),
            "-",
            "-",
        ],
    );
    let status = |s: &BurstSide| s.all_status_s;
    row(
        out,
        [
            "burst: time to all first status writes",
            &cell(op, &status, "s"),
            "-",
            "-",
            "-",
            "-",
        ],
    );
    let rps = |s: &BurstSide| s.reconciles_per_s;
    row(
        out,
        [
            "burst: reconciles per second",
            &cell(op, &rps, "/s"),
            "-",
            "-",
            "-",
            "-",
        ],
    );
    let cpr = |s: &BurstSide| s.cpu_ms_per_reconcile;
    row(
        out,
        [
            "burst: operator CPU per reconcile",
            &cell(op, &cpr, "ms"),
            "-",
            "-",
            "-",
            "-",
        ],
    );
    row(
        out,
        [
            "burst: client CPU per Migration",
            &cell(op, &cpu, "ms"),
            &cell(fl, &cpu, "ms"),
            &ratio(&cpu),
            "-",
            "-",
        ],
    );
    row(
        out,
        [
            "burst: control-plane CPU (apiserver, etcd, kcm)",
            &cell(op, &cp, "s"),
            &cell(fl, &cp, "s"),
            &ratio(&cp),
            "-",
            "-",
        ],
    );
}

fn memory_rows(out: &mut String, points: &[MemoryPoint]) {
    for p in points {
        let target = match (p.process.as_str(), p.migrations) {
            ("operator", 1000) => Some(TARGET_MB_1K),
            ("operator", 10000) => Some(TARGET_MB_10K),
            _ => None,
        };
        let value = format!(
            "{:.1} MB steady ({:.1} anon, {:.1} file), {:.1} MB peak",
            p.steady_mb, p.anon_mb, p.file_mb, p.peak_mb
        );
        let (op, fl) = if p.process == "floor" {
            ("-".to_owned(), value)
        } else {
            (value, "-".to_owned())
        };
        row(
            out,
            [
                &format!("memory: {} Migrations, {}", p.migrations, p.phase),
                &op,
                &fl,
                "-",
                &target.map_or("-".into(), |t| format!("< {t} MB")),
                target.map_or("-", |t| verdict(p.peak_mb < t && p.steady_mb < t)),
            ],
        );
    }
}

fn startup_rows(out: &mut String, points: &[StartupPoint]) {
    for p in points {
        let ready_target = (p.migrations == 1000).then_some(TARGET_READYZ_MS);
        row(
            out,
            [
                &format!("start-up to /healthz, {} Migrations", p.migrations),
                &format!("{:.1} ms", p.healthz_ms),
                "-",
                "-",
                &format!("< {TARGET_HEALTHZ_MS} ms"),
                verdict(p.healthz_ms < TARGET_HEALTHZ_MS),
            ],
        );
        let ms_cell =
            |v: Option<f64>| v.map_or("never (30 s)".to_owned(), |v| format!("{v:.1} ms"));
        row(
            out,
            [
                &format!("start-up to /readyz, {} Migrations", p.migrations),
                &ms_cell(p.readyz_ms),
                "-",
                "-",
                &ready_target.map_or("-".into(), |t| format!("< {t} ms")),
                ready_target.map_or("-", |t| verdict(p.readyz_ms.is_some_and(|v| v < t))),
            ],
        );
        if p.migrations > 0 {
            row(
                out,
                [
                    &format!("start-up to first reconcile, {} Migrations", p.migrations),
                    &ms_cell(p.first_reconcile_ms),
                    "-",
                    "-",
                    "-",
                    "-",
                ],
            );
        }
    }
}

fn size_rows(out: &mut String, s: Option<&Size>) {
    let Some(s) = s else { return };
    let image = s.binary_bytes + s.base_image_bytes;
    row(
        out,
        [
            "size: stripped release binary",
            &format!("{:.1} MB", mb(s.binary_bytes)),
            "-",
            "-",
            "-",
            "-",
        ],
    );
    row(
        out,
        [
            &format!("size: image estimate ({})", s.base_image_note),
            &format!("{:.1} MB", mb(image)),
            "-",
            "-",
            &format!("< {TARGET_IMAGE_MB} MB"),
            verdict(mb(image) < TARGET_IMAGE_MB),
        ],
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let s = Stats::of((1..=100).rev().map(f64::from).collect(), 2);
        assert_eq!(
            (s.p50_ms, s.p90_ms, s.p99_ms, s.max_ms),
            (50.0, 90.0, 99.0, 100.0)
        );
        assert_eq!((s.n, s.timeouts), (100, 2));
        assert!((s.mean_ms - 50.5).abs() < 1e-9);
    }

    #[test]
    fn percentiles_of_nothing_are_zero_with_the_timeouts_kept() {
        let s = Stats::of(Vec::new(), 3);
        assert_eq!((s.n, s.timeouts, s.p50_ms), (0, 3, 0.0));
    }

    #[test]
    fn table_flags_a_missed_memory_target() {
        let mut r = Results::default();
        r.memory.push(MemoryPoint {
            process: "operator".into(),
            migrations: 1000,
            phase: "after burst".into(),
            steady_mb: 18.0,
            peak_mb: 22.0,
            anon_mb: 12.0,
            file_mb: 6.0,
        });
        let t = table(&r);
        assert!(t.contains(concat!(
            "| memory: 1000 Migrations, after burst | ",
            "18.0 MB steady (12.0 anon, 6.0 file), 22.0 MB peak"
        )));
        assert!(t.contains("| < 20 MB | NO |"), "{t}");
    }
}
