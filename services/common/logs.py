"""Structured logging shared by every service: one JSON object per line.

Each line carries the service name and, inside a request, its request ID,
so one query can be followed from the gateway into every agency.
"""

import contextvars
import json
import logging
import time

from services.common.settings import env_str

REQUEST_ID_METADATA_KEY = "x-request-id"

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")

# Attributes every LogRecord has; anything else was passed with `extra=`.
_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str):
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(service: str) -> None:
    """LOG_FORMAT=json (default) or text for reading in a terminal."""
    level = env_str("LOG_LEVEL", "INFO").upper()
    handler = logging.StreamHandler()
    if env_str("LOG_FORMAT", "json") == "text":
        handler.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)s {service} %(name)s: %(message)s"))
    else:
        handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def mask_id(id_number: str) -> str:
    """Keep enough of an ID to tell records apart, never enough to identify anyone."""
    if len(id_number) <= 8:
        return "*" * len(id_number)
    return id_number[:6] + "*" * (len(id_number) - 8) + id_number[-2:]
