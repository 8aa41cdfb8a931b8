"""JSON-lines logging to stdout, with migration, namespace, step and object fields."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from typing import Any

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


def setup_logging(level: str | None = None) -> None:
    """Send every log record to stdout as one JSON object per line.

    Pass structured fields with ``logger.info("Msg", extra={"fields": {"object": name}})``.
    """
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(_JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level or os.environ.get("DATAMIGRATE_LOG_LEVEL", "INFO"))
