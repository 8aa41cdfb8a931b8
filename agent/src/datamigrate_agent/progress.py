"""Progress events: JSON log lines always, and the progress ConfigMap when running in a cluster.

The operator creates ``<migration>-progress`` and lets the step's ServiceAccount patch only
that ConfigMap. Keys: ``progress.json`` (the running counts) and, at the end of the migrate
step, ``summary.json`` (counts plus at most 50 per-object entries). A failed patch is logged
and ignored: progress is informative, never a reason to fail a step.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["Progress", "ConfigMapSink", "summary_of", "CATEGORIES", "MAX_SUMMARY_ENTRIES"]

log = logging.getLogger(__name__)

#: At most this many seconds between two ConfigMap patches (about 2 patches a second).
MIN_PATCH_INTERVAL = 0.5
MAX_SUMMARY_ENTRIES = 50


class _Sink(Protocol):
    def patch(self, data: dict[str, str]) -> None: ...


class ConfigMapSink:
    """Patches keys of one ConfigMap through the in-cluster service account."""

    def __init__(self, name: str, namespace: str, api: Any | None = None) -> None:
        self.name = name
        self.namespace = namespace
        self._api = api

    def _client(self) -> Any:
        if self._api is None:
            from kubernetes import client, config

            config.load_incluster_config()
            self._api = client.CoreV1Api()
        return self._api

    def patch(self, data: dict[str, str]) -> None:
        """Merge-patch ``data`` into the ConfigMap (other keys are left as they are)."""
        self._client().patch_namespaced_config_map(
            self.name, self.namespace, {"data": data}, _request_timeout=5
        )


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


#: What an object counts as while it is validated: ``completed``, ``failed`` or ``skipped``.
CATEGORIES = ("completed", "failed", "skipped")


@dataclass
class Progress:
    """Counts of one step and where it is; each change is one event.

    Nothing is reported while ``total`` is unknown (None): a ``0/0`` would say nothing true.
    """

    step: str = "migrate"
    phase: str = "Generating"
    total: int | None = None
    completed: int = 0
    failed: int = 0
    skipped: int = 0
    current: str | None = None
    sink: _Sink | None = None
    clock: Callable[[], float] = time.monotonic
    _last_patch: float = field(default=float("-inf"), repr=False)
    _pending: bool = field(default=False, repr=False)
    _timer: threading.Timer | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    #: Object key -> category, for ``settle``.
    _settled: dict[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_env(cls, step: str = "migrate") -> Progress:
        """A reporter with a ConfigMap sink when ``DATAMIGRATE_PROGRESS_CONFIGMAP`` is set."""
        name = os.environ.get("DATAMIGRATE_PROGRESS_CONFIGMAP")
        namespace = os.environ.get("DATAMIGRATE_NAMESPACE", "default")
        return cls(step=step, sink=ConfigMapSink(name, namespace) if name else None)

    def document(self) -> dict[str, Any]:
        """The ``progress.json`` document."""
        return {
            "step": self.step,
            "phase": self.phase,
            "total": self.total,
            "completed": self.completed,
            "failed": self.failed,
            "skipped": self.skipped,
            "current": self.current,
            "updatedAt": _now(),
        }

    def update(self, **changes: Any) -> None:
        """Apply counter changes, log the event and patch the ConfigMap (throttled)."""
        for key, value in changes.items():
            if key not in {"phase", "total", "completed", "failed", "skipped", "current"}:
                raise TypeError(f"unknown progress field {key}")
            setattr(self, key, value)
        if self.total is None:
            return
        doc = self.document()
        log.info("Progress", extra={"fields": {"event": "progress", **doc}})
        self._pending = True
        wait = MIN_PATCH_INTERVAL - (self.clock() - self._last_patch)
        if wait <= 0:
            self.flush()
        elif self.sink is not None and self._timer is None:
            # Throttled: write the latest counts when the interval is over, even if no further
            # event comes (a dbt build can run for a while without one).
            self._timer = threading.Timer(wait, self._flush_later)
            self._timer.daemon = True
            self._timer.start()

    def settle(self, categories: dict[str, str], **changes: Any) -> None:
        """Put objects (by key) in a category; the counts are those of every object settled.

        Objects are never unsettled, so ``completed + failed + skipped`` never goes down; an
        object may move between categories (a model that fails a build, then is repaired).
        """
        unknown = set(categories.values()) - set(CATEGORIES)
        if unknown:
            raise ValueError(f"unknown progress categories {sorted(unknown)}")
        self._settled.update(categories)
        counts = dict.fromkeys(CATEGORIES, 0)
        for category in self._settled.values():
            counts[category] += 1
        self.update(**counts, **changes)

    def _flush_later(self) -> None:
        self._timer = None
        self.flush()

    def flush(self) -> None:
        """Write the latest counts now, if any are not written yet."""
        with self._lock:
            if self.sink is None or not self._pending:
                return
            self._pending = False
            self._send({"progress.json": json.dumps(self.document())})

    def finish(self, summary: dict[str, Any]) -> None:
        """Write the final counts and ``summary.json``, ignoring the throttle."""
        log.info("Summary", extra={"fields": {"event": "summary", **summary}})
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.sink is None:
            return
        with self._lock:
            self._pending = False
            self._send(
                {
                    "progress.json": json.dumps(self.document()),
                    "summary.json": json.dumps(summary),
                }
            )

    def _send(self, data: dict[str, str]) -> None:
        assert self.sink is not None
        self._last_patch = self.clock()
        try:
            self.sink.patch(data)
        except Exception as e:  # noqa: BLE001 - progress must never fail the step
            log.warning(
                "Progress patch failed", extra={"fields": {"error": f"{type(e).__name__}: {e}"}}
            )


def summary_of(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The ``summary.json`` document: counts and the first 50 per-object entries.

    Flagged and failed objects come first, so a truncated list still shows what needs a look.
    """
    counts: dict[str, int] = {}
    for r in results:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    order = {"failed": 0, "flagged": 1, "verified-by-build": 2, "verified": 3}
    ranked = sorted(results, key=lambda r: order.get(r["status"], 9))
    entries = [
        {
            "object": r["object"],
            "kind": r["kind"],
            "status": _contract_status(r["status"]),
            "reason": r.get("reason"),
        }
        for r in ranked[:MAX_SUMMARY_ENTRIES]
    ]
    return {"total": len(results), "counts": counts, "objects": entries}


def _contract_status(status: str) -> str:
    # The summary's contract knows verified|verified-by-build|flagged|failed: verified-by-build
    # (the model builds and its tests pass, but nothing could compare its rows with the source)
    # is kept apart from both verified and flagged. Anything else is flagged.
    known = {"verified", "verified-by-build", "flagged", "failed"}
    return status if status in known else "flagged"
