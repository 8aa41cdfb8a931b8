"""What every transform gets: the target, the options, the known schema."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlglot import exp

from datamigrate_agent.translate._schema import Schema
from datamigrate_agent.translate._typing import infer
from datamigrate_agent.translate.targets import Target

__all__ = ["Context", "Options", "ResolveTable", "SkipStatement"]


class SkipStatement(Exception):  # noqa: N818 - a signal, not an error
    """Raised by a transform when the statement has no meaning on the target (with why)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


#: ``resolve_table(schema, name)`` -> replacement text (for example dbt jinja) or None.
ResolveTable = Callable[[str, str], "str | None"]


@dataclass(frozen=True, kw_only=True)
class Options:
    """Source settings whose behaviour the translation reproduces.

    Attributes:
        datefirst: ``SET DATEFIRST`` (7 = Sunday, the us_english default); drives
            ``DATEPART(weekday)`` and ``DATEPART(week)``. ``DATEDIFF(week)`` ignores it, as in
            SQL Server.
        case_insensitive: the source collation is case-insensitive (the default
            SQL_Latin1_General_CP1_CI_AS): string comparisons, LIKE, CHARINDEX, DISTINCT and
            GROUP BY on strings ignore case.
        pad_space: ``=`` and ``<>`` on strings ignore trailing spaces (always true in SQL
            Server; switch off only for sources known to hold no trailing spaces).
    """

    datefirst: int = 7
    case_insensitive: bool = True
    pad_space: bool = True


@dataclass
class Context:
    """The state one statement's transforms share."""

    target: Target
    options: Options
    schema: Schema
    resolve_table: ResolveTable | None = None
    #: placeholder identifier -> text substituted after generation (``{{ ref(...) }}``).
    placeholders: dict[str, str] = field(default_factory=dict)
    #: extra statements to emit before / after the translated one (sequences, schemas).
    before: list[str] = field(default_factory=list)
    after: list[str] = field(default_factory=list)
    #: statements to run once the whole script has run (foreign keys after the data);
    #: only collected when translating a script.
    deferred: list[exp.Expression] = field(default_factory=list)
    script: bool = False
    #: ``SET ROWCOUNT`` in force (0 = none): later SELECTs return at most this many rows.
    rowcount: int = 0

    @property
    def dialect(self) -> str:
        """The sqlglot dialect name to generate."""
        return self.target.NAME

    def type_of(self, node: exp.Expression | None) -> exp.DataType | None:
        """The inferred T-SQL type of ``node`` (None when unknown)."""
        return infer(node, self.schema)
