"""publish: put the generated dbt project on a git branch or into an output volume.

Git credentials come from env ``DATAMIGRATE_GIT_USERNAME`` / ``DATAMIGRATE_GIT_PASSWORD``
through a ``GIT_ASKPASS`` helper written to a temporary folder outside the workspace; the helper
reads them from env too, so they are in no file, URL or log line. The branch is updated with a
new commit on top of its current head (history kept); publishing twice is harmless.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from datamigrate_agent.errors import EXIT_OK, PermanentError, RetryableError
from datamigrate_agent.progress import ConfigMapSink

__all__ = ["add_arguments", "run", "publish_git", "publish_volume"]

log = logging.getLogger(__name__)

#: Generated or local-only things that never leave the workspace.
_SKIP = {"target", "logs", "dbt_packages", ".user.yml", "package-lock.yml"}
_ASKPASS = """#!/bin/sh
case "$1" in
  Username*) printf '%s\\n' "$DATAMIGRATE_GIT_USERNAME" ;;
  *) printf '%s\\n' "$DATAMIGRATE_GIT_PASSWORD" ;;
esac
"""
_AUTHOR = {
    "GIT_AUTHOR_NAME": "DataMigrate",
    "GIT_AUTHOR_EMAIL": "datamigrate@localhost",
    "GIT_COMMITTER_NAME": "DataMigrate",
    "GIT_COMMITTER_EMAIL": "datamigrate@localhost",
}
_GIT_TIMEOUT = 300


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``publish`` options (docs/architecture.md)."""
    parser.add_argument("--workspace", required=True, type=Path)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--git-url")
    where.add_argument("--volume-dir", type=Path)
    parser.add_argument("--branch")
    parser.add_argument("--path", default="")


def _safe_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is not None or (parts.username and parts.scheme in {"http", "https"}):
        raise PermanentError(
            "spec.output.git.url must not carry credentials: put them in the Secret of "
            "spec.output.git.credentialsSecretRef",
            code="CredentialsInUrl",
        )
    return url


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.username or parts.password:
        return urlunsplit(parts._replace(netloc=parts.hostname or ""))
    return url


def _copy_project(project: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for item in project.iterdir():
        if item.name in _SKIP:
            continue
        target = dest / item.name
        if item.is_dir():
            shutil.copytree(item, target, ignore=shutil.ignore_patterns(*_SKIP))
        else:
            shutil.copy2(item, target)


def _project_dir(workspace: Path) -> Path:
    project = workspace / "project"
    if not (project / "dbt_project.yml").is_file():
        raise PermanentError(f"no dbt project in {project}: run migrate first", code="NoProject")
    return project


def _git_env(tmp: Path) -> dict[str, str]:
    askpass = tmp / "askpass.sh"
    askpass.write_text(_ASKPASS, encoding="utf-8")
    askpass.chmod(stat.S_IRWXU)
    env = {**os.environ, **_AUTHOR, "GIT_ASKPASS": str(askpass), "GIT_TERMINAL_PROMPT": "0"}
    env.pop("GIT_DIR", None)
    return env


def _git(args: list[str], cwd: Path, env: dict[str, str], url: str, check: bool = True) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=_GIT_TIMEOUT, check=False)  # fmt: skip
    except subprocess.TimeoutExpired as e:
        raise RetryableError(f"git {args[0]} timed out", code="GitTimeout") from e
    if check and done.returncode != 0:
        detail = " ".join(done.stderr.replace(url, _redacted(url)).split())[:500]
        raise RetryableError(f"git {args[0]} failed: {detail}", code="GitFailed")
    return done.stdout.strip() if done.returncode == 0 else ""


def _clear(repo: Path, sub: Path) -> None:
    folder = repo / sub
    if folder == repo:
        for item in repo.iterdir():
            if item.name != ".git":
                shutil.rmtree(item) if item.is_dir() else item.unlink()
    elif folder.exists():
        shutil.rmtree(folder)


