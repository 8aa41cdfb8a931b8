//! Turning a step's container ([`StepSpec`], the same one the Job builder uses) into a local
//! process, and running it.
//!
//! A container sees its volumes at their mount paths; a local process cannot, so every argument
//! and environment value that starts with a mount path is rewritten to the local folder that
//! stands for the volume. The image is not pulled: `python` is the agent's Python environment.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use super::LocalError;
use super::manifests::Manifests;
use crate::steps::{ENV_PROGRESS_CONFIGMAP, EnvValue, MountSource, StepSpec};

/// Where a local run keeps its volumes.
#[derive(Clone, Debug)]
pub struct Layout {
    /// The workspace volume: the dbt project, results and report end up here.
    pub workspace: PathBuf,
    /// Folder for the step logs, ConfigMap keys and termination messages.
    pub internal: PathBuf,
    /// Folders standing for PersistentVolumeClaims, by claim name (`--claim NAME=DIR`).
    pub claims: BTreeMap<String, PathBuf>,
    /// The Python that has the agent installed.
    pub python: PathBuf,
}

/// A step ready to run as a local process.
#[derive(Debug)]
pub struct LocalCommand {
    /// Program to run.
    pub program: PathBuf,
    /// Its arguments, paths rewritten.
    pub args: Vec<String>,
    /// Environment added to this process's own; secret values included, never printed.
    pub env: Vec<(String, String)>,
    /// Where the container's termination message goes.
    pub termination_log: PathBuf,
}

/// How a step process ended.
#[derive(Debug)]
pub struct Outcome {
    /// Exit status (`None` when killed by a signal).
    pub code: Option<i32>,
    /// The termination message the step wrote, if any.
    pub message: Option<String>,
}

/// Builds the local command for `spec`, materialising ConfigMap keys it mounts.
pub fn prepare(
    manifests: &Manifests,
    spec: &StepSpec,
    step: &str,
    layout: &Layout,
) -> Result<LocalCommand, LocalError> {
    let mounts = local_mounts(manifests, spec, step, layout)?;
    let rewrite = |s: &str| rewrite_path(s, &mounts);
    let program = match spec.command.first().map(String::as_str) {
        Some("python" | "python3") => layout.python.clone(),
        Some(other) => PathBuf::from(other),
        None => {
            return Err(LocalError::Reference {
                message: "step has no command".into(),
            });
        }
    };
    let mut args: Vec<String> = spec.command.iter().skip(1).map(|a| rewrite(a)).collect();
    args.extend(spec.args.iter().map(|a| rewrite(a)));
    let termination_log = layout.internal.join(format!("{step}.termination-log"));
    let mut env = Vec::new();
    for entry in &spec.env {
        // No cluster: progress goes to the terminal through the log lines only.
        if entry.name == ENV_PROGRESS_CONFIGMAP {
            continue;
        }
        let value = match &entry.value {
            EnvValue::Literal(v) => rewrite(v),
            EnvValue::SecretKeyRef { name, key } => manifests.secret_key(name, key)?,
        };
        env.push((entry.name.clone(), value));
    }
    let log = termination_log.display().to_string();
    env.push(("DATAMIGRATE_TERMINATION_LOG".into(), log));
    Ok(LocalCommand {
        program,
        args,
        env,
        termination_log,
    })
}

fn local_mounts(
    manifests: &Manifests,
    spec: &StepSpec,
    step: &str,
    layout: &Layout,
) -> Result<Vec<(String, PathBuf)>, LocalError> {
    let mut mounts = Vec::new();
    for mount in &spec.mounts {
        let dir = match &mount.source {
            MountSource::Workspace => layout.workspace.clone(),
            MountSource::ConfigMapKey { name, key } => {
                let dir = layout.internal.join(format!("{step}-{}", mount.name));
                let bytes = manifests.config_map_key(name, key)?;
                write_file(&dir.join(key), &bytes)?;
                dir
            }
            MountSource::Claim { claim_name } => layout
                .claims
                .get(claim_name)
                .cloned()
                .ok_or_else(|| LocalError::Reference {
                    message: format!(
                        "PersistentVolumeClaim {claim_name} has no local folder: \
                         pass --claim {claim_name}=DIR"
                    ),
                })?,
        };
        mounts.push((mount.mount_path.clone(), dir));
    }
    // Longest mount path first, so nested mounts win.
    mounts.sort_by_key(|(path, _)| std::cmp::Reverse(path.len()));
    Ok(mounts)
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), LocalError> {
    let io = |source| LocalError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    std::fs::write(path, bytes).map_err(io)
}

