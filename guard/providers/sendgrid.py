"""SendGrid's Event Webhook: an ECDSA P-256 signature over the timestamp and the raw body, a JSON array of events.

The sender carries guard's ids in the message's ``custom_args`` (``touch_id``, ``user_id``); SendGrid copies them
onto every event of that message. ``sg_event_id`` is each event's own id.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from guard.providers import Engagement, Item, Parsed, Request, forged, fresh, malformed

NAME = "sendgrid"
SECRETS = ("public_key",)  # the verification key of Settings → Mail Settings → Event Webhook (base64)
SIGNATURE = "x-twilio-email-event-webhook-signature"
TIMESTAMP = "x-twilio-email-event-webhook-timestamp"
MAX_EVENTS = 10_000

_SIMPLE = {"delivered": "DELIVERED", "open": "OPENED", "click": "CLICKED", "spamreport": "SPAM_COMPLAINT",
           "unsubscribe": "UNSUBSCRIBED", "group_unsubscribe": "UNSUBSCRIBED"}
# A dropped message says why: an address that bounced, reported spam or unsubscribed before.
_DROPPED = {"bounced address": ("BOUNCED", "hard"), "spam reporting address": ("SPAM_COMPLAINT", ""),
            "unsubscribed address": ("UNSUBSCRIBED", "")}


def public_key(text: str) -> ec.EllipticCurvePublicKey:
    """The key as SendGrid's console shows it (base64 of its DER form), or PEM."""
    text = text.strip()
    try:
        key = (serialization.load_pem_public_key(text.encode()) if text.startswith("-----")
               else serialization.load_der_public_key(base64.b64decode(text, validate=True)))
    except (ValueError, binascii.Error):
        raise ValueError("public_key: not an EC public key in base64 (as SendGrid's console shows it) or PEM") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise ValueError("public_key: SendGrid signs with ECDSA P-256; this key is another kind")
    return key


def verify(request: Request, secrets: Mapping[str, Sequence[str]]) -> Request:
    signature, stamp = request.headers.get(SIGNATURE, ""), request.headers.get(TIMESTAMP, "")
    if not signature or not stamp:
        raise forged(f"the {SIGNATURE} and {TIMESTAMP} headers are required")
    if not stamp.isascii() or not stamp.isdigit():
        raise forged(f"{TIMESTAMP}: seconds since 1970 are expected")
    fresh(int(stamp) * 1000, request.now_ms)
    try:
        raw = base64.b64decode(signature, validate=True)
    except binascii.Error:
        raise forged("the signature is not base64") from None
    for key in secrets["public_key"]:
        try:
            public_key(key).verify(raw, stamp.encode() + request.body, ec.ECDSA(hashes.SHA256()))
            return request
        except InvalidSignature:
            continue
    raise forged()


def _text(event: dict[str, Any], name: str, index: int, required: bool = False) -> str:
    value = event.get(name, "")
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise malformed(f"[{index}].{name}", "a string is expected")
    if required and value == "":
        raise malformed(f"[{index}].{name}", "is required")
    return str(value)


def parse(request: Request) -> Parsed:
    try:
        events = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        raise malformed("body", "a JSON array of events is expected") from None
    if not isinstance(events, list) or len(events) > MAX_EVENTS:
        raise malformed("body", f"a JSON array of at most {MAX_EVENTS} events is expected")
    items: list[Item] = []
    ignored = 0
    for i, event in enumerate(events):
        if not isinstance(event, dict):
            raise malformed(f"[{i}]", "an object is expected")
        kind = _text(event, "event", i, required=True)
        name, detail = _SIMPLE.get(kind, ""), ""
        if kind == "bounce":  # type "blocked" is a soft bounce (the receiving server refused for now)
            name, detail = ("BOUNCED", "hard") if event.get("type", "bounce") == "bounce" else ("", "")
        elif kind == "dropped":
            name, detail = _DROPPED.get(_text(event, "reason", i).strip().lower(), ("", ""))
        if not name:
            ignored += 1
            continue
        stamp = event.get("timestamp")
        if not isinstance(stamp, int) or isinstance(stamp, bool) or stamp <= 0:
            raise malformed(f"[{i}].timestamp", "seconds since 1970 are expected")
        items.append(Engagement(_text(event, "sg_event_id", i, required=True), _text(event, "touch_id", i),
                                _text(event, "user_id", i), name, stamp * 1000, "email", detail,
                                _text(event, "email", i)))
    return Parsed(items, ignored)
