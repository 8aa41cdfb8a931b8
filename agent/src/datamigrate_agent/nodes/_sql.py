"""Thin adapter over the ``translate`` package: column types and view/procedure bodies."""

from __future__ import annotations

from collections.abc import Callable

from datamigrate_agent.metadata import Column, MetadataDocument

__all__ = ["TranslationFailed", "column_type", "unmapped_type", "translate_select", "type_schema"]


class TranslationFailed(Exception):
    """The translator refused a body; the message is its reason.

    ``draft`` is the translation when there is one but it cannot build as it is (e.g. it
    reads a table missing from the metadata): the disabled model a person finishes.
    """

    def __init__(self, reason: str, *, draft: str | None = None) -> None:
        super().__init__(reason)
        self.draft = draft


#: The type a column falls back to when the target has no equivalent (and it is flagged).
TEXT_TYPES = {"bigquery": "STRING", "databricks": "STRING"}


def unmapped_type(column: Column, target: str) -> str | None:
    """Why ``column``'s type has no target equivalent, or None when it has one."""
    from datamigrate_agent.translate import target_type

    try:
        target_type(column.data_type, column.max_length, column.precision, column.scale, target)
    except Exception as e:  # noqa: BLE001 - any translator refusal becomes a reason
        return f"column {column.name}: {column.data_type} has no {target} type ({e})"
    return None


def column_type(column: Column, target: str) -> str:
    """The target type of a SQL Server column; text when the target has none (see above)."""
    from datamigrate_agent.translate import target_type

    try:
        return target_type(
            column.data_type, column.max_length, column.precision, column.scale, target
        )
    except Exception:  # noqa: BLE001 - evaluate flags the table through unmapped_type
        return TEXT_TYPES.get(target, "TEXT")


def type_schema(doc: MetadataDocument) -> dict[str, dict[str, str]]:
    """``{"schema.table": {column: sql_server_type}}`` for the translator's typing."""
    out: dict[str, dict[str, str]] = {}
    for table in doc.tables:
        out[table.qualified_name] = {c.name: _type_text(c) for c in table.columns}
    for view in doc.views:
        if view.columns:
            out[view.qualified_name] = {c.name: _type_text(c) for c in view.columns}
    return out


def _type_text(c: Column) -> str:
    if c.max_length is not None:
        return f"{c.data_type}({'max' if c.max_length < 0 else c.max_length})"
    if c.precision is not None and c.data_type in {"decimal", "numeric"}:
        return f"{c.data_type}({c.precision},{c.scale or 0})"
    return c.data_type


def translate_select(
    select_sql: str,
    target: str,
    resolve: Callable[[str | None, str], str | None],
    schema: dict[str, dict[str, str]],
) -> str:
    """One T-SQL SELECT in ``target``'s dialect, its table references replaced by ``resolve``."""
    from datamigrate_agent.translate import translate_query

    try:
        return translate_query(select_sql, target, resolve, schema=schema)
    except Exception as e:  # noqa: BLE001 - the translator's reason is the object's reason
        raise TranslationFailed(" ".join(str(e).split())[:500] or type(e).__name__) from e
