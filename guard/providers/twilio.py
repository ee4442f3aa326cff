"""Twilio Messaging: ``X-Twilio-Signature`` (HMAC-SHA1 with the account's auth token over the URL Twilio called and
the sorted form parameters), status callbacks and inbound SMS on one route.

The sender sets each message's ``StatusCallback`` to guard's receiver URL with ``?touch_id=…&user_id=…``, so the
ids come back in the URL. An inbound SMS carries no ids: the number it came from finds the user. Twilio's own
opt-out handling reports a carrier-level STOP as ``OptOutType`` on the inbound message and as error 21610 on a
message sent to a number that had replied STOP.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from urllib.parse import parse_qs, urlsplit

from guard.providers import CarrierStop, Engagement, Inbound, Item, Parsed, Request, forged, malformed

NAME = "twilio"
SECRETS = ("auth_token",)
SIGNATURE = "x-twilio-signature"
STOPPED = "21610"  # "Attempt to send to unsubscribed recipient": the number replied STOP at the carrier
# Errors that say the number cannot receive SMS at all (not a passing failure): the channel is undeliverable.
HARD_ERRORS = frozenset({"21211", "21612", "21614", "30003", "30005", "30006"})
# What the receiver answers (body, media type): empty TwiML, so nothing is sent back to the person.
ANSWER = (b'<?xml version="1.0" encoding="UTF-8"?><Response></Response>', "text/xml")


def signature(auth_token: str, url: str, params: dict[str, str]) -> str:
    data = url + "".join(k + params[k] for k in sorted(params))
    return base64.b64encode(hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def verify(request: Request, secrets: Mapping[str, Sequence[str]]) -> Request:
    given = request.headers.get(SIGNATURE, "")
    if not given:
        raise forged(f"the {SIGNATURE} header is required")
    params = dict(request.form)
    if any(hmac.compare_digest(signature(t, request.url, params), given) for t in secrets["auth_token"]):
        return request
    raise forged()


def _query(url: str, name: str) -> str:
    values = parse_qs(urlsplit(url).query).get(name, [""])
    return values[0]


def parse(request: Request) -> Parsed:
    form = request.form
    sid = form.get("MessageSid") or form.get("SmsSid", "")
    if not sid:
        raise malformed("MessageSid", "is required")
    status = form.get("MessageStatus") or form.get("SmsStatus", "")
    touch_id, user_id = _query(request.url, "touch_id"), _query(request.url, "user_id")
    items: list[Item] = []
    if status and status != "received":  # a status callback of a message guard's sender sent
        error = form.get("ErrorCode", "")
        to = form.get("To", "")
        if status == "delivered":
            items.append(Engagement(f"{sid}:delivered", touch_id, user_id, "DELIVERED", request.now_ms, "sms",
                                    address=to))
        elif status in ("undelivered", "failed") and error == STOPPED:
            items.append(CarrierStop(f"{sid}:{error}", user_id, to, "sms", stop=True))
        elif status in ("undelivered", "failed") and error in HARD_ERRORS:
            items.append(Engagement(f"{sid}:{status}", touch_id, user_id, "BOUNCED", request.now_ms, "sms", "hard",
                                    address=to))
        return Parsed(items, ignored=0 if items else 1)
    sender = form.get("From", "")
    if not sender:
        raise malformed("From", "is required on an inbound message")
    opt = form.get("OptOutType", "").upper()
    if opt in ("STOP", "START"):
        return Parsed([CarrierStop(f"{sid}:{opt}", user_id, sender, "sms", stop=opt == "STOP")])
    if opt == "HELP":
        return Parsed([], ignored=1)
    body = form.get("Body", "")
    if not body.strip():
        return Parsed([], ignored=1)  # a picture message without words: nothing to read
    return Parsed([Inbound(sid, sender, body, "sms", request.now_ms, user_id)])