/// `value` with a leading mount path replaced by the folder that stands for it.
#[must_use]
pub fn rewrite_path(value: &str, mounts: &[(String, PathBuf)]) -> String {
    for (mount_path, dir) in mounts {
        let Some(rest) = value.strip_prefix(mount_path.as_str()) else {
            continue;
        };
        if rest.is_empty() || rest.starts_with('/') {
            return format!("{}{rest}", dir.display());
        }
    }
    value.to_string()
}

/// Runs `cmd`, copying its output to `log` and handing each stdout line to `on_line`.
pub async fn run(
    cmd: &LocalCommand,
    log: &Path,
    mut on_line: impl FnMut(&str),
) -> Result<Outcome, LocalError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| LocalError::Io { path, source }
    };
    let _ = std::fs::remove_file(&cmd.termination_log);
    let mut file = tokio::fs::File::create(log).await.map_err(io(log))?;
    let mut child = tokio::process::Command::new(&cmd.program)
        .args(&cmd.args)
        .envs(cmd.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(io(&cmd.program))?;
    let stdout = child.stdout.take().map(|s| BufReader::new(s).lines());
    let stderr = child.stderr.take().map(|s| BufReader::new(s).lines());
    let (Some(mut stdout), Some(mut stderr)) = (stdout, stderr) else {
        return Err(LocalError::Reference {
            message: "step output was not captured".into(),
        });
    };
    let (mut out_done, mut err_done) = (false, false);
    while !(out_done && err_done) {
        // Which stream spoke, and its line (`None` at its end)
        let (from_stdout, line) = tokio::select! {
            l = stdout.next_line(), if !out_done => (true, l),
            l = stderr.next_line(), if !err_done => (false, l),
        };
        match line.map_err(io(log))? {
            Some(text) => {
                if from_stdout {
                    on_line(&text);
                }
                file.write_all(text.as_bytes()).await.map_err(io(log))?;
                file.write_all(b"\n").await.map_err(io(log))?;
            }
            None if from_stdout => out_done = true,
            None => err_done = true,
        }
    }
    let status = child.wait().await.map_err(io(&cmd.program))?;
    let message = std::fs::read_to_string(&cmd.termination_log)
        .ok()
        .map(|m| m.trim().to_string())
        .filter(|m| !m.is_empty());
    Ok(Outcome {
        code: status.code(),
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mounts() -> Vec<(String, PathBuf)> {
        vec![
            ("/workspace/deep".into(), PathBuf::from("/tmp/deep")),
            ("/workspace".into(), PathBuf::from("/tmp/ws")),
        ]
    }

    #[test]
    fn rewrites_mount_paths_and_keeps_other_values() {
        let m = mounts();
        assert_eq!(rewrite_path("/workspace", &m), "/tmp/ws");
        assert_eq!(
            rewrite_path("/workspace/metadata.json", &m),
            "/tmp/ws/metadata.json"
        );
        assert_eq!(rewrite_path("/workspace/deep/x", &m), "/tmp/deep/x");
        assert_eq!(rewrite_path("/workspaces", &m), "/workspaces");
        assert_eq!(rewrite_path("duckdb", &m), "duckdb");
    }

    #[tokio::test]
    async fn runs_a_process_and_reads_its_termination_message() {
        let dir = tempfile::tempdir().unwrap();
        let cmd = LocalCommand {
            program: "sh".into(),
            args: vec![
                "-c".into(),
                "echo one; echo two >&2; exec 2>&-; sleep 0.2; echo three; \
                 printf 'Code: bad' > \"$DATAMIGRATE_TERMINATION_LOG\"; exit 65"
                    .into(),
            ],
            env: vec![(
                "DATAMIGRATE_TERMINATION_LOG".into(),
                dir.path().join("t").display().to_string(),
            )],
            termination_log: dir.path().join("t"),
        };
        let mut lines = Vec::new();
        let log = dir.path().join("log");
        let outcome = run(&cmd, &log, |l| lines.push(l.to_string()))
            .await
            .unwrap();
        assert_eq!(outcome.code, Some(65));
        assert_eq!(outcome.message.as_deref(), Some("Code: bad"));
        // stderr ended first; every stdout line still came
        assert_eq!(lines, ["one", "three"]);
        let logged = std::fs::read_to_string(log).unwrap();
        assert!(logged.contains("one") && logged.contains("two"), "{logged}");
    }
}
