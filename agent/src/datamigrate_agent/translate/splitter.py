"""Split a T-SQL script into batches (``GO``) and statements (with or without semicolons).

SQL Server needs no semicolons: ``insert t values (1) insert t values (2)`` is two statements.
The splitter walks sqlglot's T-SQL tokens and starts a new statement at a statement keyword at
parenthesis depth 0, except where the keyword continues the current statement (``INSERT ...
SELECT``, ``UNION SELECT``, ``UPDATE ... SET``, ``IF <cond> <statement>``, ``AS SELECT``). A
``BEGIN ... END`` block (``BEGIN TRY ... END TRY BEGIN CATCH ... END CATCH`` included, but not
``BEGIN TRANSACTION``) is one statement with everything inside it, so control flow is reported
whole rather than as fragments.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import TokenError
from sqlglot.tokens import Token, TokenType

from datamigrate_agent.translate._control_flow import NOT_BLOCKS
from datamigrate_agent.translate.errors import TranslationError

__all__ = ["RawStatement", "split_batches", "split_script", "split_statements"]

#: A ``GO`` line, also with Windows line ends (SSMS saves CRLF).
_GO = re.compile(r"^[ \t]*GO(?:[ \t]+\d+)?[ \t]*(?:--[^\n]*)?\r?$", re.IGNORECASE | re.MULTILINE)

#: Keywords that begin a statement (upper-case token text).
_STARTERS = {
    "SELECT",
    "INSERT",
    "UPDATE",
    "DELETE",
    "MERGE",
    "CREATE",
    "ALTER",
    "DROP",
    "TRUNCATE",
    "SET",
    "DECLARE",
    "EXEC",
    "EXECUTE",
    "PRINT",
    "USE",
    "IF",
    "GRANT",
    "REVOKE",
    "DENY",
    "BEGIN",
    "COMMIT",
    "ROLLBACK",
    "SAVE",
    "RETURN",
    "RAISERROR",
    "THROW",
    "WHILE",
    "DBCC",
    "CHECKPOINT",
    "WAITFOR",
    "GOTO",
    "BREAK",
    "CONTINUE",
}
#: A starter right after one of these continues the statement (``UNION SELECT``, ``AS SELECT``).
_CONTINUERS = {"UNION", "ALL", "EXCEPT", "INTERSECT", "AS", "THEN", "ELSE", "FOR", "(", "DISTINCT"}
#: Whole-batch objects: T-SQL requires them to be alone in their batch.
_MODULE = re.compile(
    r"^\s*(CREATE|ALTER|CREATE\s+OR\s+ALTER)\s+(PROC|PROCEDURE|FUNCTION|TRIGGER|VIEW)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class RawStatement:
    """One statement's T-SQL text and where it sits in the script."""

    text: str
    batch: int
    line: int


def split_batches(text: str) -> list[tuple[int, str]]:
    """Split on ``GO`` lines; return ``(first line number, batch text)`` pairs."""
    batches: list[tuple[int, str]] = []
    start = 0
    for match in _GO.finditer(text):
        batches.append((text.count("\n", 0, start) + 1, text[start : match.start()]))
        start = match.end()
    batches.append((text.count("\n", 0, start) + 1, text[start:]))
    return [(line, body) for line, body in batches if body.strip()]


def split_statements(batch: str) -> list[str]:
    """Split one batch into statement texts (no trailing semicolons)."""
    if _MODULE.match(_strip_leading_comments(batch)):
        return [batch.strip().rstrip(";").strip()]
    try:
        tokens = _tokenize(batch)
    except TokenError as e:
        raise TranslationError(f"T-SQL does not tokenize: {e}", code="ParseFailed") from e
    bounds = _boundaries(tokens)
    if not bounds:
        return []
    pieces = []
    for begin, end in zip(bounds, bounds[1:] + [len(tokens)], strict=True):
        chunk = [t for t in tokens[begin:end] if t.token_type != TokenType.SEMICOLON]
        if chunk:
            pieces.append(batch[chunk[0].start : chunk[-1].end + 1].strip())
    return [p for p in pieces if p]


def split_script(text: str) -> list[RawStatement]:
    """Split a whole script into statements in order, batches first."""
    out = []
    for number, (line, batch) in enumerate(split_batches(text)):
        offset = 0
        for piece in split_statements(batch):
            # Search on from the last statement: the same text may occur twice in a batch.
            offset = max(batch.find(piece, offset), offset)
            out.append(RawStatement(piece, number, line + batch.count("\n", 0, offset)))
            offset += len(piece)
    return out


