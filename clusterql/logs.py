"""JSON log lines on stderr, each with the request id of the request that wrote it, for the app
and uvicorn alike (`log_config`, applied by every worker process uvicorn starts); the access
lines are `clusterql.access`'s, in place of uvicorn's."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import orjson

from clusterql import request_id
from models.tokens import redacted

_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": request_id.current.get(),
        }
        entry.update(
            {k: v for k, v in record.__dict__.items() if k not in _STANDARD and v is not None}
        )
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        # Nothing should log a secret (the access line never has the query string or the
        # path): this is the net under that, for what a caller puts anywhere else.
        return redacted(orjson.dumps(entry, default=str).decode())


class PlainMessage(logging.Filter):
    """Drops uvicorn's `color_message` extra: JSON lines carry the plain message only."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.__dict__.pop("color_message", None)
        return True


def log_config(level: str) -> dict[str, Any]:
    """JSON logs for uvicorn and the app, as a dictConfig that every worker process applies."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"plain": {"()": f"{__name__}.PlainMessage"}},
        "formatters": {"json": {"()": f"{__name__}.JsonFormatter"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "filters": ["plain"],
            },
        },
        "root": {"handlers": ["stderr"], "level": level.upper()},
        "loggers": {
            **{name: {"handlers": [], "propagate": True} for name in ("uvicorn", "uvicorn.error")},
            # uvicorn's access lines carry the query string: clusterql.access writes them
            "uvicorn.access": {"handlers": [], "propagate": False},
        },
    }
