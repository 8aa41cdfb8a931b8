//! Processes under test: spawning, stopping by PID, and reading their CPU time and resident
//! memory from `/proc`.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};

use crate::error::{self, Error, Result};

/// How long a process gets to exit after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(15);

/// A spawned process, known by its PID.
pub struct Proc {
    /// Short name used in logs and file names.
    pub name: String,
    child: Child,
    pid: u32,
    /// Just before `spawn` was called.
    pub started: Instant,
}

/// Resident memory of a process, in bytes.
#[derive(Debug, Clone, Copy)]
pub struct Memory {
    /// `VmRSS`: resident now.
    pub rss: u64,
    /// `VmHWM`: the peak resident size since the process started.
    pub hwm: u64,
    /// `RssAnon`: the resident heap and stacks (the part that grows with the caches).
    pub anon: u64,
    /// `RssFile`: resident pages of the mapped binary and libraries.
    pub file: u64,
}

impl Proc {
    /// Starts `program` with stderr (and stdout unless `pipe_stdout`) in `log_dir/<name>.log`.
    pub fn spawn(
        name: &str,
        program: &Path,
        args: &[String],
        log_dir: &Path,
        pipe_stdout: bool,
    ) -> Result<Self> {
        let log_path = log_dir.join(format!("{name}.log"));
        let log = std::fs::File::create(&log_path)
            .map_err(error::io(format!("create {}", log_path.display())))?;
        let err_log = log.try_clone().map_err(error::io("clone a log handle"))?;
        let mut command = Command::new(program);
        command
            .args(args)
            .stdin(Stdio::null())
            .stderr(err_log)
            .kill_on_drop(true);
        if pipe_stdout {
            command.stdout(Stdio::piped());
        } else {
            command.stdout(log);
        }
        let started = Instant::now();
        let child = command
            .spawn()
            .map_err(error::io(format!("start {}", program.display())))?;
        let pid = child.id().ok_or_else(|| Error::Invalid {
            what: format!("{name} has no pid"),
        })?;
        Ok(Self {
            name: name.to_owned(),
            child,
            pid,
            started,
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Takes the piped stdout (once).
    pub fn take_stdout(&mut self) -> Option<ChildStdout> {
        self.child.stdout.take()
    }

    /// Fails when the process has exited already.
    pub fn ensure_running(&mut self) -> Result<()> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(Error::Invalid {
                what: format!("{} exited: {status}", self.name),
            }),
            Err(e) => Err(error::io(format!("poll {}", self.name))(e)),
        }
    }

    /// Resident memory now and at its peak.
    pub fn memory(&self) -> Result<Memory> {
        read_memory(self.pid)
    }

    /// User plus system CPU seconds used so far.
    pub fn cpu_seconds(&self) -> Result<f64> {
        read_cpu_seconds(self.pid)
    }

    /// SIGTERM, then SIGKILL if it has not exited within the grace period.
    pub async fn stop(mut self) -> Result<()> {
        if let Some(pid) = i32::try_from(self.pid).ok().and_then(Pid::from_raw) {
            let _ = rustix::process::kill_process(pid, Signal::TERM);
        }
        match tokio::time::timeout(STOP_GRACE, self.child.wait()).await {
            Ok(waited) => waited
                .map(|_| ())
                .map_err(error::io(format!("wait for {}", self.name))),
            Err(_) => {
                tracing::warn!(name = %self.name, "Process ignored SIGTERM, killing it");
                self.child
                    .kill()
                    .await
                    .map_err(error::io(format!("kill {}", self.name)))
            }
        }
    }
}

/// Reads lines from `stdout` until one equals `want`, copying everything to `log`; the rest
/// of the stream keeps being copied in the background.
pub async fn wait_for_line(
    stdout: ChildStdout,
    want: &str,
    log: PathBuf,
    timeout: Duration,
) -> Result<()> {
    let mut lines = BufReader::new(stdout).lines();
    let mut file = tokio::fs::File::create(&log)
        .await
        .map_err(error::io(format!("create {}", log.display())))?;
    let found = tokio::time::timeout(timeout, async {
        while let Ok(Some(line)) = lines.next_line().await {
            let _ = file.write_all(format!("{line}\n").as_bytes()).await;
            if line == want {
                return true;
            }
        }
        false
    })
    .await;
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            let _ = file.write_all(format!("{line}\n").as_bytes()).await;
        }
    });
    match found {
        Ok(true) => Ok(()),
        Ok(false) => Err(Error::Invalid {
            what: format!("stdout ended before {want:?}"),
        }),
        Err(_) => Err(Error::Timeout {
            what: format!("{want:?} on stdout"),
            seconds: timeout.as_secs(),
        }),
    }
}

/// Reads `VmRSS` and `VmHWM` of `pid`.
pub fn read_memory(pid: u32) -> Result<Memory> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).map_err(error::io(format!("read {path}")))?;
    let rss = status_kib(&text, "VmRSS:");
    let hwm = status_kib(&text, "VmHWM:");
    let anon = status_kib(&text, "RssAnon:").unwrap_or_default() * 1024;
    let file = status_kib(&text, "RssFile:").unwrap_or_default() * 1024;
    match (rss, hwm) {
        (Some(rss), Some(hwm)) => Ok(Memory {
            rss: rss * 1024,
            hwm: hwm * 1024,
            anon,
            file,
        }),
        _ => Err(Error::Invalid {
            what: format!("{path} has no VmRSS/VmHWM"),
        }),
    }
}

/// The value in KiB of one `Key:   123 kB` line of `/proc/<pid>/status`.
fn status_kib(text: &str, key: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

/// Reads `utime + stime` of `pid` from `/proc/<pid>/stat`, in seconds.
pub fn read_cpu_seconds(pid: u32) -> Result<f64> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).map_err(error::io(format!("read {path}")))?;
    let ticks = stat_ticks(&text).ok_or_else(|| Error::Invalid {
        what: format!("bad {path}"),
    })?;
    Ok(ticks as f64 / clock_ticks_per_second())
}

/// `utime + stime` in clock ticks: fields 14 and 15, counted after the `(comm)` field.
fn stat_ticks(text: &str) -> Option<u64> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// `getconf CLK_TCK` (100 on every Linux this runs on, asked once to be sure).
fn clock_ticks_per_second() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// A loopback address with a port that was free a moment ago.
pub fn free_loopback_addr() -> Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(error::io("bind a loopback port"))?;
    listener
        .local_addr()
        .map_err(error::io("read the bound port"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_ticks_skips_a_command_name_with_spaces_and_parens() {
        let line = "42 (my (odd) name) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 4 0";
        assert_eq!(stat_ticks(line), Some(300));
    }

    #[test]
    fn status_kib_reads_the_named_line() {
        let text = "Name:\tx\nVmHWM:\t   2048 kB\nVmRSS:\t   1024 kB\n";
        assert_eq!(status_kib(text, "VmRSS:"), Some(1024));
        assert_eq!(status_kib(text, "VmHWM:"), Some(2048));
        assert_eq!(status_kib(text, "VmSwap:"), None);
    }

    #[test]
    fn own_process_reports_memory_and_cpu() {
        let pid = std::process::id();
        let memory = read_memory(pid).unwrap();
        assert!(memory.rss > 0 && memory.hwm >= memory.rss);
        assert!(read_cpu_seconds(pid).unwrap() >= 0.0);
    }
}
