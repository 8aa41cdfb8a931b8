"""Constructs with no faithful translation: raise ``TranslationError`` with a precise reason."""

from __future__ import annotations

import re

from sqlglot import exp

from datamigrate_agent.translate._context import Context
from datamigrate_agent.translate.errors import TranslationError

__all__ = ["transform"]

#: T-SQL functions whose behaviour has no counterpart on any target.
_UNSUPPORTED_FUNCS = {
    "OPENJSON": "OPENJSON shreds JSON into rows with SQL Server's own path rules",
    "OPENXML": "OPENXML reads an XML document handle",
    "OPENQUERY": "OPENQUERY runs a query on a linked server",
    "OPENROWSET": "OPENROWSET reads an external data source",
    "NEWSEQUENTIALID": "NEWSEQUENTIALID depends on the server's MAC address and ordering",
    "CONTAINSTABLE": "full-text search has no target equivalent",
    "FREETEXTTABLE": "full-text search has no target equivalent",
}
#: Functions that read the error a CATCH block caught. TRY ... CATCH is refused as a whole, so
#: any call the translator sees is outside one (where SQL Server returns NULL).
_ERROR_FUNCS = {"ERROR_MESSAGE", "ERROR_NUMBER", "ERROR_LINE", "ERROR_SEVERITY", "ERROR_STATE",
                "ERROR_PROCEDURE"}  # fmt: skip
#: XML data type methods (``col.nodes('/x')``, ``.value(...)``) parse as dotted calls.
_XML_METHODS = {"NODES", "VALUE", "QUERY", "EXIST", "MODIFY"}


def transform(tree: exp.Expression, ctx: Context) -> exp.Expression:
    """Reject procedures, XML methods, OPENJSON, FOR XML and ERROR_MESSAGE() and its kin."""
    kind = str(tree.args.get("kind") or "").upper()
    rowcount = any(_is_rowcount(n) for n in tree.find_all(exp.Set))
    if isinstance(tree, exp.Command) and str(tree.this).upper() in {"CREATE", "ALTER"}:
        text = str(tree.expression or "")
        words = text.split()
        kind = {"PROC": "PROCEDURE"}.get(words[0].upper(), words[0].upper()) if words else ""
        rowcount = bool(re.search(r"\bSET\s+ROWCOUNT\b", text, re.I))
    if kind in {"PROCEDURE", "FUNCTION", "TRIGGER"} and isinstance(tree, (exp.Create, exp.Command)):
        reason = "procedures, functions and triggers have no direct equivalent"
        if kind == "PROCEDURE":
            reason += "; the migrate step turns one-result-set procedures into models"
        if rowcount:
            reason += "; this one uses SET ROWCOUNT, which limits every later statement"
        raise TranslationError(f"CREATE {kind}: {reason}")
    for node in tree.find_all(exp.Set):
        if _is_rowcount(node) and tree is not node:
            raise TranslationError(
                "SET ROWCOUNT limits every later statement of the procedure; rewrite it as "
                "TOP on the statements it is meant to limit"
            )
    if isinstance(tree, (exp.Declare, exp.IfBlock, exp.WhileBlock)) or tree.find(exp.Parameter):
        what = (
            "IF/WHILE control flow"
            if isinstance(tree, (exp.IfBlock, exp.WhileBlock))
            else "T-SQL variables (DECLARE, @name)"
        )
        raise TranslationError(
            f"{what} only exist inside SQL Server batches; no {ctx.dialect} statement carries them"
        )
    for node in tree.walk():
        _refuse_call(node, ctx)
    if any(str(f.args.get("kind", "")).upper() == "XML" for f in tree.find_all(exp.ForClause)):
        raise TranslationError("FOR XML builds XML text; rewrite with STRING_AGG by hand")
    return tree


def _refuse_call(node: exp.Expression, ctx: Context) -> None:
    """Raise for a call of a function or XML method no target has."""
    if isinstance(node, exp.Anonymous):
        name = node.name.upper()
    elif isinstance(node, exp.Dot):
        name = _dot_method(node)
    else:
        name = node.key.upper()
    if isinstance(node, exp.Anonymous) and name in _ERROR_FUNCS:
        raise TranslationError(
            f"{name}() reads the error a T-SQL CATCH block caught (NULL outside one); "
            f"{ctx.dialect} has no such function: handle the error where the statement is "
            "run (the caller or the orchestrator) and drop the call"
        )
    if name in _UNSUPPORTED_FUNCS:
        raise TranslationError(f"{name} is not translatable: {_UNSUPPORTED_FUNCS[name]}")
    if isinstance(node, exp.Dot) and name in _XML_METHODS:
        raise TranslationError(
            f"XML method .{name.lower()}() (XQuery over an xml column) has no "
            f"{ctx.dialect} equivalent; needs manual work"
        )


def _is_rowcount(node: exp.Set) -> bool:
    return any("ROWCOUNT" in item.sql("tsql").upper() for item in node.expressions)


def _dot_method(node: exp.Dot) -> str:
    expr = node.expression
    return expr.name.upper() if isinstance(expr, (exp.Anonymous, exp.Func)) else ""
