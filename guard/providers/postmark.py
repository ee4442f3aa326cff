"""Postmark webhooks: HTTP basic auth (Postmark does not sign; the credentials go in the webhook's URL in its
console), one JSON event per request, ``RecordType`` naming its kind. The sender carries guard's ids in the
message's ``Metadata`` (``touch_id``, ``user_id``)."""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from guard.providers import Engagement, Parsed, Refused, Request, forged, malformed

NAME = "postmark"
SECRETS = ("basic_auth",)  # "user:password", as written into the webhook URL in Postmark's console
_TIMES = {"Delivery": "DeliveredAt", "Bounce": "BouncedAt", "SpamComplaint": "BouncedAt", "Open": "ReceivedAt",
          "Click": "ReceivedAt", "SubscriptionChange": "ChangedAt"}


def verify(request: Request, secrets: Mapping[str, Sequence[str]]) -> Request:
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("basic "):
        raise Refused("forged", 401, "HTTP basic auth is required (the user and password in Postmark's webhook URL)")
    try:
        given = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise forged("the basic auth header is not base64 of user:password") from None
    if not any(hmac.compare_digest(given.encode(), c.encode()) for c in secrets["basic_auth"]):
        raise Refused("forged", 401, "the user or password is wrong")
    return request


def _when(event: dict[str, Any], record: str) -> int:
    raw = event.get(_TIMES[record], "")
    try:
        return int(datetime.fromisoformat(str(raw).replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        raise malformed(_TIMES[record], "an ISO 8601 time is expected") from None


def parse(request: Request) -> Parsed:
    try:
        event = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        raise malformed("body", "a JSON object is expected") from None
    if not isinstance(event, dict):
        raise malformed("body", "a JSON object is expected")
    record = str(event.get("RecordType", ""))
    name, detail = {"Delivery": ("DELIVERED", ""), "Open": ("OPENED", ""), "Click": ("CLICKED", ""),
                    "SpamComplaint": ("SPAM_COMPLAINT", "")}.get(record, ("", ""))
    if record == "Bounce" and event.get("Type") == "HardBounce":
        name, detail = "BOUNCED", "hard"
    if record == "SubscriptionChange" and event.get("SuppressSending") is True:
        name = "UNSUBSCRIBED"
    if not name:
        return Parsed([], ignored=1)
    message = event.get("MessageID")
    if not isinstance(message, str) or not message:
        raise malformed("MessageID", "is required")
    metadata = event.get("Metadata") or {}
    if not isinstance(metadata, dict):
        raise malformed("Metadata", "an object is expected")
    at = _when(event, record)
    address = str(event.get("Recipient") or event.get("Email") or "")
    return Parsed([Engagement(f"{record}:{message}:{event.get('ID', at)}", str(metadata.get("touch_id", "")),
                              str(metadata.get("user_id", "")), name, at, "email", detail, address)])
