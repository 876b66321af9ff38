"""Structured JSON log lines, one per event, shared by every process."""
from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from trainhouse.common.request_context import request_id

_SECRET_KEYS = {"token", "authorization", "secret", "password"}


class JsonFormatter(logging.Formatter):
    def __init__(self, component: str):
        super().__init__()
        self.component = component

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "component": self.component,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        rid = request_id.get()
        if rid:
            out["request_id"] = rid
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            for key, value in fields.items():
                out[key] = "***" if key.lower() in _SECRET_KEYS else value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def configure(component: str, level: str | None = None) -> None:
    """Send JSON lines to stderr; stdout stays free for what a launcher prints to people.

    The level comes from TRAINHOUSE_LOG_LEVEL (default INFO); DEBUG adds one access-log line per
    successful RPC (failed ones are always logged)."""
    import os

    level = (level or os.environ.get("TRAINHOUSE_LOG_LEVEL") or "INFO").upper()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(component))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    # DEBUG is for our own loggers only; libraries stay at INFO.
    root.setLevel("INFO" if level == "DEBUG" else level)
    logging.getLogger("trainhouse").setLevel(level)


def log(logger: logging.Logger, msg: str, level: int = logging.INFO, **fields: Any) -> None:
    logger.log(level, msg, extra={"fields": fields})
