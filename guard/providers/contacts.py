"""Contact points: a phone number in E.164 (through ``phonenumbers``) or an email address, trimmed and lower-cased,
and the keyed hash guard keeps of it instead of the address."""

from __future__ import annotations

import hashlib
import hmac

import phonenumbers

# A number written without its country code is read as Chinese (the playbook's market); write +CC for others.
DEFAULT_REGION = "CN"


def normalise(address: str) -> str:
    """``tel:+8613800000000``, ``mailto:alice@example.com`` or ``wecom:<external_userid>``; ``ValueError`` saying what
    is wrong otherwise."""
    text = address.strip()
    if text.startswith("wecom:"):  # a WeCom external_userid: the platform's own name for the customer, kept as is
        if not 6 < len(text) <= 70 or not text[6:].isascii() or not text[6:].isprintable() or " " in text:
            raise ValueError("a WeCom external_userid is expected after wecom:")
        return text
    if "@" in text:
        local, _, domain = text.rpartition("@")
        if not local or "." not in domain or any(c.isspace() for c in text) or len(text) > 254:
            raise ValueError("not an email address")
        return "mailto:" + text.lower()
    try:
        number = phonenumbers.parse(text, DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        raise ValueError("not a phone number (write it with its country code: +86…)") from None
    if not phonenumbers.is_possible_number(number):
        raise ValueError("not a possible phone number")
    return "tel:" + phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def digest(secret: bytes, tenant: str, address: str) -> str:
    """The index's name for an address: a keyed hash, so a copy of Redis does not give the addresses away."""
    return hmac.new(secret, f"{tenant}\0{normalise(address)}".encode(), hashlib.sha256).hexdigest()[:40]
