//! Container processes. The runner starts
//! `unshare --mount --propagation private -- pod-runner exec --mount SRC DST rw|ro ... -- CMD`,
//! so the process gets a private mount namespace in which each volume's folder is bind-mounted
//! at its `mountPath`; the `exec` helper then replaces itself with the container's command.
//! The process leads its own process group, which is what the runner signals.

use std::ffi::OsString;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};

use rustix::process::{Pid, Signal};

/// Exit status for a command that could not be started, as container runtimes report it.
pub const START_ERROR_EXIT: i32 = 128;

/// A bind mount inside the container's mount namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    /// The local folder or file.
    pub source: PathBuf,
    /// The `mountPath`.
    pub target: PathBuf,
    /// Remount read-only after binding.
    pub read_only: bool,
}

/// Everything needed to start one container run.
#[derive(Clone, Debug)]
pub struct Launch {
    /// The command and its arguments, `$(VAR)` already expanded.
    pub argv: Vec<String>,
    /// The whole environment of the process.
    pub env: Vec<(String, String)>,
    /// `workingDir`, created if missing.
    pub working_dir: Option<String>,
    /// Bind mounts.
    pub mounts: Vec<Mount>,
    /// The container's log file (stdout and stderr, appended).
    pub log: PathBuf,
    /// Where the helper writes why `exec` failed.
    pub start_error_file: PathBuf,
}

/// The arguments given to `unshare`.
pub fn unshare_args(helper: &Path, launch: &Launch) -> Vec<OsString> {
    let mut args: Vec<OsString> = ["--mount", "--propagation", "private", "--"]
        .into_iter()
        .map(OsString::from)
        .collect();
    args.push(helper.as_os_str().to_owned());
    args.push("exec".into());
    for mount in sorted_mounts(&launch.mounts) {
        args.push("--mount".into());
        args.push(mount.source.clone().into_os_string());
        args.push(mount.target.clone().into_os_string());
        args.push(if mount.read_only { "ro" } else { "rw" }.into());
    }
    if let Some(dir) = &launch.working_dir {
        args.push("--workdir".into());
        args.push(dir.into());
    }
    args.push("--start-error".into());
    args.push(launch.start_error_file.clone().into_os_string());
    args.push("--".into());
    args.extend(launch.argv.iter().map(OsString::from));
    args
}

/// Parents before children, so a mount inside another volume's mount lands in it.
fn sorted_mounts(mounts: &[Mount]) -> Vec<&Mount> {
    let mut sorted: Vec<&Mount> = mounts.iter().collect();
    sorted.sort_by_key(|m| m.target.components().count());
    sorted
}

/// Starts the container's process in its own process group.
pub fn spawn(
    unshare: &Path,
    helper: &Path,
    launch: &Launch,
) -> std::io::Result<tokio::process::Child> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&launch.log)?;
    let mut command = tokio::process::Command::new(unshare);
    command
        .args(unshare_args(helper, launch))
        .env_clear()
        .envs(launch.env.iter().map(|(k, v)| (k, v)))
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .kill_on_drop(false);
    command.spawn()
}

/// Sends `signal` to the process group led by `pid`; a group that is gone already is fine.
pub fn signal_group(pid: u32, signal: Signal) {
    let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
        return;
    };
    if let Err(error) = rustix::process::kill_process_group(pid, signal)
        && error != rustix::io::Errno::SRCH
    {
        tracing::warn!(pid = pid.as_raw_nonzero().get(), %error, "Failed to signal process group");
    }
}

/// Exit code and signal of a finished process (128 + n when killed by signal n).
pub fn exit_code(status: ExitStatus) -> (i32, Option<i32>) {
    match (status.code(), status.signal()) {
        (Some(code), _) => (code, None),
        (None, Some(signal)) => (128 + signal, Some(signal)),
        (None, None) => (START_ERROR_EXIT, None),
    }
}

// === the exec helper, run inside the new mount namespace ===

/// Arguments of `pod-runner exec`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ExecArgs {
    mounts: Vec<Mount>,
    workdir: Option<PathBuf>,
    start_error: Option<PathBuf>,
    argv: Vec<OsString>,
}

/// Parses `--mount SRC DST rw|ro`, `--workdir DIR`, `--start-error FILE`, `--`, command.
pub fn parse_exec_args(args: Vec<OsString>) -> Result<ExecArgs, String> {
    let mut parsed = ExecArgs::default();
    let mut iter = args.into_iter();
    while let Some(arg) = iter.next() {
        let mut next = || iter.next().ok_or_else(|| format!("{arg:?} needs a value"));
        match arg.to_str() {
            Some("--mount") => {
                let (source, target, mode) = (next()?, next()?, next()?);
                let read_only = mode == "ro";
                parsed.mounts.push(Mount {
                    source: source.into(),
                    target: target.into(),
                    read_only,
                });
            }
            Some("--workdir") => parsed.workdir = Some(next()?.into()),
            Some("--start-error") => parsed.start_error = Some(next()?.into()),
            Some("--") => {
                parsed.argv = iter.collect();
                break;
            }
            _ => return Err(format!("unexpected argument {arg:?}")),
        }
    }
    if parsed.argv.is_empty() {
        return Err("the container has no command; the pod runner needs one".to_owned());
    }
    Ok(parsed)
}

