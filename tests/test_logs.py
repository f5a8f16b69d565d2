"""The worker's log: one line per event (JSON when asked), no request-level lines."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from enforcer.logs import REQUEST_LOGGERS, configure_logging


@pytest.fixture
def stderr_log() -> Iterator[io.StringIO]:
    """What the process's log writes, with the logging set-up restored afterwards."""
    root = logging.getLogger()
    kept = (root.handlers[:], root.level, [logging.getLogger(n).level for n in REQUEST_LOGGERS])
    written = io.StringIO()
    try:
        yield written
    finally:
        root.handlers[:], root.level = kept[0], kept[1]
        for name, level in zip(REQUEST_LOGGERS, kept[2], strict=True):
            logging.getLogger(name).setLevel(level)


def _write_to(written: io.StringIO) -> None:
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(written)


def test_json_log_is_one_object_per_line_with_the_traceback_inside(
    stderr_log: io.StringIO,
) -> None:
    configure_logging("json")
    _write_to(stderr_log)
    try:
        raise RuntimeError("the ledger's disk is full")
    except RuntimeError:
        logging.getLogger("worker").warning("activity %s failed", "apply_chunk", exc_info=True)
    logging.getLogger("activities").info("apply_chunk attempt 2: RateLimited; will retry")

    lines = stderr_log.getvalue().splitlines()
    events = [json.loads(line) for line in lines]
    assert len(events) == 2
    assert events[0]["level"] == "WARNING"
    assert events[0]["message"] == "activity apply_chunk failed"
    assert "RuntimeError: the ledger's disk is full" in events[0]["exception"]
    assert events[1]["logger"] == "activities"
    assert "exception" not in events[1]


def test_requests_are_not_logged_at_info(stderr_log: io.StringIO) -> None:
    configure_logging()
    _write_to(stderr_log)
    logging.getLogger("httpx").info('HTTP Request: GET https://api.spotify.com/v1/me "200 OK"')
    logging.getLogger("httpx").warning("a request could not be sent")
    logging.getLogger("worker").info("worker started")

    written = stderr_log.getvalue()
    assert "HTTP Request" not in written
    assert "a request could not be sent" in written
    assert "worker started" in written
