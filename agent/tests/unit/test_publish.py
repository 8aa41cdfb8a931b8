"""publish: a git branch (file:// or local path remotes, GIT_ASKPASS credentials) or a volume."""

from __future__ import annotations

import json
import subprocess
from argparse import Namespace
from pathlib import Path

import pytest

from datamigrate_agent import publish
from datamigrate_agent.errors import PermanentError, RetryableError


def _project(ws: Path) -> Path:
    project = ws / "project"
    (project / "models" / "staging").mkdir(parents=True)
    (project / "dbt_project.yml").write_text("name: p\n")
    (project / "models" / "staging" / "stg_a.sql").write_text("select 1 as a\n")
    (project / "target").mkdir()
    (project / "target" / "manifest.json").write_text("{}")
    return project


def _bare(tmp_path: Path) -> Path:
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    return remote


def _files_on(remote: Path, branch: str) -> list[str]:
    out = subprocess.run(["git", "ls-tree", "-r", "--name-only", branch], cwd=remote,
                         capture_output=True, text=True, check=True)  # fmt: skip
    return out.stdout.split()


def test_git_publish_pushes_the_project_without_build_output(tmp_path: Path) -> None:
    ws, remote = tmp_path / "ws", _bare(tmp_path)
    _project(ws)
    args = Namespace(workspace=ws, git_url=f"file://{remote}", branch="datamigrate/nw",
                     path="dbt", volume_dir=None)  # fmt: skip
    assert publish.run(args) == 0
    result = json.loads((ws / "publish.json").read_text())
    head = subprocess.run(["git", "rev-parse", "datamigrate/nw"], cwd=remote,
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    assert result["commit"] == head
    assert sorted(_files_on(remote, "datamigrate/nw")) == [
        "dbt/dbt_project.yml", "dbt/models/staging/stg_a.sql"]  # fmt: skip
    subject = subprocess.run(["git", "log", "-1", "--format=%s", "datamigrate/nw"], cwd=remote,
                             capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert subject.strip() == "DataMigrate: dbt project p"  # the dbt name, not the folder's


def test_git_publish_twice_keeps_history_and_adds_no_empty_commit(tmp_path: Path) -> None:
    ws, remote = tmp_path / "ws", _bare(tmp_path)
    project = _project(ws)
    first = publish.publish_git(ws, str(remote), "main")
    again = publish.publish_git(ws, str(remote), "main")
    assert again["commit"] == first["commit"]
    (project / "models" / "staging" / "stg_a.sql").write_text("select 2 as a\n")
    third = publish.publish_git(ws, str(remote), "main")
    log = subprocess.run(["git", "rev-list", "main"], cwd=remote, capture_output=True,
                         text=True, check=True).stdout.split()  # fmt: skip
    assert log == [third["commit"], first["commit"]]


def test_git_credentials_come_from_env_through_askpass_and_stay_out_of_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = tmp_path / "ws"
    _project(ws)
    monkeypatch.setenv("DATAMIGRATE_GIT_USERNAME", "bot")
    monkeypatch.setenv("DATAMIGRATE_GIT_PASSWORD", "s3cret-token")
    helper_dir = tmp_path / "helper"
    helper_dir.mkdir()
    env = publish._git_env(helper_dir)
    helper = Path(env["GIT_ASKPASS"])
    assert "s3cret-token" not in helper.read_text()
    asked = subprocess.run([str(helper), "Password for 'https://git.example':"], env=env,
                           capture_output=True, text=True, check=True)  # fmt: skip
    assert asked.stdout.strip() == "s3cret-token"
    user = subprocess.run([str(helper), "Username for 'https://git.example':"], env=env,
                          capture_output=True, text=True, check=True)  # fmt: skip
    assert user.stdout.strip() == "bot"


def test_credentials_in_the_url_are_refused(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    _project(ws)
    with pytest.raises(PermanentError, match="spec.output.git.url must not carry credentials"):
        publish.publish_git(ws, "https://bot:token@git.example/repo.git", "main")


def test_a_volume_path_with_dotdot_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    ws, claim = tmp_path / "ws", tmp_path / "claim"
    _project(ws)
    claim.mkdir()
    escape = claim / "a" / ".." / ".." / "escaped"
    with pytest.raises(PermanentError, match=r"spec.output.volume.path must stay inside") as err:
        publish.publish_volume(ws, escape)
    assert err.value.code == "InvalidArguments"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["claim", "ws"]
    assert list(claim.iterdir()) == []


def test_unreachable_remote_is_retryable_and_names_no_secret(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    _project(ws)
    with pytest.raises(publish.RetryableError) as err:
        publish.publish_git(ws, str(tmp_path / "missing.git"), "main")
    assert err.value.exit_code == 75


def test_volume_publish_replaces_an_earlier_copy(tmp_path: Path) -> None:
    ws, out = tmp_path / "ws", tmp_path / "out"
    project = _project(ws)
    publish.publish_volume(ws, out)
    (project / "models" / "staging" / "stg_a.sql").unlink()
    (project / "models" / "staging" / "stg_b.sql").write_text("select 1 as b\n")
    result = publish.run(Namespace(workspace=ws, git_url=None, volume_dir=out, branch=None,
                                   path=""))  # fmt: skip
    assert result == 0
    assert sorted(p.name for p in (out / "models" / "staging").iterdir()) == ["stg_b.sql"]
    assert not (out / "target").exists()
    assert json.loads((ws / "publish.json").read_text())["location"] == str(out.resolve())


def test_publish_without_a_project_is_a_permanent_error(tmp_path: Path) -> None:
    with pytest.raises(PermanentError, match="run migrate first"):
        publish.publish_volume(tmp_path, tmp_path / "out")


class _RecordingSink:
    calls: list[tuple[str, str, dict[str, str]]] = []
    fail = False

    def __init__(self, name: str, namespace: str) -> None:
        self.name, self.namespace = name, namespace

    def patch(self, data: dict[str, str]) -> None:
        if self.fail:
            raise ConnectionError("api server down")
        self.calls.append((self.name, self.namespace, data))


def test_git_publish_records_the_commit_in_the_progress_configmap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws, remote = tmp_path / "ws", _bare(tmp_path)
    _project(ws)
    monkeypatch.setenv("DATAMIGRATE_PROGRESS_CONFIGMAP", "nw-progress")
    monkeypatch.setenv("DATAMIGRATE_NAMESPACE", "team-a")
    monkeypatch.setattr(publish, "ConfigMapSink", _RecordingSink)
    _RecordingSink.calls = []
    args = Namespace(workspace=ws, git_url=f"file://{remote}", branch="b", path="", volume_dir=None)
    assert publish.run(args) == 0
    [(name, namespace, data)] = _RecordingSink.calls
    record = json.loads(data["publish.json"])
    head = subprocess.run(["git", "rev-parse", "b"], cwd=remote, capture_output=True, text=True)
    assert (name, namespace) == ("nw-progress", "team-a")
    assert record["commit"] == head.stdout.strip()


def test_a_failed_commit_record_is_retryable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = tmp_path / "ws"
    _project(ws)
    monkeypatch.setenv("DATAMIGRATE_PROGRESS_CONFIGMAP", "nw-progress")
    monkeypatch.setattr(publish, "ConfigMapSink", _RecordingSink)
    monkeypatch.setattr(_RecordingSink, "fail", True)
    args = Namespace(workspace=ws, git_url=None, volume_dir=tmp_path / "out", branch=None, path="")
    with pytest.raises(RetryableError):
        publish.run(args)
