"""Reading view and procedure bodies from their CREATE text, with sqlglot's T-SQL tokenizer.

Comments never survive into what is returned: the text is rebuilt from tokens, so whatever
a comment says cannot reach a model, a prompt or the generated SQL.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlglot.dialects.tsql import TSQL
from sqlglot.errors import TokenError
from sqlglot.tokens import Token, TokenType

__all__ = ["ProcedureShape", "view_select", "procedure_shape", "strip_comments"]

_STARTERS = {
    TokenType.SELECT: "SELECT", TokenType.WITH: "WITH", TokenType.SET: "SET",
    TokenType.INSERT: "INSERT", TokenType.UPDATE: "UPDATE", TokenType.DELETE: "DELETE",
    TokenType.MERGE: "MERGE", TokenType.DECLARE: "DECLARE",
    TokenType.EXECUTE: "EXEC", TokenType.COMMAND: "COMMAND", TokenType.CREATE: "CREATE",
    TokenType.DROP: "DROP", TokenType.ALTER: "ALTER", TokenType.BEGIN: "BEGIN",
    TokenType.TRUNCATE: "TRUNCATE",
}  # fmt: skip
_WORD_STARTERS = {"IF", "WHILE", "PRINT", "RAISERROR", "RETURN", "EXEC", "EXECUTE", "GOTO",
                  "OPEN", "FETCH", "CLOSE", "DEALLOCATE", "WAITFOR", "THROW", "COMMIT",
                  "ROLLBACK"}  # fmt: skip
_SET_OPS = {TokenType.UNION, TokenType.EXCEPT, TokenType.INTERSECT, TokenType.ALL,
            TokenType.DISTINCT, TokenType.L_PAREN}  # fmt: skip
_HARMLESS_SET = {"NOCOUNT", "ANSI_NULLS", "QUOTED_IDENTIFIER", "ANSI_WARNINGS", "ARITHABORT",
                 "ANSI_PADDING", "XACT_ABORT"}  # fmt: skip


def _tokens(text: str) -> list[Token]:
    return TSQL().tokenize(text)


def _join(text: str, tokens: list[Token]) -> str:
    parts: list[str] = []
    for i, tok in enumerate(tokens):
        if i:
            gap = text[tokens[i - 1].end + 1 : tok.start]
            parts.append("\n" if "\n" in gap else (" " if gap else ""))
        parts.append(text[tok.start : tok.end + 1])
    return "".join(parts)


def strip_comments(text: str) -> str:
    """``text`` rebuilt from its tokens: comments gone, layout roughly kept."""
    return _join(text, _tokens(text))


def _after_as(tokens: list[Token]) -> tuple[list[Token], list[Token]]:
    depth = 0
    for i, tok in enumerate(tokens):
        if tok.token_type == TokenType.L_PAREN:
            depth += 1
        elif tok.token_type == TokenType.R_PAREN:
            depth -= 1
        elif tok.token_type == TokenType.ALIAS and depth == 0 and i > 2:
            return tokens[:i], tokens[i + 1 :]
    raise ValueError("no AS after the object's name")


def view_select(definition: str) -> str:
    """The SELECT of a ``CREATE VIEW`` text, without comments.

    Raises:
        ValueError: the text has no ``AS`` or declares a column list (not supported here).
    """
    try:
        tokens = _tokens(definition)
    except TokenError as e:
        raise ValueError(f"view text does not tokenize: {e}") from e
    head, body = _after_as(tokens)
    if any(t.token_type == TokenType.L_PAREN for t in head):
        raise ValueError("the view declares its own column list, which is not converted yet")
    while body and body[-1].token_type == TokenType.SEMICOLON:
        body = body[:-1]
    if len(body) >= 3 and [t.text.upper() for t in body[-3:]] == ["WITH", "CHECK", "OPTION"]:
        body = body[:-3]
    return _join(definition, body)


@dataclass
class ProcedureShape:
    """What a procedure body does; ``select`` is set when it is one SELECT result set."""

    select: str | None
    reasons: list[str] = field(default_factory=list)


def _statements(tokens: list[Token]) -> list[list[Token]]:
    out: list[list[Token]] = []
    depth = 0
    for i, tok in enumerate(tokens):
        kind = tok.token_type
        starts = depth == 0 and (kind in _STARTERS or tok.text.upper() in _WORD_STARTERS)
        if kind == TokenType.WITH and not _opens_cte(tokens[i + 1 : i + 3]):
            starts = False  # WITH ROLLUP, WITH TIES, WITH (NOLOCK)
        if starts and out and _continues(out[-1], tok, tokens[i - 1] if i else None):
            starts = False
        if kind == TokenType.SEMICOLON and depth == 0:
            out.append([])
            continue
        if starts or not out:
            out.append([])
        out[-1].append(tok)
        depth += kind == TokenType.L_PAREN
        depth -= kind == TokenType.R_PAREN
    return [s for s in out if s]


def _opens_cte(after: list[Token]) -> bool:
    names = {TokenType.VAR, TokenType.IDENTIFIER}
    return (
        len(after) == 2
        and after[0].token_type in names
        and after[1].token_type in {TokenType.ALIAS, TokenType.L_PAREN}
    )


def _continues(current: list[Token], tok: Token, prev: Token | None) -> bool:
    if not current:
        return False
    if prev is not None and prev.token_type in _SET_OPS:
        return True
    head = current[0].token_type
    if head == TokenType.WITH and tok.token_type == TokenType.SELECT:
        # A CTE's main SELECT continues its WITH, once.
        return not any(t.token_type == TokenType.SELECT and t is not tok for t in current[1:2])
    if head in {TokenType.UPDATE, TokenType.MERGE} and tok.token_type == TokenType.SET:
        return True
    return head == TokenType.INSERT and tok.token_type == TokenType.SELECT


def _strip_begin_end(tokens: list[Token]) -> list[Token]:
    if len(tokens) >= 2 and tokens[0].token_type == TokenType.BEGIN:
        if tokens[-1].token_type == TokenType.END:
            return tokens[1:-1]
    return tokens


def _reasons_of(stmt: list[Token]) -> list[str]:
    head = stmt[0]
    word = _STARTERS.get(head.token_type) or head.text.upper()
    second = stmt[1].text.upper() if len(stmt) > 1 else ""
    if word == "SET":
        if second in _HARMLESS_SET:
            return []
        if second == "ROWCOUNT":
            return ["SET ROWCOUNT limits the rows of the statements after it (use LIMIT by hand)"]
        return [f"SET {second} changes session state or variables"]
    if word in {"SELECT", "WITH"}:
        texts = [t.text.upper() for t in stmt]
        if len(stmt) > 1 and stmt[1].token_type == TokenType.PARAMETER and "=" in texts[:4]:
            return ["assigns variables with SELECT @var = ..."]
        if "INTO" in texts:
            return ["SELECT INTO writes a table"]
        if "COMPUTE" in texts:
            return ["COMPUTE adds extra result sets"]
        return []
    if word in {"INSERT", "UPDATE", "DELETE", "MERGE", "TRUNCATE"}:
        return [f"modifies data ({word})"]
    if word in {"CREATE", "DROP", "ALTER"}:
        return [f"runs DDL ({word})"]
    if word in {"IF", "WHILE", "BEGIN", "GOTO", "RETURN"}:
        return [f"uses control flow ({word})"]
    if word in {"EXEC", "EXECUTE"}:
        return ["calls another procedure or dynamic SQL (EXEC)"]
    if word == "DECLARE":
        return ["declares variables (DECLARE)"]
    return [f"runs {word}, which a SELECT model cannot express"]


def procedure_shape(definition: str, parameters: list[str]) -> ProcedureShape:
    """Whether a procedure is one SELECT result set, and why not when it is not.

    Parameters do not block conversion (the caller turns them into dbt vars); they are only
    used to tell ``SELECT @param = ...`` assignments from a result set.
    """
    try:
        _, body = _after_as(_tokens(definition))
    except (TokenError, ValueError) as e:
        return ProcedureShape(None, [f"body could not be read: {e}"])
    stmts = _statements(_strip_begin_end(body))
    reasons: list[str] = []
    if any(t.token_type == TokenType.HASH for t in body):
        reasons.append("uses temporary tables (#name)")
    selects = []
    for stmt in stmts:
        found = _reasons_of(stmt)
        reasons.extend(r for r in found if r not in reasons)
        if not found and stmt[0].token_type in {TokenType.SELECT, TokenType.WITH}:
            selects.append(stmt)
    if len(selects) != 1:
        count = "no result set" if not selects else f"{len(selects)} result sets"
        reasons.append(f"returns {count}, a model returns exactly one")
    if reasons:
        return ProcedureShape(None, reasons)
    return ProcedureShape(_join(definition, selects[0]), [])
