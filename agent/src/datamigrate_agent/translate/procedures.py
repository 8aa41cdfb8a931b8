"""Procedures that return one result set: the query a dbt model can be built from.

A model is one SELECT with no arguments, so a procedure qualifies when it takes no
parameters and its body, once session options (``SET NOCOUNT ON``) and messages (``PRINT``,
``RAISERROR``) are set aside, is a single SELECT (or WITH ... SELECT) that writes nothing.
Anything else raises ``TranslationError`` with the precise reason the object is flagged.
"""

from __future__ import annotations

import re

from datamigrate_agent.translate._control_flow import is_message
from datamigrate_agent.translate.errors import TranslationError
from datamigrate_agent.translate.splitter import split_statements
from datamigrate_agent.translate.transforms.session import skip_reason

__all__ = ["procedure_query"]

_HEADER = re.compile(
    r"^\s*(?:CREATE|ALTER|CREATE\s+OR\s+ALTER)\s+PROC(?:EDURE)?\s+"
    r"((?:\[[^\]]+\]|\"[^\"]+\"|[\w#@$]+)(?:\s*\.\s*(?:\[[^\]]+\]|\"[^\"]+\"|[\w#@$]+))*)"
    r"(.*?)\bAS\b(.*)$",
    re.IGNORECASE | re.DOTALL,
)
_BLOCK = re.compile(r"^\s*BEGIN\b(.*)\bEND\s*;?\s*$", re.IGNORECASE | re.DOTALL)
_WRITES = re.compile(r"^\s*(INSERT|UPDATE|DELETE|MERGE|TRUNCATE|CREATE|ALTER|DROP|EXEC)", re.I)


def _strip_comments(text: str) -> str:
    return re.sub(r"--[^\n]*|/\*.*?\*/", " ", text, flags=re.DOTALL)


def procedure_query(definition: str) -> str:
    """Return the one SELECT of a ``CREATE PROCEDURE`` that returns one result set.

    Args:
        definition: the procedure's T-SQL definition (``sys.sql_modules`` or a script batch).

    Returns:
        The T-SQL text of its SELECT, ready for ``translate_query``.

    Raises:
        TranslationError: parameters, SET ROWCOUNT, several statements, data changes,
            SELECT ... INTO, variables, or no SELECT at all (the reason says which).
    """
    match = _HEADER.match(_strip_comments(definition))
    if match is None:
        raise TranslationError("not a CREATE PROCEDURE definition")
    params, body = match.group(2).strip(), match.group(3).strip()
    if params and params.upper() not in {"WITH RECOMPILE", "WITH ENCRYPTION"}:
        names = ", ".join(re.findall(r"@\w+", params)) or params[:40]
        raise TranslationError(f"procedure takes parameters ({names}); a model takes none")
    block = _BLOCK.match(body)
    statements = split_statements(block.group(1) if block else body)
    for statement in statements:
        if re.match(r"^\s*SET\s+ROWCOUNT\b", statement, re.I):
            raise TranslationError(
                "procedure uses SET ROWCOUNT, which limits every later statement "
                "(the same as TOP on its SELECT); rewrite it with TOP by hand"
            )
    queries = [
        s
        for s in statements
        if not skip_reason(s) and not is_message(s) and s.strip().upper() != "RETURN"
    ]
    if len(queries) != 1:
        raise TranslationError(f"procedure runs {len(queries)} statements; a model is one query")
    query = queries[0]
    if _WRITES.match(query):
        raise TranslationError(f"procedure changes data ({query.split()[0].upper()})")
    if not re.match(r"^\s*(SELECT|WITH)\b", query, re.I):
        raise TranslationError(f"procedure body is {query.split()[0].upper()}, not a query")
    if re.search(r"\bINTO\s+[#\w\[]", query, re.I) and re.match(r"^\s*SELECT", query, re.I):
        raise TranslationError("procedure uses SELECT ... INTO, which creates a table")
    if "@" in re.sub(r"'(?:[^']|'')*'", "", query):
        raise TranslationError("procedure query uses variables")
    return query
