"""JSON-lines logging (stdout, or stderr where stdout is the output), with context fields."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from typing import Any, TextIO

__all__ = ["setup_logging"]

_CONTEXT_ENV = {
    "migration": "DATAMIGRATE_MIGRATION",
    "namespace": "DATAMIGRATE_NAMESPACE",
    "step": "DATAMIGRATE_STEP",
}


class _JsonFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__()
        self._context = {k: os.environ[v] for k, v in _CONTEXT_ENV.items() if os.environ.get(v)}

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            **self._context,
        }
        line.update(getattr(record, "fields", {}))
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def setup_logging(level: str | None = None, stream: TextIO | None = None) -> None:
    """Send every log record to ``stream`` (stdout by default) as one JSON object per line.

    The steps log to stdout, where the local runner reads progress events; ``translate``
    logs to stderr because its stdout is the SQL. Pass structured fields with
    ``logger.info("Msg", extra={"fields": {"object": name}})``.
    """
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(_JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level or os.environ.get("DATAMIGRATE_LOG_LEVEL", "INFO"))
