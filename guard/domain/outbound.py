"""What guard tells other systems, by the Standard Webhooks specification: the envelope of an event, its signature
(``v1,`` HMAC-SHA256 over ``id.timestamp.body`` with a ``whsec_`` secret; every current secret signs while a rotation
overlaps) and when a failed delivery is tried again. Pure: the sending is ``guard.usecases.webhooks``'."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

EVENTS = ("task.opened", "task.claimed", "task.resolved", "brake.tripped", "brake.released")
VERSION = 1  # the body's format; a change that is not an addition makes a new version
FIRST_RETRY_MS = 5_000
MAX_RETRY_MS = 3_600_000
GIVE_UP_MS = 24 * 3_600_000  # a message failing this long is kept as failed and the next one goes


def secret_bytes(secret: str) -> bytes:
    if not secret.startswith("whsec_"):
        raise ValueError("a Standard Webhooks secret starts with whsec_")
    return base64.b64decode(secret[len("whsec_"):])


def signature(secret: str, msg_id: str, timestamp_s: int, body: bytes) -> str:
    mac = hmac.new(secret_bytes(secret), f"{msg_id}.{timestamp_s}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def headers(secrets: Sequence[str], msg_id: str, timestamp_s: int, body: bytes) -> dict[str, str]:
    """The three headers, signed by every secret given (the new and the old one while a rotation overlaps)."""
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp_s), "content-type": "application/json",
            "webhook-signature": " ".join(signature(s, msg_id, timestamp_s, body) for s in secrets)}


def message_id(tenant: str, entry_id: str) -> str:
    """Stable per event: the same event retried, or replayed, carries the same id (a receiver dedupes on it)."""
    return f"msg_{tenant}_{entry_id.replace('-', '_')}"


def body(msg_id: str, event_type: str, at_ms: int, tenant: str, data: Mapping[str, Any]) -> bytes:
    at = datetime.fromtimestamp(at_ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return json.dumps({"id": msg_id, "type": event_type, "timestamp": at, "tenant": tenant, "version": VERSION,
                       "data": dict(data)}, ensure_ascii=False, separators=(",", ":")).encode()


def retry_after_ms(attempt: int, jitter: float) -> int:
    """The wait before attempt ``attempt + 1`` (attempt 1 failed: 5 s), doubling to an hour, ``jitter`` in [0, 1)
    spreading it by up to a fifth either way so endpoints that fail together are not retried together."""
    base = min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** max(0, attempt - 1))
    return int(base * (0.8 + 0.4 * jitter))
