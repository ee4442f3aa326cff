"""Amazon SES events through SNS: SNS signs each message with an RSA key whose certificate it names
(``SigningCertURL``); signature version 1 is SHA1withRSA, version 2 SHA256withRSA, over the message's fields in a
fixed order. The certificate is fetched by the receiver, only from an allowed host over HTTPS, and cached.

A ``SubscriptionConfirmation`` is confirmed (its ``SubscribeURL`` visited) only for the tenant's allowed topic
ARNs. A ``Notification``'s ``Message`` is the SES event, ``eventType`` (configuration sets) or the older
``notificationType`` (identity notifications). The sender carries guard's ids as SES message tags ``touch_id`` and
``user_id``.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from guard.providers import Engagement, Parsed, Refused, Request, forged, malformed

NAME = "ses"
SECRETS = ("topic_arns",)  # the SNS topics this tenant takes messages from, comma-separated
# SNS's own certificate hosts: sns.<region>.amazonaws.com (and .amazonaws.com.cn in China).
AWS_CERT_HOSTS = (".amazonaws.com", ".amazonaws.com.cn")
MAX_AGE_MS = 60 * 60_000  # SNS retries for up to an hour; an older message is a replay
_FIELDS = {"Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
           "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
           "UnsubscribeConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")}


def envelope(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        raise malformed("body", "an SNS message (JSON) is expected") from None
    if not isinstance(body, dict) or body.get("Type") not in _FIELDS:
        raise malformed("Type", "Notification, SubscriptionConfirmation or UnsubscribeConfirmation is expected")
    for name in ("MessageId", "TopicArn", "Timestamp", "Signature", "SigningCertURL"):
        if not isinstance(body.get(name), str) or not body[name]:
            raise malformed(name, "is required")
    return body


def allowed_url(url: str, hosts: Sequence[str]) -> bool:
    """An https URL on SNS's own hosts, or on one of ``hosts`` (``host[:port]``: an operator's explicit allowance)."""
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        return False
    netloc = parts.netloc.lower()
    if netloc in {h.lower() for h in hosts}:
        return True
    host = parts.hostname.lower()
    return parts.port in (None, 443) and host.startswith("sns.") and host.endswith(AWS_CERT_HOSTS)


def topics(secrets: Mapping[str, Sequence[str]]) -> set[str]:
    return {t.strip() for t in secrets["topic_arns"][0].split(",") if t.strip()}


def string_to_sign(body: Mapping[str, Any]) -> bytes:
    out = []
    for name in _FIELDS[body["Type"]]:
        if name == "Subject" and body.get("Subject") is None:
            continue
        out += [name, str(body.get(name, ""))]
    return ("\n".join(out) + "\n").encode()


def verify_with(request: Request, body: Mapping[str, Any], certificate_pem: bytes) -> None:
    """``Refused`` unless the certificate's key signed the message (version 1 or 2) within the hour."""
    try:
        signature = base64.b64decode(body["Signature"], validate=True)
        key = x509.load_pem_x509_certificate(certificate_pem).public_key()
    except (binascii.Error, ValueError):
        raise forged("the signature or the signing certificate cannot be read") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise forged("SNS signs with RSA; the certificate holds another kind of key")
    digest = {"1": hashes.SHA1(), "2": hashes.SHA256()}.get(str(body.get("SignatureVersion", "1")))
    if digest is None:
        raise forged("SignatureVersion 1 or 2 is expected")
    try:
        key.verify(signature, string_to_sign(body), padding.PKCS1v15(), digest)
    except InvalidSignature:
        raise forged() from None
    fresh_enough(body, request.now_ms)


def fresh_enough(body: Mapping[str, Any], now_ms: int) -> None:
    try:
        at = int(datetime.fromisoformat(str(body["Timestamp"]).replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        raise malformed("Timestamp", "an ISO 8601 time is expected") from None
    if at > now_ms + 5 * 60_000 or at < now_ms - MAX_AGE_MS:
        raise Refused("stale", 403, "the message is more than an hour old (or from the future): a replay")


def _ms(text: object, field_name: str) -> int:
    try:
        return int(datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        raise malformed(field_name, "an ISO 8601 time is expected") from None


def _tag(mail: Mapping[str, Any], name: str) -> str:
    values = (mail.get("tags") or {}).get(name) or []
    return str(values[0]) if isinstance(values, list) and values else ""


def parse(request: Request) -> Parsed:
    body = envelope(request)
    if body["Type"] != "Notification":
        return Parsed([], ignored=1)
    try:
        event = json.loads(body.get("Message", ""))
    except (ValueError, TypeError):
        raise malformed("Message", "an SES event (JSON) is expected") from None
    if not isinstance(event, dict) or not isinstance(event.get("mail"), dict):
        raise malformed("Message.mail", "is required")
    kind = str(event.get("eventType") or event.get("notificationType") or "")
    mail = event["mail"]
    touch_id, user_id = _tag(mail, "touch_id"), _tag(mail, "user_id")
    recipients = [str(r) for r in mail.get("destination") or []]
    at = _ms(mail.get("timestamp"), "Message.mail.timestamp")
    items: list[Engagement] = []

    def add(event_name: str, who: Sequence[str], when: int, detail: str = "") -> None:
        for address in who or [""]:  # SNS keeps a message's MessageId across its retries
            items.append(Engagement(f"{body['MessageId']}:{address}", touch_id, user_id, event_name, when, "email",
                                    detail, address))

    if kind == "Delivery":
        add("DELIVERED", recipients, _ms((event.get("delivery") or {}).get("timestamp", mail.get("timestamp")),
                                         "Message.delivery.timestamp"))
    elif kind == "Bounce" and (event.get("bounce") or {}).get("bounceType") == "Permanent":
        bounced = [str(r.get("emailAddress", "")) for r in event["bounce"].get("bouncedRecipients") or []]
        add("BOUNCED", bounced, _ms(event["bounce"].get("timestamp", mail.get("timestamp")), "Message.bounce.timestamp"),
            "hard")
    elif kind == "Complaint":
        complained = [str(r.get("emailAddress", "")) for r in (event.get("complaint") or {}).get("complainedRecipients")
                      or []]
        add("SPAM_COMPLAINT", complained, at)
    elif kind in ("Open", "Click"):
        add("OPENED" if kind == "Open" else "CLICKED", recipients[:1],
            _ms((event.get(kind.lower()) or {}).get("timestamp", mail.get("timestamp")), f"Message.{kind.lower()}.timestamp"))
    elif kind == "Subscription":
        add("UNSUBSCRIBED", recipients[:1], at)
    return Parsed(list(items), ignored=0 if items else 1)
