"""T-SQL's procedural statements: control flow, error handling, messages, waits, savepoints.

None of them has a statement on any target (a warehouse runs statements, not batches), so the
translator reports each with what it does instead of printing it or dropping it silently.
"""

from __future__ import annotations

import re

__all__ = ["NOT_BLOCKS", "is_message", "reason"]

_LEADING_COMMENTS = re.compile(r"^(\s*(--[^\n]*\n|/\*.*?\*/))*\s*", re.S)
_FIRST_WORDS = re.compile(r"(\w+)(?:\s+(\w+))?")
#: ``BEGIN`` followed by one of these starts a transaction or a dialog, not a block.
NOT_BLOCKS = {"TRAN", "TRANSACTION", "DISTRIBUTED", "DIALOG", "CONVERSATION"}
_LABEL = re.compile(r"^\w+:$")

#: first keyword -> what the statement does in T-SQL.
_WHAT = {
    "IF": "IF/WHILE control flow",
    "WHILE": "IF/WHILE control flow",
    "RETURN": "RETURN (leaving the batch or procedure) is T-SQL control flow",
    "GOTO": "GOTO is T-SQL control flow",
    "BREAK": "BREAK (leaving a WHILE loop) is T-SQL control flow",
    "CONTINUE": "CONTINUE (the next WHILE iteration) is T-SQL control flow",
    "END": "END closes a T-SQL BEGIN ... END block",
    "PRINT": "PRINT sends a message to the client",
    "RAISERROR": "RAISERROR raises a T-SQL error or message",
    "THROW": "THROW raises a T-SQL error",
    "WAITFOR": "WAITFOR pauses the T-SQL batch",
}
#: Statements that only send the client a message (a procedure's result set ignores them).
_MESSAGES = {"PRINT", "RAISERROR"}


def reason(text: str, dialect: str) -> str | None:
    """Why the statement ``text`` is procedural T-SQL with no ``dialect`` statement, or None."""
    body = _LEADING_COMMENTS.sub("", text, count=1)
    match = _FIRST_WORDS.match(body)
    if match is None:
        return None
    first, second = match.group(1).upper(), (match.group(2) or "").upper()
    if first == "SAVE" and second in {"TRAN", "TRANSACTION"}:
        return _savepoint(dialect)
    if first == "BEGIN" and second == "TRY":
        what = "BEGIN TRY ... END CATCH is T-SQL error handling"
    elif first == "BEGIN" and second not in NOT_BLOCKS:
        what = "a BEGIN ... END block groups T-SQL control flow"
    elif _LABEL.match(body.strip()):
        what = "a label (a GOTO target) is T-SQL control flow"
    else:
        what = _WHAT.get(first, "")
    if not what:
        return None
    if first in {"IF", "WHILE"}:
        return f"{what} only exist inside SQL Server batches; no {dialect} statement carries them"
    return f"{what}; {dialect} has no such statement"


def _savepoint(dialect: str) -> str:
    # ROLLBACK TRANSACTION <savepoint> is translated as a plain ROLLBACK, so the pair must be
    # rewritten together.
    by_hand = (
        "SAVEPOINT <name> and ROLLBACK TO SAVEPOINT <name>"
        if dialect == "postgres"
        else "a savepoint of the target, if it has one, or separate transactions"
    )
    return (
        "SAVE TRANSACTION sets a T-SQL savepoint, which is not translated (and ROLLBACK "
        "TRANSACTION <savepoint> would end the whole transaction); rewrite the partial "
        f"rollback by hand on {dialect} with {by_hand}"
    )


def is_message(text: str) -> bool:
    """``PRINT`` or ``RAISERROR``: a message to the client, no rows and no data change."""
    match = _FIRST_WORDS.match(_LEADING_COMMENTS.sub("", text, count=1))
    return match is not None and match.group(1).upper() in _MESSAGES
