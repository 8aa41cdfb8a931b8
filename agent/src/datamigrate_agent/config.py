"""Settings of the ``migrate`` step: its command-line options plus what comes from the env."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["TARGETS", "PROVIDERS", "MigrateConfig"]

#: Target dialects the generator writes profiles and SQL for.
TARGETS = ("duckdb", "postgres", "snowflake", "bigquery", "databricks", "redshift")
#: Targets that run for real on this machine (the others are checked by ``dbt parse``).
RUNNABLE_TARGETS = ("duckdb", "postgres")
PROVIDERS = ("none", "anthropic", "openai", "openai-compatible")


@dataclass(frozen=True, kw_only=True)
class MigrateConfig:
    """Everything the migrate graph needs, read once at start-up.

    Secrets (the LLM key) are never stored here: ``llm.py`` reads them from env when it builds
    the chat model, so they never reach the checkpoint, the logs or the generated files.
    """

    workspace: Path
    target: str = "duckdb"
    project_name: str = "migration"
    schema: str = "analytics"
    materialization: str = "view"
    validate: bool = True
    provider: str = "none"
    model: str | None = None
    base_url: str | None = None
    max_repair_attempts: int = 2
    #: Token budget for all LLM calls of one migration (prompt plus completion).
    llm_token_budget: int = 200_000
    #: Call budget for all LLM calls of one migration.
    llm_call_budget: int = 50
    #: Migration name: the checkpoint thread id.
    migration: str = field(default_factory=lambda: os.environ.get("DATAMIGRATE_MIGRATION", ""))

    @property
    def metadata_path(self) -> Path:
        """The extract step's output."""
        return self.workspace / "metadata.json"

    @property
    def project_dir(self) -> Path:
        """The generated dbt project."""
        return self.workspace / "project"

    @property
    def checkpoint_path(self) -> Path:
        """LangGraph's SQLite checkpoints."""
        return self.workspace / "state" / "checkpoints.sqlite"

    @property
    def thread_id(self) -> str:
        """Checkpoint thread: the migration's name, or the project name when run by hand."""
        return self.migration or self.project_name

    def to_state(self) -> dict[str, Any]:
        """The JSON-safe form kept in the graph state."""
        data = asdict(self)
        data["workspace"] = str(self.workspace)
        return data

    @classmethod
    def from_state(cls, data: dict[str, Any]) -> MigrateConfig:
        """Rebuild from ``to_state``'s output."""
        return cls(**{**data, "workspace": Path(data["workspace"])})
