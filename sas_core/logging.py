"""Structured JSON logs with the request id; never patient data (callers log ids and counts only)."""

from __future__ import annotations

import atexit
import logging
import queue
import sys
from logging.handlers import QueueHandler, QueueListener
from pathlib import Path

from asgi_correlation_id import CorrelationIdFilter
from pythonjsonlogger.json import JsonFormatter


class DropQueryString(logging.Filter):
    """Access-log lines keep the path, never the query string: a search's ``q`` / ``lat`` / ``lon`` may be
    where the patient is (an address typed by the operator)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str) and "?" in args[2]:
            record.args = (*args[:2], args[2].split("?", 1)[0], *args[3:])
        return True


class _DeferredQueueHandler(QueueHandler):
    """Hands records to the writer thread as they are: formatting (JSON) and the write to stdout happen
    there, not on the request's path (uvicorn writes its access line before the response goes out).
    The request id is read here, by the filter, because it lives in the request's context."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        return record


_listener: QueueListener | None = None
_queue: queue.Queue[logging.LogRecord] | None = None


def flush_logs() -> None:
    """Wait until every record logged so far is written (tests, and before a process exits)."""
    if _queue is not None and _listener is not None:
        _queue.join()


def _stop_listener() -> None:
    global _listener
    if _listener is not None:
        _listener.stop()   # writes what is queued, then ends the thread
        _listener = None


def configure_logging(*, level: str = "INFO", json_format: bool = True, log_file: Path | None = None,
                      console_level: str | None = None) -> None:
    """Root logger → stdout, one JSON object per line with ``request_id`` when inside a request; lines
    are formatted and written by a background thread (``flush_logs`` waits for them).

    ``log_file``: every record at ``level`` also goes to that file, and the console gets ``console_level``
    and above only (``sas run``: the periodic harvest lines must not scroll away the printed URL and token)."""
    global _listener, _queue
    _stop_listener()
    handler = logging.StreamHandler(sys.stdout)
    if console_level:
        handler.setLevel(console_level.upper())
    if json_format:
        handler.setFormatter(JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s %(correlation_id)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger", "correlation_id": "request_id"},
        ))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s [%(correlation_id)s] %(name)s %(message)s"))
    handlers: list[logging.Handler] = [handler]
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        to_file = logging.FileHandler(log_file, encoding="utf-8")
        to_file.setFormatter(handler.formatter)
        handlers.append(to_file)
    _queue = queue.Queue()
    deferred = _DeferredQueueHandler(_queue)
    deferred.addFilter(CorrelationIdFilter(uuid_length=32, default_value="-"))
    _listener = QueueListener(_queue, *handlers, respect_handler_level=True)
    _listener.start()
    atexit.unregister(_stop_listener)
    atexit.register(_stop_listener)
    root = logging.getLogger()
    root.handlers[:] = [deferred]
    root.setLevel(level.upper())
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, DropQueryString) for f in access.filters):
        access.addFilter(DropQueryString())
    # Routine chatter (each request to ES / vendors, each scheduler tick) would drown the useful lines.
    for noisy in ("elastic_transport.transport", "httpx", "apscheduler.executors.default", "apscheduler.scheduler"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
