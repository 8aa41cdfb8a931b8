"""Validating progress during dbt build: per model as nodes finish, throttled, never back."""

from __future__ import annotations

from datamigrate_agent.nodes.test import BuildProgress, settled_so_far
from datamigrate_agent.progress import Progress


class Clock:
    def __init__(self) -> None:
        self.now = 10.0

    def __call__(self) -> float:
        return self.now


def _plan(n: int) -> dict:
    return {f"dbo.t{i}": {"model": f"stg_x__t{i}"} for i in range(n)}


def _recording(total: int) -> tuple[Progress, list[tuple[int, int, int]]]:
    seen: list[tuple[int, int, int]] = []
    progress = Progress(total=total)
    settle = progress.settle

    def recording_settle(categories: dict[str, str], **changes: object) -> None:
        settle(categories, **changes)
        seen.append((progress.completed, progress.failed, progress.skipped))

    progress.settle = recording_settle  # type: ignore[method-assign]
    return progress, seen


def test_models_are_reported_as_they_finish_at_most_every_half_second() -> None:
    clock = Clock()
    progress, seen = _recording(1000)
    reporter = BuildProgress(progress, _plan(1000), clock=clock)
    for i in range(1000):
        clock.now += 0.01  # 1,000 models in 10 s
        reporter(f"model.x.stg_x__t{i}", "success" if i % 100 else "error")
        reporter(f"test.x.not_null_stg_x__t{i}_id.abc", "pass")
    assert 18 <= len(seen) <= 20, len(seen)
    positions = [sum(s) for s in seen]
    assert positions == sorted(positions) and positions[0] > 0
    assert seen[-1][0] < 1000  # the last models wait for the round's final settle


def test_a_pod_resumed_at_a_later_round_starts_from_the_last_build() -> None:
    state = {
        "objects": [{"key": k} for k in ("dbo.a", "dbo.b", "dbo.f", "dbo.p")],
        "plan": {"dbo.a": {"model": "m_a"}, "dbo.b": {"model": "m_b"},
                 "dbo.p": {"model": "m_p"}},
        "outcomes": {"dbo.f": {"status": "flagged"}, "dbo.p": {"status": "flagged"}},
        "build": {"models": {"m_a": {"status": "success"}, "m_b": {"status": "error"}}},
    }  # fmt: skip
    assert settled_so_far(state) == {"dbo.a": "completed", "dbo.b": "skipped",
                                     "dbo.f": "skipped", "dbo.p": "skipped"}  # fmt: skip
