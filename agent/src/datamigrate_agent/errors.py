"""Agent errors, split into retryable and permanent, each with a code and an exit status.

The operator reads the exit status of a step's pod: permanent failures (bad input) fail the
Job at once through its pod failure policy, retryable ones are retried within its backoff limit.
"""

from __future__ import annotations

__all__ = [
    "EXIT_OK",
    "EXIT_PERMANENT",
    "EXIT_RETRYABLE",
    "AgentError",
    "PermanentError",
    "RetryableError",
]

EXIT_OK = 0
#: Bad input or a result that retrying cannot change (EX_DATAERR).
EXIT_PERMANENT = 65
#: A transient failure (unreachable server, timeout) that a retry may fix (EX_TEMPFAIL).
EXIT_RETRYABLE = 75


class AgentError(Exception):
    """Base of every error the agent raises on purpose.

    Attributes:
        code: a stable PascalCase reason, used in logs, termination messages and status.
    """

    exit_code = EXIT_RETRYABLE
    retryable = True

    def __init__(self, message: str, *, code: str = "AgentError") -> None:
        super().__init__(message)
        self.code = code


class RetryableError(AgentError):
    """A failure that may pass on a later attempt."""


class PermanentError(AgentError):
    """A failure caused by the input; the step must not be retried until the input changes."""

    exit_code = EXIT_PERMANENT
    retryable = False
