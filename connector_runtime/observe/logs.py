"""Logging set-up: one JSON object per line (default) or text for humans.

Under ``run`` every line on stderr is a record: start-up lines (the webhook URLs,
``listening on``), warnings and the error that stops the runtime included.

Secrets are removed from every record by :class:`~connector_runtime.config.secrets.RedactingFilter`.
Handlers pass structured fields as ``extra={"fields": {...}}``; the JSON formatter puts
them at the top level of the line. Record contents (personal data) are never logged.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import orjson

from connector_runtime.config.secrets import RedactingFilter, Redactor


class JSONFormatter(logging.Formatter):
    _second = -1
    _stamp = ""

    def format(self, record: logging.LogRecord) -> str:
        second = int(record.created)
        if second != self._second:  # one strftime per second, not per line
            self._second = second
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        line: dict[str, Any] = {
            "ts": f"{self._stamp}.{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            for key, value in fields.items():
                line.setdefault(key, value)
        if record.exc_info:
            text = record.exc_text or self.formatException(record.exc_info)  # redacted
            line["error"] = text.splitlines()[-1]
        return orjson.dumps(line, default=str).decode()


def setup_logging(level: str, fmt: str, redactor: Redactor) -> None:
    """Send the runtime's logs to stderr, in ``fmt`` (``json`` or ``text``), redacted."""
    # What the lines never show, the records need not collect (the logging HOWTO's
    # "Optimization" knobs): the caller's file and line, thread, process ids.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JSONFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter(redactor))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Python's warnings would print plain text among the lines; they become records too.
    logging.captureWarnings(True)
    # Tornado's access log duplicates ours; its error log stays.
    logging.getLogger("tornado.access").setLevel(logging.WARNING)
