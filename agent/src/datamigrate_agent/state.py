"""The migrate graph's state: what each node reads and writes, kept small and JSON-safe.

The state is checkpointed after every node (SQLite in the workspace), so a restarted pod
resumes at the last finished node. Large things stay out of it: sample rows live in the
extract step's files, the generated project lives in ``<workspace>/project``.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

__all__ = [
    "InputState",
    "State",
    "ObjectInfo",
    "PlannedModel",
    "Outcome",
    "ObjectKind",
    "Status",
]

ObjectKind = Literal["table", "view", "procedure", "function"]
#: ``verified``: rows compared with the source; ``verified-by-build``: built and tested, but
#: nothing could run the original to compare with; ``flagged``: needs a person, see reason;
#: ``failed``: the step could not finish this object (an internal error, kept per object).
Status = Literal["pending", "generated", "verified", "verified-by-build", "flagged", "failed"]


class ObjectInfo(TypedDict):
    """One source object as the assess node classified it."""

    key: str
    """``schema.name`` of the source object, lower case: the object's identity in the state."""
    name: str
    """``schema.name`` as the source spells it."""
    kind: ObjectKind
    complexity: Literal["low", "medium", "high"]
    """A rough effort class from size and the constructs used."""
    depends_on: list[str]
    """Keys of the objects this one reads (only objects that exist in the metadata)."""
    order: int
    """Position in dependency order (0 first); objects on a cycle come last."""
    notes: list[str]
    """Why the complexity is what it is, and any cycle it is on."""


class PlannedModel(TypedDict):
    """The dbt model planned for one object."""

    model: str
    """dbt model name (``stg_<source>__<table>``, ``int_...``, ``<source>__<view>``)."""
    layer: Literal["staging", "intermediate", "marts"]
    source: str
    """dbt source name of the object's schema."""
    materialized: str
    path: str
    """Path of the model's SQL file, relative to the project folder."""
    refs: list[str]
    """Models this one selects from through ``ref()``."""
    sources: list[str]
    """``source.table`` pairs this one selects from through ``source()``."""


class Outcome(TypedDict, total=False):
    """Where one object stands."""

    status: Status
    reason: str | None
    attempts: int
    """Repair attempts spent on this object."""
    fixes: list[str]
    """What the repair step changed, in order."""
    checks: dict[str, Any]
    """Evaluation figures (row counts, checksums)."""
    note: str
    """What a person should know about a converted object (e.g. parameters became vars)."""


class InputState(TypedDict):
    """What ``migrate`` passes in."""

    config: dict[str, Any]
    """``MigrateConfig.to_state()``: options of this run."""
    fingerprint: str
    """Hash of the options and of metadata.json: a changed input starts a new run."""


class State(InputState, total=False):
    """The whole state."""

    objects: list[ObjectInfo]
    """Every source object, in dependency order (assess)."""
    cycles: list[list[str]]
    """Dependency cycles found (keys), each flagged."""
    plan: dict[str, PlannedModel]
    """Object key to its model (plan); objects without a model are absent."""
    sources: dict[str, str]
    """dbt source name to the SQL Server schema it stands for."""
    sql: dict[str, str]
    """Object key to the SQL body of a view or procedure model (generate, repair)."""
    safe_casts: list[str]
    """Keys of staging models switched to the cast fallback by repair."""
    outcomes: dict[str, Outcome]
    """Object key to its outcome so far."""
    build: dict[str, Any]
    """The last dbt run: per model status and message, failing tests, timings (test)."""
    repaired: list[str]
    """Keys of the models the last repair round changed (they need another build)."""
    llm_budget: dict[str, int]
    """What the LLM may still spend: ``calls`` and ``tokens``."""
    loaded: bool
    """Whether the raw source tables are in the engine already."""
    load: dict[str, Any]
    """Table key to the number of raw rows loaded, or ``{"error": ...}``."""
    report: dict[str, str]
    """Paths of results.json and report.md (report)."""
