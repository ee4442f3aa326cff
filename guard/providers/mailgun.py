"""Mailgun webhooks: JSON ``{"signature": {timestamp, token, signature}, "event-data": {...}}``, the signature an
HMAC-SHA256 of timestamp + token with the account's webhook signing key. A token is accepted once (the receiver
remembers it), so a captured request cannot be replayed.

The sender carries guard's ids as ``v:touch_id`` / ``v:user_id`` (Mailgun's user-variables), which come back in
``event-data.user-variables``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from typing import Any

from guard.providers import Engagement, Parsed, Request, forged, fresh, malformed

NAME = "mailgun"
SECRETS = ("signing_key",)
_EVENTS = {"delivered": "DELIVERED", "opened": "OPENED", "clicked": "CLICKED", "complained": "SPAM_COMPLAINT",
           "unsubscribed": "UNSUBSCRIBED"}


def _body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        raise malformed("body", "a JSON object is expected") from None
    if not isinstance(body, dict) or not isinstance(body.get("signature"), dict) \
            or not isinstance(body.get("event-data"), dict):
        raise malformed("body", "an object with signature and event-data is expected")
    return body


def token_of(request: Request) -> str:
    """The signature's token: the receiver refuses one it has seen (a replay)."""
    return str(_body(request)["signature"].get("token", ""))


def verify(request: Request, secrets: Mapping[str, Sequence[str]]) -> Request:
    sig = _body(request)["signature"]
    stamp, token, given = (str(sig.get(k, "")) for k in ("timestamp", "token", "signature"))
    if not (stamp.isascii() and stamp.isdigit()) or not token or not given:
        raise forged("signature.timestamp, .token and .signature are required")
    fresh(int(stamp) * 1000, request.now_ms)
    for key in secrets["signing_key"]:
        mac = hmac.new(key.encode(), (stamp + token).encode(), hashlib.sha256).hexdigest()
        if hmac.compare_digest(mac, given):
            return request
    raise forged()


def parse(request: Request) -> Parsed:
    data = _body(request)["event-data"]
    kind = str(data.get("event", ""))
    name, detail = _EVENTS.get(kind, ""), ""
    if kind == "failed":
        name, detail = ("BOUNCED", "hard") if data.get("severity") == "permanent" else ("", "")
    if not name:
        return Parsed([], ignored=1)
    event_id, stamp = data.get("id"), data.get("timestamp")
    if not isinstance(event_id, str) or not event_id:
        raise malformed("event-data.id", "is required")
    if not isinstance(stamp, int | float) or isinstance(stamp, bool) or stamp <= 0:
        raise malformed("event-data.timestamp", "seconds since 1970 are expected")
    variables = data.get("user-variables") or {}
    if not isinstance(variables, dict):
        raise malformed("event-data.user-variables", "an object is expected")
    return Parsed([Engagement(event_id, str(variables.get("touch_id", "")), str(variables.get("user_id", "")), name,
                              int(stamp * 1000), "email", detail, str(data.get("recipient", "")))])
