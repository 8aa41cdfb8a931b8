"""Column types known to the translator: from the caller, and from tables a script creates."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlglot import exp

__all__ = ["Identity", "Schema", "table_key"]


#: System alias types (``sys.types`` rows with a base type).
_SYSTEM_ALIASES = {"sysname": "nvarchar(128)"}


def _column_type(text: str) -> exp.DataType:
    """``"nvarchar(40)"`` or ``"nvarchar(40) COLLATE Latin1_General_CS_AS"`` as a type node;
    a collation marks the type case-sensitive or not (``meta["case_sensitive"]``)."""
    from datamigrate_agent.translate._typing import collation_is_cs

    parts = re.split(r"\s+collate\s+", text.strip(), maxsplit=1, flags=re.I)
    base, collation = parts[0], parts[1] if len(parts) > 1 else ""
    dtype = exp.DataType.build(_SYSTEM_ALIASES.get(base.lower(), base), dialect="tsql", udt=True)
    if collation:
        dtype.meta["case_sensitive"] = collation_is_cs(collation)
    return dtype


def table_key(table: exp.Table) -> tuple[str, str]:
    """Return ``(schema, name)`` in lower case; the schema is '' when not written."""
    return (table.db or "").lower(), table.name.lower()


@dataclass
class Identity:
    """An IDENTITY column and the highest value seen, for moving its sequence on."""

    column: str
    seed: int
    increment: int
    sequence: str
    generation: int = 0
    highest: int | None = None


@dataclass
class Schema:
    """Tables -> ordered ``{column: T-SQL DataType}``, plus identity columns and alias types."""

    tables: dict[tuple[str, str], dict[str, exp.DataType]] = field(default_factory=dict)
    identities: dict[tuple[str, str], Identity] = field(default_factory=dict)
    #: ``sp_addtype`` alias types: lower-case name -> base type text.
    aliases: dict[str, str] = field(default_factory=dict)
    #: Keys of ``tables`` whose columns still hold type text, parsed on first lookup: a view
    #: reads a few tables of a catalogue that may have thousands.
    untyped: set[tuple[str, str]] = field(default_factory=set)

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Mapping[str, str]] | None) -> Schema:
        """Build from ``{"dbo.person": {"given_name": "nvarchar(40)"}}`` style input.

        A type may carry its column's collation: ``"nvarchar(40) COLLATE Latin1_General_CS_AS"``
        makes comparisons on that column case-sensitive whatever ``Options`` says.
        """
        schema = cls()
        for name, columns in (mapping or {}).items():
            db, _, table = name.rpartition(".")
            key = (db.strip('[]"').lower(), table.strip('[]"').lower())
            schema.tables[key] = {c.lower(): t for c, t in columns.items()}  # type: ignore[misc]
            schema.untyped.add(key)
        return schema

    def add(self, key: tuple[str, str], columns: dict[str, exp.DataType]) -> None:
        """Record a table's columns (lower-case names)."""
        db, name = key[0].lower(), key[1].lower()
        self.untyped.discard((db, name))
        self.tables[(db, name)] = {c.lower(): t for c, t in columns.items()}

    def columns(self, table: exp.Table) -> dict[str, exp.DataType] | None:
        """Return the columns of ``table``; an unqualified or ``dbo`` name matches either."""
        db, name = table_key(table)
        for key in ((db, name), ("", name), ("dbo", name)):
            if key in self.tables:
                return self._typed(key)
        if not db:
            for key in self.tables:
                if key[1] == name:
                    return self._typed(key)
        return None

    def _typed(self, key: tuple[str, str]) -> dict[str, exp.DataType]:
        if key in self.untyped:
            self.untyped.discard(key)
            # Assigning to the same key keeps its place, so the first match stays the first.
            text: Mapping[str, str] = self.tables[key]  # type: ignore[assignment]
            self.tables[key] = {c: _column_type(t) for c, t in text.items()}
        return self.tables[key]

    def identity(self, table: exp.Table) -> Identity | None:
        """Return the identity column of ``table``, if the script declared one."""
        db, name = table_key(table)
        return (
            self.identities.get((db, name))
            or self.identities.get(("", name))
            or (self.identities.get(("dbo", name)))
        )
