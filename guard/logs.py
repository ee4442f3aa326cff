"""One place that configures structlog for the whole process.

JSON lines when stderr is not a terminal (production, CI, containers), a
readable console renderer when a person is watching.

The service writes one line per call, so writing must be cheap: JSON lines are
rendered by orjson and gathered in memory, and a writer thread puts them out every
``FLUSH_SECONDS`` (and at exit). A warning or an error is written at once. A
process killed with SIGKILL can lose the last fraction of a second of info lines.
"""

from __future__ import annotations

import atexit
import logging
import sys
import threading
from collections.abc import MutableMapping
from typing import Any, TextIO

import orjson
import structlog

MAX_LOGGED_CHARS = 256


def _bounded(_: object, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """No logged string is longer than MAX_LOGGED_CHARS: a caller's megabyte never reaches the log whole."""
    for key, value in event.items():
        if isinstance(value, str) and len(value) > MAX_LOGGED_CHARS:
            event[key] = f"{value[:MAX_LOGGED_CHARS]}… ({len(value)} characters)"
    return event


# Never written whole: a reply's words at any level; a user's id unless hashed (GUARD_LOG_USER_IDS=hash).
PRIVATE_TEXT = ("text", "reply_text")
_user_id_key: bytes | None = None


def _private(_: object, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in PRIVATE_TEXT:
        event.pop(key, None)
    user = event.pop("user_id", None)
    if user and _user_id_key is not None:
        event["user"] = hash_user(str(user))
    return event


def hash_user(user_id: str) -> str:
    """A keyed hash of a user id: the same user reads the same across lines and restarts, and the id cannot be
    recovered from the log by trying likely ids (phone numbers) without the key."""
    import hashlib
    import hmac

    return hmac.new(_user_id_key or b"", user_id.encode("utf-8"), hashlib.sha256).hexdigest()[:16]


FLUSH_SECONDS = 0.2


def _orjson(event: MutableMapping[str, Any], **_: Any) -> str:
    return orjson.dumps(event, default=str).decode("utf-8")


class _GatheringWriter:
    """Lines gathered in memory and written by one thread, so a call pays no system call for its log line."""

    def __init__(self, file: TextIO | None = None) -> None:
        self._file = file  # None: whatever sys.stderr is when a line is written (a test runner swaps it)
        self.lines: list[str] = []
        self.lock = threading.Lock()  # held to append a line and to take the gathered ones: none is lost between
        self.writing = threading.Lock()  # one flush writes at a time, so lines keep their order
        self.wake = threading.Event()
        threading.Thread(target=self._run, name="guard-log-writer", daemon=True).start()
        atexit.register(self.flush)

    def msg(self, message: str) -> None:
        with self.lock:
            self.lines.append(message)
        if '"level":"info"' not in message and '"level":"debug"' not in message:
            self.flush()  # warnings and errors are written at once

    def flush(self) -> None:
        with self.writing:
            with self.lock:  # only the swap is under the callers' lock: a slow disk never holds a call up
                lines, self.lines = self.lines, []
            if lines:
                self.file.write("\n".join(lines) + "\n")
                self.file.flush()

    @property
    def file(self) -> TextIO:
        return self._file if self._file is not None else sys.stderr

    def _run(self) -> None:
        while not self.wake.wait(FLUSH_SECONDS):
            self.flush()

    info = debug = warning = error = critical = exception = log = msg


_writer: _GatheringWriter | None = None


def flush() -> None:
    """Write whatever lines are gathered (for tests and orderly shutdown)."""
    if _writer is not None:
        _writer.flush()


def configure(level: str = "info", json: bool | None = None, user_id_key: bytes | None = None) -> None:
    """Configure structlog once; safe to call again (tests do). ``user_id_key`` set, user ids are logged hashed."""
    if json is None:
        json = not sys.stderr.isatty()
    global _writer, _user_id_key
    _user_id_key = user_id_key
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer(serializer=_orjson) if json else structlog.dev.ConsoleRenderer()
    )
    if json:
        if _writer is None:
            _writer = _GatheringWriter()
        writer = _writer
        factory: Any = lambda *_: writer  # noqa: E731 - structlog calls the factory with the logger's name
    else:
        factory = structlog.PrintLoggerFactory(file=sys.stderr)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _private,
            _bounded,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
        ),
        logger_factory=factory,
        cache_logger_on_first_use=False,
    )


def get(name: str) -> structlog.typing.FilteringBoundLogger:
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(name)
    return logger


class Condition:
    """A condition that lasts (Redis unreachable, the model failing): logged once when it starts, at ``level``,
    and once when it ends (at info, with how long it lasted and how often it was met), never once per call."""

    def __init__(self, logger: structlog.typing.FilteringBoundLogger, event: str, level: str = "error") -> None:
        self.logger = logger
        self.event = event
        self.level = level
        self.since = 0.0
        self.count = 0

    def met(self, **fields: Any) -> None:
        import time

        self.count += 1
        if self.count == 1:
            self.since = time.monotonic()
            getattr(self.logger, self.level)(self.event, **fields)

    def ended(self, **fields: Any) -> None:
        import time

        if self.count:
            self.logger.info(f"{self.event}_ended", lasted_s=round(time.monotonic() - self.since, 1), times=self.count,
                             **fields)
            self.count = 0

    @property
    def active(self) -> bool:
        return self.count > 0
