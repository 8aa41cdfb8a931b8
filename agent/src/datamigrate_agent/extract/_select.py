"""Which objects an extraction keeps: ``--schema``, ``--include`` and ``--exclude`` globs.

Patterns are shell globs (``*``, ``?``, ``[...]``) matched case-insensitively, as SQL Server
compares names, against ``schema.name``. A pattern without a dot also matches the bare name in
any schema, so ``--include 'Order*'`` works without a schema. Exclude wins over include.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from datamigrate_agent.metadata import MetadataDocument

__all__ = ["Selection", "filter_document"]


@dataclass(frozen=True)
class Selection:
    """The user's object selection; empty means everything."""

    schemas: Sequence[str] = field(default_factory=tuple)
    include: Sequence[str] = field(default_factory=tuple)
    exclude: Sequence[str] = field(default_factory=tuple)

    def keeps(self, schema: str, name: str) -> bool:
        """True when ``schema.name`` is selected."""
        if self.schemas and schema.lower() not in {s.lower() for s in self.schemas}:
            return False
        if self.include and not any(_matches(p, schema, name) for p in self.include):
            return False
        return not any(_matches(p, schema, name) for p in self.exclude)

    @property
    def is_everything(self) -> bool:
        """True when nothing is filtered."""
        return not (self.schemas or self.include or self.exclude)


def _matches(pattern: str, schema: str, name: str) -> bool:
    pattern = pattern.lower()
    if fnmatchcase(f"{schema}.{name}".lower(), pattern):
        return True
    return "." not in pattern and fnmatchcase(name.lower(), pattern)


def filter_document(doc: MetadataDocument, selection: Selection) -> MetadataDocument:
    """A copy of ``doc`` with only the selected objects (triggers follow their table)."""
    if selection.is_everything:
        return doc
    keep = selection.keeps
    tables = [t for t in doc.tables if keep(t.schema_, t.name)]
    kept_tables = {t.qualified_name.lower() for t in tables}
    return doc.model_copy(
        update={
            "tables": tables,
            "views": [v for v in doc.views if keep(v.schema_, v.name)],
            "procedures": [p for p in doc.procedures if keep(p.schema_, p.name)],
            "functions": [f for f in doc.functions if keep(f.schema_, f.name)],
            "triggers": [
                t for t in doc.triggers if f"{t.schema_}.{t.table}".lower() in kept_tables
            ],
        }
    )