def _tokenize(text: str, offset: int = 0) -> list[Token]:
    """sqlglot's T-SQL tokens, with the text after a statement-initial END tokenized too.

    sqlglot reads an END that starts a statement as a command and the rest of the statement
    as one string (``END TRY BEGIN CATCH ...``, ``END ELSE BEGIN ... END SELECT ...``), which
    would hide the blocks and statements in it.
    """
    out: list[Token] = []
    tokens = Dialect.get_or_raise("tsql").tokenize(text)
    for previous, token in zip([None, *tokens], tokens, strict=False):
        if previous is not None and previous.token_type == TokenType.END:
            # The command's text is the source after END; a quoted alias (END 'x') is not.
            rest = text[previous.end + 1 : token.end + 1]
            if token.token_type == TokenType.STRING and rest.strip() == token.text:
                out += _tokenize(rest, offset + previous.end + 1)
                continue
        out.append(_shifted(token, offset))
    return out


def _shifted(token: Token, offset: int) -> Token:
    if not offset:
        return token
    return Token(
        token.token_type, token.text, token.line, token.col, token.start + offset,
        token.end + offset, token.comments,
    )  # fmt: skip


def _strip_leading_comments(text: str) -> str:
    return re.sub(r"^(\s*(--[^\n]*\n|/\*.*?\*/))*", "", text, flags=re.DOTALL)


def _word(token: Token) -> str:
    return token.text.upper() if token.token_type != TokenType.STRING else ""


class _State:
    """What the statement being scanned has seen so far."""

    def __init__(self, first: str) -> None:
        self.first = first
        self.absorbed = False  # INSERT ... SELECT, WITH ... SELECT, IF ... <body>
        self.seen_set = False


def _boundaries(tokens: list[Token]) -> list[int]:
    bounds: list[int] = []
    depth = 0
    blocks = 0  # open BEGIN ... END and CASE ... END
    state: _State | None = None
    prev = ""
    for i, token in enumerate(tokens):
        word = _word(token)
        if token.token_type == TokenType.SEMICOLON and depth == 0 and blocks == 0:
            state, prev = None, ";"
            continue
        top = depth == 0 and blocks == 0
        if state is None:
            bounds.append(i)
            state = _State(word)
        elif top and word in _STARTERS and _starts_new(state, word, prev):
            bounds.append(i)
            state = _State(word)
        elif top and word == "VALUES" and state.first == "INSERT":
            state.absorbed = True
        blocks = max(0, blocks + _block_change(tokens, i))
        depth += (token.token_type == TokenType.L_PAREN) - (token.token_type == TokenType.R_PAREN)
        prev = word or token.text
    return bounds


def _block_change(tokens: list[Token], i: int) -> int:
    """+1 where a BEGIN ... END block or a CASE opens, -1 at END."""
    word = _word(tokens[i])
    if word == "CASE":
        return 1
    if word == "END":
        return -1
    following = _word(tokens[i + 1]) if i + 1 < len(tokens) else ""
    return int(word == "BEGIN" and following not in NOT_BLOCKS)


def _starts_new(state: _State, word: str, prev: str) -> bool:
    if prev in _CONTINUERS or state.first == "MERGE":
        return False
    if word == "BEGIN" and prev == "TRY":
        return False  # END TRY BEGIN CATCH: one TRY ... CATCH statement
    if state.first == "UPDATE" and word == "SET" and not state.seen_set:
        state.seen_set = True
        return False
    if state.first == "DECLARE" and prev == "CURSOR":
        return False
    absorbs = {
        "INSERT": {"SELECT", "EXEC", "EXECUTE"},
        "WITH": {"SELECT", "INSERT", "UPDATE", "DELETE", "MERGE"},
        "IF": _STARTERS,
        "WHILE": _STARTERS,
    }
    if not state.absorbed and word in absorbs.get(state.first, set()):
        if state.first in {"WITH", "IF", "WHILE"}:
            # The statement goes on as the absorbed kind: WITH ... INSERT ... SELECT.
            state.first = word
            state.seen_set = False
        else:
            state.absorbed = True
        return False
    return True
