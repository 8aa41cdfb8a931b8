"""progress: JSON log lines always, ConfigMap patches throttled and never fatal."""

from __future__ import annotations

import json
import logging

import pytest

from datamigrate_agent.progress import MAX_SUMMARY_ENTRIES, ConfigMapSink, Progress, summary_of


class FakeSink:
    def __init__(self, fail: bool = False) -> None:
        self.patches: list[dict[str, str]] = []
        self.fail = fail

    def patch(self, data: dict[str, str]) -> None:
        if self.fail:
            raise ConnectionError("apiserver down")
        self.patches.append(data)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_patches_are_throttled_and_the_latest_counts_flushed() -> None:
    sink, clock = FakeSink(), Clock()
    p = Progress(sink=sink, clock=clock)
    p.update(total=10)
    for i in range(1, 6):
        clock.now += 0.125
        p.update(completed=i)
    assert len(sink.patches) == 2  # the first, then one 0.5 s later
    p.flush()
    assert len(sink.patches) == 3
    last = json.loads(sink.patches[-1]["progress.json"])
    assert last["completed"] == 5 and last["total"] == 10 and last["step"] == "migrate"
    assert set(last) == {"step", "phase", "total", "completed", "failed", "skipped",
                         "current", "updatedAt"}  # fmt: skip


def test_a_throttled_event_is_written_without_a_further_event() -> None:
    import time

    sink = FakeSink()
    p = Progress(sink=sink)
    p.update(total=1)
    p.update(phase="Validating")
    assert len(sink.patches) == 1
    deadline = time.monotonic() + 3
    while len(sink.patches) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert json.loads(sink.patches[-1]["progress.json"])["phase"] == "Validating"


def test_every_event_is_a_json_log_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    Progress().update(phase="Validating", total=3, current="stg_x__orders")
    record = next(r for r in caplog.records if r.getMessage() == "Progress")
    fields = record.fields  # type: ignore[attr-defined]
    assert fields["event"] == "progress" and fields["current"] == "stg_x__orders"


def test_a_failed_patch_is_logged_and_ignored(caplog: pytest.LogCaptureFixture) -> None:
    p = Progress(sink=FakeSink(fail=True))
    p.update(total=3)
    p.finish(summary_of([]))
    assert any(r.getMessage() == "Progress patch failed" for r in caplog.records)


def test_summary_puts_flagged_first_and_caps_entries() -> None:
    results = [{"object": f"dbo.t{i}", "kind": "table", "status": "verified", "reason": None}
               for i in range(60)]  # fmt: skip
    results.append({"object": "dbo.v", "kind": "view", "status": "verified-by-build",
                    "reason": "no SQL Server"})  # fmt: skip
    results.append({"object": "dbo.p", "kind": "procedure", "status": "flagged",
                    "reason": "SET ROWCOUNT"})  # fmt: skip
    s = summary_of(results)
    assert s["total"] == 62 and len(s["objects"]) == MAX_SUMMARY_ENTRIES
    assert s["objects"][0]["object"] == "dbo.p"
    assert s["objects"][1] == {"object": "dbo.v", "kind": "view", "status": "verified-by-build",
                               "reason": "no SQL Server"}  # fmt: skip
    odd = summary_of([{"object": "dbo.x", "kind": "table", "status": "odd", "reason": None}])
    assert odd["objects"][0]["status"] == "flagged"
    assert s["counts"] == {"verified": 60, "verified-by-build": 1, "flagged": 1}


def test_configmap_sink_merge_patches_only_its_keys() -> None:
    calls = []

    class Api:
        def patch_namespaced_config_map(self, name, namespace, body, **kw):  # noqa: ANN001
            calls.append((name, namespace, body))

    ConfigMapSink("nw-progress", "team-a", api=Api()).patch({"progress.json": "{}"})
    assert calls == [("nw-progress", "team-a", {"data": {"progress.json": "{}"}})]


def test_from_env_uses_the_configmap_only_when_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATAMIGRATE_PROGRESS_CONFIGMAP", raising=False)
    assert Progress.from_env().sink is None
    monkeypatch.setenv("DATAMIGRATE_PROGRESS_CONFIGMAP", "nw-progress")
    monkeypatch.setenv("DATAMIGRATE_NAMESPACE", "team-a")
    sink = Progress.from_env().sink
    assert isinstance(sink, ConfigMapSink) and (sink.name, sink.namespace) == (
        "nw-progress", "team-a")  # fmt: skip


def test_nothing_is_reported_before_the_total_is_known(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    sink = FakeSink()
    p = Progress(sink=sink)
    p.update(phase="Generating", current=None)
    assert sink.patches == [] and not [r for r in caplog.records if r.getMessage() == "Progress"]
    p.update(total=4)
    first = json.loads(sink.patches[0]["progress.json"])
    assert (first["phase"], first["total"], first["completed"]) == ("Generating", 4, 0)


def test_settled_objects_move_between_categories_but_are_never_unsettled() -> None:
    p = Progress(total=3)
    p.settle({"a": "completed", "b": "skipped"})
    assert (p.completed, p.failed, p.skipped) == (1, 0, 1)
    p.settle({"b": "completed"}, current="m_b")  # repaired: b moves, the sum stays
    assert (p.completed, p.failed, p.skipped, p.current) == (2, 0, 0, "m_b")
    p.settle({"c": "failed"})
    assert (p.completed, p.failed, p.skipped) == (2, 1, 0)
    with pytest.raises(ValueError, match="unknown progress categories"):
        p.settle({"d": "verified"})
