"""Text clean-up for what SSMS scripts and sqlglot's T-SQL parser does not read.

Only storage and index options with no meaning outside SQL Server are removed: ``CLUSTERED``,
``NONCLUSTERED``, ``ROWGUIDCOL``, ``ON [PRIMARY]``, ``TEXTIMAGE_ON``, index ``WITH (...)``
options, ``NOT FOR REPLICATION``, ``WITH NOCHECK``/``WITH CHECK``. Words inside string
literals, quoted identifiers and comments are left as they are.
"""

from __future__ import annotations

import re

__all__ = ["clean"]

_OPTION_WORDS = r"PAD_INDEX|STATISTICS_NORECOMPUTE|IGNORE_DUP_KEY|ALLOW_ROW_LOCKS|" \
    r"ALLOW_PAGE_LOCKS|FILLFACTOR|OPTIMIZE_FOR_SEQUENTIAL_KEY|DATA_COMPRESSION|SORT_IN_TEMPDB|" \
    r"ONLINE|DROP_EXISTING"
_PATTERNS = [
    (re.compile(r"\bNONCLUSTERED\b|\bCLUSTERED\b|\bROWGUIDCOL\b", re.I), ""),
    (re.compile(r"\bNOT\s+FOR\s+REPLICATION\b", re.I), ""),
    (re.compile(rf"\bWITH\s*\(\s*(?:{_OPTION_WORDS})\b[^)]*\)", re.I), ""),
    (re.compile(r"\bTEXTIMAGE_ON\s+(\[[^\]]+\]|\w+)", re.I), ""),
    (re.compile(r"\bON\s+(\[PRIMARY\]|PRIMARY\b)", re.I), ""),
    (re.compile(r"\bWITH\s+(NOCHECK|CHECK)\s+(?=ADD\b)", re.I), ""),
]
_FILEGROUP = re.compile(r"\b(?:TEXTIMAGE_ON|ON)\s+\[PRIMARY\]", re.I)
_DDL = re.compile(r"^\s*(CREATE|ALTER)\s+(TABLE|UNIQUE|INDEX|CLUSTERED|NONCLUSTERED)\b", re.I)
#: Strings, quoted identifiers and comments: kept verbatim while the patterns run elsewhere.
_OPAQUE = re.compile(r"N?'(?:[^']|'')*'|\[[^\]]*\]|\"[^\"]*\"|--[^\n]*|/\*.*?\*/", re.S)


def clean(sql: str) -> str:
    """Remove SQL Server storage options from CREATE/ALTER TABLE and CREATE INDEX text."""
    if not _DDL.match(sql):
        return sql
    # Filegroup names are bracketed identifiers, so they go before the opaque-token scan.
    sql = _FILEGROUP.sub("", sql)
    out, last = [], 0
    for match in _OPAQUE.finditer(sql):
        out.append(_strip(sql[last : match.start()]))
        out.append(match.group(0))
        last = match.end()
    out.append(_strip(sql[last:]))
    return "".join(out)


def _strip(code: str) -> str:
    for pattern, replacement in _PATTERNS:
        code = pattern.sub(replacement, code)
    return code
