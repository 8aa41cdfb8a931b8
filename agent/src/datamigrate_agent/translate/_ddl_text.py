"""Text clean-up for what SSMS scripts hold and sqlglot's T-SQL parser does not read.

Money literals (``$19.99``) are read as ``CAST(19.99 AS MONEY)``.

Only storage and index options with no meaning outside SQL Server are removed: ``CLUSTERED``,
``NONCLUSTERED``, ``ROWGUIDCOL``, ``ON [PRIMARY]``, ``TEXTIMAGE_ON``, index ``WITH (...)``
options, ``NOT FOR REPLICATION``, ``WITH NOCHECK``/``WITH CHECK``. Words inside string
literals, quoted identifiers and comments are left as they are.
"""

from __future__ import annotations

import re

__all__ = ["clean"]

_OPTION_WORDS = (
    r"PAD_INDEX|STATISTICS_NORECOMPUTE|IGNORE_DUP_KEY|ALLOW_ROW_LOCKS|"
    r"ALLOW_PAGE_LOCKS|FILLFACTOR|OPTIMIZE_FOR_SEQUENTIAL_KEY|DATA_COMPRESSION|SORT_IN_TEMPDB|"
    r"ONLINE|DROP_EXISTING"
)
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
    """Remove SQL Server storage options from DDL; read ``$12.50`` money literals as numbers."""
    ddl = bool(_DDL.match(sql))
    if ddl:
        # Filegroup names are bracketed identifiers, so they go before the opaque-token scan.
        sql = _FILEGROUP.sub("", sql)
    out, last = [], 0
    for match in _OPAQUE.finditer(sql):
        out.append(_strip(sql[last : match.start()], ddl))
        out.append(match.group(0))
        last = match.end()
    out.append(_strip(sql[last:], ddl))
    return "".join(out)


#: A money literal (``$19.99``): T-SQL's currency prefix on a number constant.
_MONEY = re.compile(r"(?<![\w@$])\$\s*(-?\d+(?:\.\d+)?)\b")


def _strip(code: str, ddl: bool) -> str:
    code = _MONEY.sub(r"CAST(\1 AS MONEY)", code)
    if ddl:
        for pattern, replacement in _PATTERNS:
            code = pattern.sub(replacement, code)
    return code
