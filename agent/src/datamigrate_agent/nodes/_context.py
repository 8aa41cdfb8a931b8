"""What nodes get beside the state: things that cannot be checkpointed."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from datamigrate_agent.config import MigrateConfig
from datamigrate_agent.metadata import MetadataDocument, load_metadata
from datamigrate_agent.progress import Progress

__all__ = ["Context"]


@dataclass
class Context:
    """Run-time context of one ``migrate`` invocation (LangGraph ``context_schema``)."""

    config: MigrateConfig
    progress: Progress = field(default_factory=Progress)
    #: A LangChain chat model, or None when no provider is configured.
    chat: Any = None
    #: Names of nodes executed by this process, in order (for logs and tests).
    executed: list[str] = field(default_factory=list)

    @cached_property
    def metadata(self) -> MetadataDocument:
        """The validated metadata document (read once per process)."""
        return load_metadata(self.config.metadata_path)