def publish_git(workspace: Path, url: str, branch: str, path: str = "") -> dict[str, str]:
    """Commit the project under ``path`` on ``branch`` and push it to ``url``."""
    project = _project_dir(workspace)
    url = _safe_url(url)
    sub = Path(path.strip("/")) if path.strip("/") else Path()
    if ".." in sub.parts:
        raise PermanentError(
            "spec.output.git.path must stay inside the repository (no .. segment)",
            code="InvalidArguments",
        )
    with tempfile.TemporaryDirectory(prefix="datamigrate-publish-") as tmp_name:
        tmp = Path(tmp_name)
        env, repo = _git_env(tmp), tmp / "repo"
        repo.mkdir()
        _git(["init", "-q"], repo, env, url)
        # A missing branch is not an error: the first publish creates it.
        _git(["fetch", "-q", "--depth=1", url, f"refs/heads/{branch}"], repo, env, url,
             check=False)  # fmt: skip
        fetched = _has_fetch_head(repo)
        start = ["checkout", "-q", "-B", branch, "FETCH_HEAD"] if fetched else [
            "checkout", "-q", "--orphan", branch]  # fmt: skip
        _git(start, repo, env, url)
        _clear(repo, sub)
        _copy_project(project, repo / sub)
        _git(["add", "-A"], repo, env, url)
        if _git(["status", "--porcelain"], repo, env, url):
            _git(["commit", "-q", "-m", _commit_message(project)], repo, env, url)
        commit = _git(["rev-parse", "HEAD"], repo, env, url)
        _git(["push", "-q", url, f"HEAD:refs/heads/{branch}"], repo, env, url)
    location = f"{_redacted(url)}#{branch}" + (f":{sub}" if str(sub) != "." else "")
    return {"location": location, "commit": commit}


def _commit_message(project: Path) -> str:
    """``DataMigrate: dbt project NAME``, NAME from ``dbt_project.yml`` (the folder's otherwise)."""
    name = project.name
    config = project / "dbt_project.yml"
    if config.is_file():
        for line in config.read_text(encoding="utf-8").splitlines():
            key, _, value = line.partition(":")
            if key == "name" and value.strip().strip("'\""):
                name = value.strip().strip("'\"")
                break
    return f"DataMigrate: dbt project {name}"


def _has_fetch_head(repo: Path) -> bool:
    head = repo / ".git" / "FETCH_HEAD"
    return head.is_file() and head.stat().st_size > 0


def publish_volume(workspace: Path, volume: Path) -> dict[str, str | None]:
    """Copy the project into ``volume`` (replacing an earlier copy).

    ``volume`` is the claim's mount plus ``spec.output.volume.path``; a ``..`` segment in it
    would reach outside the claim, so it is refused before anything is written.
    """
    if ".." in Path(volume).parts:
        raise PermanentError(
            "spec.output.volume.path must stay inside the volume (no .. segment)",
            code="InvalidArguments",
        )
    project = _project_dir(workspace)
    volume = volume.resolve()
    if volume == workspace.resolve() or workspace.resolve() in volume.parents:
        raise PermanentError("--volume-dir must be outside the workspace", code="InvalidArguments")
    volume.mkdir(parents=True, exist_ok=True)
    for item in project.iterdir():
        if item.name not in _SKIP and (volume / item.name).exists():
            old = volume / item.name
            shutil.rmtree(old) if old.is_dir() and not old.is_symlink() else old.unlink()
    _copy_project(project, volume)
    return {"location": str(volume), "commit": None}


def run(args: argparse.Namespace) -> int:
    """Entry point of ``python -m datamigrate_agent publish``."""
    workspace = args.workspace.resolve()
    if args.git_url:
        if not args.branch:
            raise PermanentError("--git-url needs --branch", code="InvalidArguments")
        result: dict[str, str | None] = dict(
            publish_git(workspace, args.git_url, args.branch, args.path)
        )
    else:
        result = publish_volume(workspace, args.volume_dir)
    tmp = workspace / ".publish.json.tmp"
    tmp.write_text(json.dumps(result) + "\n", encoding="utf-8")
    os.replace(tmp, workspace / "publish.json")
    _report_to_operator(result)
    log.info("Published project", extra={"fields": result})
    return EXIT_OK


def _report_to_operator(result: dict[str, str | None]) -> None:
    """Write ``publish.json`` to the progress ConfigMap, where the operator reads the commit.

    A failed write is retryable: publishing again is idempotent (no second commit), and without
    the record the Migration's status would lack its output's commit.
    """
    name = os.environ.get("DATAMIGRATE_PROGRESS_CONFIGMAP")
    if not name:
        return
    namespace = os.environ.get("DATAMIGRATE_NAMESPACE", "default")
    try:
        ConfigMapSink(name, namespace).patch({"publish.json": json.dumps(result)})
    except Exception as e:  # noqa: BLE001 - any client failure means the same: try again
        raise RetryableError(
            f"could not record the published commit: {type(e).__name__}", code="ReportFailed"
        ) from e
