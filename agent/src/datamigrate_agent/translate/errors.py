"""The error the translator raises for SQL it cannot carry over faithfully."""

from __future__ import annotations

from datamigrate_agent.errors import PermanentError

__all__ = ["TranslationError"]


class TranslationError(PermanentError):
    """A statement that cannot be translated without changing what it means.

    Attributes:
        reason: one human-readable sentence naming the construct and why (used as the flag
            reason of the object in results and reports).
    """

    def __init__(self, reason: str, *, code: str = "Untranslatable") -> None:
        super().__init__(reason, code=code)
        self.reason = reason
