"""A cursor over the tokens of one statement, with the helpers every statement parser needs."""

from __future__ import annotations

from datamigrate_agent.extract._tokens import Token

__all__ = ["Cursor", "StatementError"]


class StatementError(Exception):
    """A statement the reader recognised but could not read; ``offset`` is in the script."""

    def __init__(self, message: str, offset: int | None = None) -> None:
        """Keep the message and where the failure was found."""
        super().__init__(message)
        self.offset = offset


class Cursor:
    """Reads tokens ``[start, end)`` of a statement; ``text`` is the whole script."""

    def __init__(self, tokens: list[Token], start: int, end: int, text: str) -> None:
        """Start at ``start``."""
        self.tokens = tokens
        self.i = start
        self.end = end
        self.text = text

    def at_end(self) -> bool:
        """True when every token was read."""
        return self.i >= self.end

    def peek(self, k: int = 0) -> Token | None:
        """The token ``k`` places ahead, or None past the end."""
        j = self.i + k
        return self.tokens[j] if j < self.end else None

    def next(self) -> Token:
        """Consume and return the next token."""
        if self.i >= self.end:
            last = self.tokens[self.end - 1].end if self.end else None
            raise StatementError("unexpected end of statement", last)
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def error(self, what: str) -> StatementError:
        """A StatementError at the current token."""
        tok = self.peek()
        if tok is None:
            return StatementError(f"{what}, found the end of the statement", self._last_end())
        shown = tok.value if len(tok.value) <= 40 else tok.value[:40] + "..."
        return StatementError(f"{what}, found {shown!r}", tok.start)

    def _last_end(self) -> int | None:
        return self.tokens[self.end - 1].end if self.end > 0 else None

    def accept_word(self, *words: str) -> str | None:
        """Consume the next token if it is one of ``words``; return it upper-cased."""
        tok = self.peek()
        if tok is not None and tok.kind == "word" and tok.upper in words:
            self.i += 1
            return tok.upper
        return None

    def accept_words(self, *words: str) -> bool:
        """Consume the sequence ``words`` if the next tokens are exactly it."""
        for k, word in enumerate(words):
            tok = self.peek(k)
            if tok is None or not tok.is_word(word):
                return False
        self.i += len(words)
        return True

    def expect_word(self, *words: str) -> str:
        """Consume one of ``words`` or fail."""
        got = self.accept_word(*words)
        if got is None:
            raise self.error("expected " + " or ".join(words))
        return got

    def accept_op(self, op: str) -> bool:
        """Consume ``op`` if it is next."""
        tok = self.peek()
        if tok is not None and tok.is_op(op):
            self.i += 1
            return True
        return False

    def expect_op(self, op: str) -> None:
        """Consume ``op`` or fail."""
        if not self.accept_op(op):
            raise self.error(f"expected {op!r}")

    def ident(self) -> str:
        """One identifier: a word or a quoted/bracketed name."""
        tok = self.peek()
        if tok is None or tok.kind not in ("word", "qid"):
            raise self.error("expected a name")
        self.i += 1
        return tok.value

    def name(self) -> list[str]:
        """A multi-part name ``[server.][db.][schema.]name`` as its parts (empty for ``a..b``)."""
        parts = [self.ident()]
        while self.accept_op("."):
            if self.peek() is not None and self.peek().is_op("."):  # type: ignore[union-attr]
                parts.append("")
                continue
            parts.append(self.ident())
        return parts

    def group(self) -> tuple[int, int]:
        """Consume a parenthesised group; return the token range of its inside."""
        self.expect_op("(")
        start = self.i
        depth = 1
        while self.i < self.end:
            tok = self.tokens[self.i]
            self.i += 1
            if tok.kind == "op":
                if tok.value == "(":
                    depth += 1
                elif tok.value == ")":
                    depth -= 1
                    if depth == 0:
                        return start, self.i - 1
        raise StatementError("unbalanced parentheses", self.tokens[start - 1].start)

    def source(self, start: int, end: int) -> str:
        """The script text of tokens ``[start, end)``, verbatim."""
        if start >= end:
            return ""
        return self.text[self.tokens[start].start : self.tokens[end - 1].end]

    def split_commas(self, start: int, end: int) -> list[tuple[int, int]]:
        """Top-level comma-separated token ranges inside ``[start, end)``."""
        items: list[tuple[int, int]] = []
        depth = 0
        item = start
        for j in range(start, end):
            tok = self.tokens[j]
            if tok.kind != "op":
                continue
            if tok.value == "(":
                depth += 1
            elif tok.value == ")":
                depth -= 1
            elif tok.value == "," and depth == 0:
                items.append((item, j))
                item = j + 1
        if item < end:
            items.append((item, end))
        return items

    def sub(self, start: int, end: int) -> Cursor:
        """A cursor over ``[start, end)`` of the same tokens."""
        return Cursor(self.tokens, start, end, self.text)

    def skip_rest(self) -> None:
        """Consume everything left."""
        self.i = self.end
