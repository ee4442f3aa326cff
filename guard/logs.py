"""One place that configures structlog for the whole process.

JSON lines when stderr is not a terminal (production, CI, containers), a
readable console renderer when a person is watching.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

MAX_LOGGED_CHARS = 256


def _bounded(_: object, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """No logged string is longer than MAX_LOGGED_CHARS: a caller's megabyte never reaches the log whole."""
    for key, value in event.items():
        if isinstance(value, str) and len(value) > MAX_LOGGED_CHARS:
            event[key] = f"{value[:MAX_LOGGED_CHARS]}… ({len(value)} characters)"
    return event


def configure(level: str = "info", json: bool | None = None) -> None:
    """Configure structlog once; safe to call again (tests do)."""
    if json is None:
        json = not sys.stderr.isatty()
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if json
        else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _bounded,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
        ),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


def get(name: str) -> structlog.typing.FilteringBoundLogger:
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(name)
    return logger
