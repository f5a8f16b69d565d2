"""How the worker writes its log: one line per event, as text or as JSON objects.

Invariants:
- One event, one line: in JSON, a traceback (logged for a fault of the program only,
  never for an expected failure such as a 429) is a field of the event's object.
- No request-level lines at INFO: httpx and httpcore tell each request; only their
  warnings pass. What the requests did is counted in the ledger (``api_calls``).
- No secret: the project never logs a token or a key (tokens live encrypted in the
  ledger, and settings errors name variables, not values); this module adds nothing.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Final, Literal

LogFormat = Literal["text", "json"]

TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s %(message)s"
REQUEST_LOGGERS: Final = ("httpx", "httpcore")
_TEMPORAL_CONTEXT: Final = ("temporal_activity", "temporal_workflow")


class JsonLines(logging.Formatter):
    """Each record as one JSON object: time (UTC, ISO 8601), level, logger, message, and
    what Temporal's SDK attaches of the activity or workflow it came from."""

    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in _TEMPORAL_CONTEXT:
            if (context := getattr(record, key, None)) is not None:
                event[key] = context
        if record.exc_info:
            event["exception"] = self.formatException(record.exc_info)
        return json.dumps(event, default=str)


def configure_logging(log_format: LogFormat = "text", level: int = logging.INFO) -> None:
    """The process's log on stderr, in ``log_format``; request-level lines left out."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonLines() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in REQUEST_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
