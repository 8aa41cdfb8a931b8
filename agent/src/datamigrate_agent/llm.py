"""Optional LLM help for the repair step, through LangChain chat models.

The provider is chosen by ``--model-provider`` (none by default), the key comes from env
``DATAMIGRATE_LLM_API_KEY`` and is handed straight to the client, never stored or logged.
Calls and tokens are bounded per migration. An answer is used only when it parses (sqlglot,
target dialect) as exactly one SELECT with no DDL or DML anywhere in it.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from typing import Any

import sqlglot
from sqlglot import exp

from datamigrate_agent.errors import PermanentError
from datamigrate_agent.prompts import REPAIR_SYSTEM, REPAIR_USER

__all__ = ["Budget", "RepairAnswer", "build_chat_model", "ask_repair", "validate_select"]

log = logging.getLogger(__name__)

API_KEY_ENV = "DATAMIGRATE_LLM_API_KEY"
_DEFAULT_MODELS = {"anthropic": "claude-sonnet-4-5", "openai": "gpt-4o-mini"}
_FENCE = re.compile(r"```(?:sql)?\s*(.*?)```", re.DOTALL | re.IGNORECASE)
_FORBIDDEN = (
    exp.Insert, exp.Update, exp.Delete, exp.Drop, exp.Create, exp.Alter, exp.Merge,
    exp.Command, exp.Into, exp.TruncateTable,
)  # fmt: skip
_DIALECTS = {"databricks": "databricks", "postgres": "postgres", "redshift": "redshift"}


@dataclass
class Budget:
    """What the LLM may still spend in this migration."""

    calls: int
    tokens: int

    def allows(self) -> bool:
        """Whether one more call fits."""
        return self.calls > 0 and self.tokens > 0

    def charge(self, tokens: int) -> None:
        """Account one call of ``tokens`` tokens."""
        self.calls -= 1
        self.tokens -= max(tokens, 0)


@dataclass(frozen=True)
class RepairAnswer:
    """A checked answer: ``sql`` is set when it passed, ``reason`` says why it did not."""

    sql: str | None
    reason: str | None
    tokens: int


def build_chat_model(provider: str, model: str | None, base_url: str | None) -> Any:
    """The LangChain chat model for ``provider`` ("none" gives ``None``)."""
    if provider == "none":
        return None
    key = os.environ.get(API_KEY_ENV)
    if not key:
        message = f"--model-provider {provider} needs env {API_KEY_ENV}"
        raise PermanentError(message, code="NoApiKey")
    if provider == "anthropic":
        from langchain_anthropic import ChatAnthropic

        return ChatAnthropic(
            model=model or _DEFAULT_MODELS["anthropic"], api_key=key, timeout=60, max_retries=1
        )
    if provider in {"openai", "openai-compatible"}:
        from langchain_openai import ChatOpenAI

        if provider == "openai-compatible" and not base_url:
            raise PermanentError("openai-compatible needs --base-url", code="NoBaseUrl")
        return ChatOpenAI(
            model=model or _DEFAULT_MODELS["openai"],
            api_key=key,
            base_url=base_url,
            timeout=60,
            max_retries=1,
        )
    raise PermanentError(f"unknown model provider {provider!r}", code="BadProvider")


def sqlglot_dialect(target: str) -> str:
    """sqlglot's name for a dbt target."""
    return _DIALECTS.get(target, target)


def validate_select(sql: str, target: str) -> str | None:
    """``None`` when ``sql`` is exactly one SELECT with no DDL/DML inside, else the reason."""
    try:
        statements = [s for s in sqlglot.parse(sql, read=sqlglot_dialect(target)) if s]
    except sqlglot.errors.SqlglotError as e:
        return f"answer does not parse as {target} SQL: {str(e).splitlines()[0][:200]}"
    if len(statements) != 1:
        return f"answer holds {len(statements)} statements, not one SELECT"
    tree = statements[0]
    if not isinstance(tree, exp.Query):
        return f"answer is a {tree.key.upper()} statement, not a SELECT"
    bad = next(iter(tree.find_all(*_FORBIDDEN)), None)
    if bad is not None:
        return f"answer contains {bad.key.upper()}, which a model may not run"
    return None


def _extract_sql(text: str) -> str:
    match = _FENCE.search(text)
    return (match.group(1) if match else text).strip().rstrip(";").strip()


def _tokens_of(message: Any, prompt_chars: int) -> int:
    usage = getattr(message, "usage_metadata", None) or {}
    if usage.get("total_tokens"):
        return int(usage["total_tokens"])
    # No usage reported (fake or self-hosted models): about four characters a token.
    return (prompt_chars + len(str(message.content))) // 4 + 1


def ask_repair(chat: Any, budget: Budget, target: str, payload: dict[str, Any]) -> RepairAnswer:
    """Ask ``chat`` for a repaired SELECT; every source-derived string stays inside ``payload``."""
    from langchain_core.messages import HumanMessage, SystemMessage

    if not budget.allows():
        return RepairAnswer(None, "LLM budget of this migration is spent", 0)
    user = REPAIR_USER.format(dialect=target, payload=json.dumps(payload, indent=1))
    messages = [SystemMessage(REPAIR_SYSTEM.format(dialect=target)), HumanMessage(user)]
    try:
        answer = chat.invoke(messages)
    except Exception as e:  # noqa: BLE001 - a provider failure is one failed attempt
        budget.charge(len(user) // 4)
        return RepairAnswer(None, f"LLM call failed: {type(e).__name__}", len(user) // 4)
    tokens = _tokens_of(answer, len(user))
    budget.charge(tokens)
    sql = _extract_sql(str(answer.content))
    reason = validate_select(sql, target)
    if reason:
        log.warning("LLM answer rejected", extra={"fields": {"reason": reason}})
        return RepairAnswer(None, f"LLM answer rejected: {reason}", tokens)
    return RepairAnswer(sql, None, tokens)
