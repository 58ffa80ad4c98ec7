"""Logging for `fastspec serve`: text lines, or JSON lines (--log-format json) for every logger
(ours and uvicorn's). A record may carry `fields` (the per-request line): JSON puts them at the top."""
from __future__ import annotations

import json
import logging
import sys
import time


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        d = {"ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
             "level": record.levelname.lower(), "logger": record.name}
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            d.update(fields)
        else:
            d["msg"] = record.getMessage()
        if record.exc_info:
            d["exc"] = self.formatException(record.exc_info)
        return json.dumps(d, separators=(",", ":"), default=str)


def setup_logging(fmt: str = "text", level: int = logging.INFO, stream=None) -> logging.Handler:
    """Installs one handler on the root logger (replacing earlier ones of ours); returns it."""
    handler = logging.StreamHandler(stream or sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler._fastspec = True  # type: ignore[attr-defined]
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_fastspec", False):
            root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(level)
    return handler
