"""T-SQL tokens, GO batches and statement boundaries for the script reader.

One pass of a compiled pattern over the whole script gives tokens (comments and white space
dropped, source offsets kept so object definitions are sliced verbatim from the text). ``GO`` is
a client-side batch separator, not T-SQL: it is recognised only alone on its line (optionally
with a repeat count and a trailing ``--`` comment), never inside a string or comment.

Statements inside a batch need no semicolons (pubs writes ``insert authors values (...)`` one
after the other), so ``split_statements`` starts a new statement at a top-level keyword that can
only begin one; ``CREATE VIEW/PROCEDURE/FUNCTION/TRIGGER`` take the rest of their batch, as SQL
Server requires them to be alone in it.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

__all__ = ["Batch", "Token", "split_statements", "tokenize_batches"]

_PATTERN = re.compile(
    r"""
    (?P<go>^[ \t]*go(?:[ \t]+(?P<count>\d+))?[ \t\r]*(?:--[^\n]*)?(?=\n|\Z))
    |(?P<nl>\n)
    |(?P<ws>[ \t\r\f\v\ufeff]+)
    |(?P<lc>--[^\n]*)
    |(?P<bc>/\*)
    |(?P<str>[Nn]?'[^']*(?:''[^']*)*')
    |(?P<qid>"[^"]*(?:""[^"]*)*")
    |(?P<bid>\[[^\]]*(?:\]\][^\]]*)*\])
    |(?P<hex>0[xX][0-9a-fA-F]*)
    |(?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
    |(?P<money>\$[ \t]*[+-]?(?:\d+\.?\d*|\.\d+))
    |(?P<var>@@?[\w#$@]+)
    |(?P<word>[^\W\d][\w#$@]*|\#+[\w#$@]*)
    |(?P<op><>|!=|<=|>=|!<|!>|::|[-+*/%&|^=]=|[^\s'"\[])
    """,
    re.VERBOSE | re.IGNORECASE | re.MULTILINE,
)

_BLOCK_EDGE = re.compile(r"/\*|\*/")


@dataclass(slots=True)
class Token:
    """One token: ``kind`` is word, qid (quoted identifier), str, num, money, hex, var, op.

    ``value`` is the decoded text: identifiers without their quotes, strings without quotes and
    with doubled quotes undone; ``start``/``end`` are offsets in the script text.
    """

    kind: str
    value: str
    start: int
    end: int
    #: Upper-cased value for words (keyword tests), else the value itself.
    upper: str
    #: True for N'...' strings.
    national: bool = False

    def is_word(self, *words: str) -> bool:
        """True when this is an unquoted word equal (case-insensitively) to one of ``words``."""
        return self.kind == "word" and self.upper in words

    def is_op(self, op: str) -> bool:
        """True when this is the operator or punctuation ``op``."""
        return self.kind == "op" and self.value == op


@dataclass(slots=True)
class Batch:
    """The tokens between two GO separators."""

    index: int
    start: int
    end: int
    tokens: list[Token]
    #: Set when the batch holds text the tokenizer could not read (an unclosed string).
    error: str | None = None


class LineIndex:
    """Offset -> 1-based line number."""

    def __init__(self, text: str) -> None:
        """Index the newlines of ``text``."""
        self._newlines = [m.start() for m in re.finditer("\n", text)]

    def line(self, offset: int) -> int:
        """The 1-based line holding ``offset``."""
        return bisect.bisect_right(self._newlines, offset - 1) + 1


def _decode(kind: str, raw: str) -> tuple[str, bool]:
    if kind == "str":
        national = raw[0] in "Nn"
        body = raw[2:-1] if national else raw[1:-1]
        return body.replace("''", "'"), national
    if kind == "qid":
        return raw[1:-1].replace('""', '"'), False
    if kind == "bid":
        return raw[1:-1].replace("]]", "]"), False
    return raw, False


def _skip_block_comment(text: str, pos: int) -> int:
    """Offset after the block comment opening at ``pos``; T-SQL block comments nest."""
    depth = 0
    for m in _BLOCK_EDGE.finditer(text, pos):
        depth += 1 if m[0] == "/*" else -1
        if depth == 0:
            return m.end()
    return len(text)


def tokenize_batches(text: str) -> list[Batch]:
    """Split ``text`` into GO batches of tokens (empty batches are kept, so indexes match).

    A ``GO n`` repeat count is ignored: repeating DDL or an INSERT n times is not what a
    schema script means, and the statements are read once.
    """
    batches: list[Batch] = []
    tokens: list[Token] = []
    batch_start = 0
    error: str | None = None
    pos = 0
    size = len(text)
    match = _PATTERN.match
    while pos < size:
        m = match(text, pos)
        if m is None:  # only an unterminated string or quoted name gets here
            error = error or f"unterminated {_unterminated(text[pos])} at offset {pos}"
            pos = _next_line(text, pos)
            continue
        kind = m.lastgroup or "op"
        end = m.end()
        if kind == "go":
            batches.append(Batch(len(batches), batch_start, m.start(), tokens, error))
            tokens, batch_start, error = [], end, None
        elif kind == "bc":
            end = _skip_block_comment(text, pos)
        elif kind not in ("nl", "ws", "lc"):
            raw = m[0]
            if kind == "bid":
                kind = "qid"
                value, national = _decode("bid", raw)
            else:
                value, national = _decode(kind, raw) if kind in ("str", "qid") else (raw, False)
            upper = value.upper() if kind == "word" else value
            tokens.append(Token(kind, value, pos, end, upper, national))
        pos = end
    batches.append(Batch(len(batches), batch_start, size, tokens, error))
    return batches


def _unterminated(ch: str) -> str:
    return {"'": "string", '"': "quoted name", "[": "bracketed name"}.get(ch, "text")


def _next_line(text: str, pos: int) -> int:
    nl = text.find("\n", pos)
    return len(text) if nl < 0 else nl


#: Words that begin a statement when they appear at the top level of a batch. Kept to the
#: common ones: a rare word missing here only makes an ignored statement absorb the next one.
_STATEMENT_WORDS = frozenset(
    {
        "ALTER", "BEGIN", "CHECKPOINT", "COMMIT", "CREATE", "DBCC", "DECLARE", "DELETE", "DENY",
        "DROP", "ELSE", "END", "EXEC", "EXECUTE", "GRANT", "IF", "INSERT", "MERGE", "PRINT",
        "RAISERROR", "RETURN", "REVOKE", "ROLLBACK", "SELECT", "SET", "TRUNCATE", "UPDATE", "USE",
        "WHILE",
    }
)  # fmt: skip

#: CREATE/ALTER of these objects take the rest of the batch.
_MODULE_WORDS = frozenset({"VIEW", "PROC", "PROCEDURE", "FUNCTION", "TRIGGER"})


def _is_module_start(tokens: list[Token], i: int) -> bool:
    """``CREATE [OR ALTER] VIEW|PROC|FUNCTION|TRIGGER`` (or ALTER ...) starts at ``i``."""
    if not tokens[i].is_word("CREATE", "ALTER"):
        return False
    j = i + 1
    if j + 1 < len(tokens) and tokens[j].is_word("OR") and tokens[j + 1].is_word("ALTER"):
        j += 2
    return j < len(tokens) and tokens[j].kind == "word" and tokens[j].upper in _MODULE_WORDS


@dataclass(slots=True)
class _Current:
    """What the splitter knows about the statement being read."""

    head: str = ""
    second: str = ""
    #: INSERT ... VALUES or INSERT ... SELECT seen: a further SELECT starts a new statement.
    insert_source: bool = False


def _continues(tok: Token, prev: Token, cur: _Current) -> bool:
    """True when the statement word ``tok`` belongs to the current statement."""
    word = tok.upper
    if prev.is_op("."):
        return True  # a part of a qualified name
    if word == "SELECT":
        if prev.is_word("UNION", "ALL", "EXCEPT", "INTERSECT", "AS", "FOR"):
            return True  # set operations, CREATE ... AS SELECT, DECLARE c CURSOR FOR SELECT
        return cur.head == "INSERT" and not cur.insert_source
    if word == "SET":
        return cur.head in ("UPDATE", "MERGE") or (cur.head == "ALTER" and cur.second == "DATABASE")
    if word in ("DELETE", "UPDATE", "INSERT"):
        if cur.head == "SET":
            return False  # SET IDENTITY_INSERT t ON / INSERT ...: the ON ends the SET
        # ON DELETE CASCADE, FOR INSERT, UPDATE (a trigger), MERGE ... WHEN MATCHED THEN UPDATE
        return prev.is_word("ON", "FOR", "AFTER", "OF", "THEN") or prev.is_op(",")
    return word in ("EXEC", "EXECUTE") and cur.head == "INSERT" and not cur.insert_source


def split_statements(tokens: list[Token]) -> list[tuple[int, int]]:
    """Token index ranges ``[start, end)`` of the statements in one batch.

    Parentheses and ``CASE ... END`` are tracked so that keywords inside them never split.
    """
    ranges: list[tuple[int, int]] = []
    start = 0
    depth = 0
    case_depth = 0
    cur = _Current()
    n = len(tokens)
    for i in range(n):
        tok = tokens[i]
        if tok.kind == "op":
            if tok.value == "(":
                depth += 1
            elif tok.value == ")":
                depth = max(depth - 1, 0)
            elif tok.value == ";" and depth == 0:
                if start < i:
                    ranges.append((start, i))
                start, cur = i + 1, _Current()
            continue
        if depth:
            continue
        if i == start:
            cur.head = tok.upper if tok.kind == "word" else ""
            if _is_module_start(tokens, i):
                ranges.append((i, n))
                return ranges
            continue
        if i == start + 1:
            cur.second = tok.upper
        if tok.kind != "word":
            continue
        word = tok.upper
        if word == "CASE":
            case_depth += 1
            continue
        if word == "END" and case_depth:
            case_depth -= 1
            continue
        if word not in _STATEMENT_WORDS or _continues(tok, tokens[i - 1], cur):
            if cur.head == "INSERT" and word in ("VALUES", "SELECT", "EXEC", "EXECUTE"):
                cur.insert_source = True
            continue
        ranges.append((start, i))
        start, cur, case_depth = i, _Current(head=word), 0
        if _is_module_start(tokens, i):
            ranges.append((i, n))
            return ranges
    if start < n:
        ranges.append((start, n))
    return ranges
