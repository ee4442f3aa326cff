"""Input rules shared by every entry point (gRPC, CLI, pages): pure functions, no I/O.

Each check raises ``InvalidArgument`` naming the field. Nothing a caller sent is
echoed back or logged at more than ``ECHO_CHARS`` characters, so an 8 KB value
cannot turn into an oversized status message or a megabyte log line.
"""

from __future__ import annotations

from collections.abc import Sequence

from guard.errors import InvalidArgument

MAX_ID_LENGTH = 128
MAX_SOURCE_LENGTH = 64
MAX_TEXT_CHARS = 2000
ECHO_CHARS = 64
# The protobuf Timestamp range ends at 9999-12-31T23:59:59Z.
MAX_TIMESTAMP_S = 253_402_300_799


def shown(value: object, limit: int = ECHO_CHARS) -> str:
    """A caller's value as an error message may quote it: repr, cut to ``limit`` characters."""
    text = value if isinstance(value, str) else str(value)
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}… ({len(text)} characters)"




def ascii_digits(text: str) -> bool:
    """Only the ASCII digits 0-9: ``str.isdigit`` also accepts ``²`` (which ``int`` refuses) and ``١`` (which ``int``
    reads as 1), so every number parsed from untrusted text is checked with this first."""
    return bool(text) and text.isascii() and text.isdigit()


def whole_number(raw: str, field_name: str, *, maximum: int) -> int:
    """A whole number between 0 and ``maximum`` written in ASCII digits, or ``InvalidArgument`` naming the field."""
    text = raw.strip()
    if not ascii_digits(text) or len(text) > len(str(maximum)) or int(text) > maximum:
        raise InvalidArgument(field_name, f"must be a whole number between 0 and {maximum} in the digits 0-9")
    return int(text)


def check_id(value: str, field_name: str, *, required: bool = True) -> str:
    """Ids are 1–128 characters with no white space, control characters or braces (braces are hash tags)."""
    if not value:
        if required:
            raise InvalidArgument(field_name, "is required")
        return value
    if len(value) > MAX_ID_LENGTH:
        raise InvalidArgument(field_name, f"is longer than {MAX_ID_LENGTH} characters ({len(value)})")
    # isprintable() is False for every control (C0 and C1), format, private-use and separator character
    # but the ASCII space, which is refused apart, as are braces (Redis Cluster hash tags).
    if not value.isprintable() or " " in value or "{" in value or "}" in value:
        raise InvalidArgument(field_name, "must not contain white space, control characters or braces")
    return value


def check_text(value: str, field_name: str, *, max_chars: int = MAX_TEXT_CHARS, required: bool = False) -> str:
    if required and not value.strip():
        raise InvalidArgument(field_name, "is required (and must not be only white space)")
    if len(value) > max_chars:
        raise InvalidArgument(field_name, f"is longer than {max_chars} characters ({len(value)})")
    return value


def check_word(value: str, field_name: str, *, max_chars: int = MAX_SOURCE_LENGTH, required: bool = True) -> str:
    """A short label such as a ledger source: an id, at most ``max_chars`` long."""
    if value and len(value) > max_chars:
        raise InvalidArgument(field_name, f"is longer than {max_chars} characters ({len(value)})")
    return check_id(value, field_name, required=required)


def check_page_size(value: int, field_name: str = "page_size", *, maximum: int = 500) -> int:
    if value < 0 or value > maximum:
        raise InvalidArgument(field_name, f"must be between 0 and {maximum} (0: the default), got {value}")
    return value


def timestamp_ms(seconds: int, nanos: int, field_name: str) -> int:
    """A protobuf Timestamp's parts as epoch milliseconds, or ``InvalidArgument`` when out of its range."""
    if not 0 <= nanos <= 999_999_999:
        raise InvalidArgument(field_name, f"nanos must be between 0 and 999999999, got {nanos}")
    if seconds < 0:
        raise InvalidArgument(field_name, "must not be before 1970")
    if seconds > MAX_TIMESTAMP_S:
        raise InvalidArgument(field_name, "must be before the year 10000")
    return seconds * 1000 + nanos // 1_000_000


def check_name(value: str, field_name: str, *, max_chars: int = MAX_ID_LENGTH) -> str:
    """A person's or client's free-form name (an actor): spaces allowed, control characters not."""
    if len(value) > max_chars:
        raise InvalidArgument(field_name, f"is longer than {max_chars} characters ({len(value)})")
    if any(not (ch.isprintable() or ch == " ") for ch in value):
        raise InvalidArgument(field_name, "must not contain control characters")
    return value


def by_user(user_ids: Sequence[str]) -> dict[str, list[int]]:
    """The positions of each user's items in a batch, in request order (a batch runs users at once, each in order)."""
    out: dict[str, list[int]] = {}
    for i, user in enumerate(user_ids):
        out.setdefault(user, []).append(i)
    return out