/// Runs the helper: mounts, changes folder and execs the command. Returns only on failure,
/// with the exit code to use.
pub fn exec_main(args: Vec<OsString>) -> i32 {
    // The runner's death (or its `down`) must not leave container processes behind.
    let _ = rustix::process::set_parent_process_death_signal(Some(Signal::KILL));
    let start_error = args
        .windows(2)
        .find(|w| w[0] == "--start-error")
        .map(|w| PathBuf::from(&w[1]));
    let message = match parse_exec_args(args) {
        Ok(parsed) => match prepare_and_exec(&parsed) {
            Ok(never) => match never {},
            Err(message) => message,
        },
        Err(message) => message,
    };
    eprintln!("pod-runner: {message}");
    if let Some(path) = start_error {
        let _ = std::fs::write(path, &message);
    }
    START_ERROR_EXIT
}

fn prepare_and_exec(args: &ExecArgs) -> Result<std::convert::Infallible, String> {
    for mount in &args.mounts {
        bind(mount)?;
    }
    if let Some(dir) = &args.workdir {
        std::fs::create_dir_all(dir).map_err(|e| format!("workingDir {}: {e}", dir.display()))?;
        std::env::set_current_dir(dir).map_err(|e| format!("workingDir {}: {e}", dir.display()))?;
    }
    let error = std::process::Command::new(&args.argv[0])
        .args(&args.argv[1..])
        .exec();
    Err(format!("exec {:?}: {error}", args.argv[0]))
}

fn bind(mount: &Mount) -> Result<(), String> {
    let what = |e: std::io::Error| format!("mount {}: {e}", mount.target.display());
    if mount.source.is_dir() {
        std::fs::create_dir_all(&mount.target).map_err(what)?;
    } else {
        if let Some(parent) = mount.target.parent() {
            std::fs::create_dir_all(parent).map_err(what)?;
        }
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&mount.target)
            .map_err(what)?;
    }
    run_mount(&[
        OsString::from("--bind"),
        mount.source.clone().into(),
        mount.target.clone().into(),
    ])?;
    if mount.read_only {
        run_mount(&[
            "-o".into(),
            "remount,bind,ro".into(),
            mount.target.clone().into(),
        ])?;
    }
    Ok(())
}

fn run_mount(args: &[OsString]) -> Result<(), String> {
    let output = std::process::Command::new("mount")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("mount {args:?}: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "mount {args:?}: {}",
        String::from_utf8_lossy(&output.stderr).trim()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn launch() -> Launch {
        Launch {
            argv: vec!["sh".into(), "-c".into(), "echo ok".into()],
            env: vec![],
            working_dir: Some("/workspace".into()),
            mounts: vec![
                Mount {
                    source: "/s/b".into(),
                    target: "/workspace/sub".into(),
                    read_only: false,
                },
                Mount {
                    source: "/s/a".into(),
                    target: "/workspace".into(),
                    read_only: true,
                },
            ],
            log: "/l".into(),
            start_error_file: "/e".into(),
        }
    }

    #[test]
    fn unshare_args_mount_parents_first_and_end_with_the_command() {
        let args = unshare_args(Path::new("/bin/pod-runner"), &launch());
        let text: Vec<String> = args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let expected = "--mount --propagation private -- /bin/pod-runner exec \
            --mount /s/a /workspace ro --mount /s/b /workspace/sub rw --workdir /workspace \
            --start-error /e -- sh -c echo ok";
        assert_eq!(text.join(" "), expected);
    }

    #[test]
    fn exec_args_parse_back_what_the_runner_passes() {
        let args = unshare_args(Path::new("/h"), &launch());
        let parsed = parse_exec_args(args[6..].to_vec()).unwrap();
        assert_eq!(parsed.mounts.len(), 2);
        assert!(parsed.mounts[0].read_only);
        assert_eq!(parsed.workdir, Some(PathBuf::from("/workspace")));
        assert_eq!(parsed.argv, ["sh", "-c", "echo ok"]);
    }

    #[test]
    fn exec_args_without_a_command_are_refused() {
        let err = parse_exec_args(vec!["--".into()]).unwrap_err();
        assert!(err.contains("no command"), "{err}");
        assert!(parse_exec_args(vec!["--mount".into(), "/a".into()]).is_err());
    }

    #[test]
    fn exit_codes_follow_the_shell_convention_for_signals() {
        assert_eq!(exit_code(ExitStatus::from_raw(3 << 8)), (3, None));
        assert_eq!(exit_code(ExitStatus::from_raw(9)), (137, Some(9)));
        assert_eq!(exit_code(ExitStatus::from_raw(15)), (143, Some(15)));
    }
}
