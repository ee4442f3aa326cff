"""WeChat Work (企业微信) callbacks: ``msg_signature`` (SHA-1 over the token, timestamp, nonce and the encrypted
message, sorted), the message AES-256-CBC encrypted with the EncodingAESKey, and a GET handshake when the URL is
saved in the admin console (decrypt ``echostr``, answer it).

The event guard acts on is ``change_external_contact``: ``del_follow_user`` (the customer deleted the staff member:
the strongest "stop" a private-domain customer can give) and ``add_external_contact`` (added again). The customer
is named by their ``external_userid``: set it as a contact point (``wecom:<external_userid>``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import replace
from urllib.parse import parse_qs, urlsplit

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from guard.providers import ContactChange, Parsed, Request, forged, fresh, malformed

NAME = "wecom"
SECRETS = ("token", "encoding_aes_key", "corp_id")
ANSWER = (b"success", "text/plain; charset=utf-8")  # what the receiver answers (body, media type)
_BLOCK = 32  # WeCom pads to 32 bytes (PKCS#7 with a 32-byte block)


def signature(token: str, timestamp: str, nonce: str, encrypted: str) -> str:
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, encrypted])).encode()).hexdigest()


def _key(encoding_aes_key: str) -> bytes:
    try:
        key = base64.b64decode(encoding_aes_key + "=", validate=True)
    except binascii.Error:
        raise ValueError("encoding_aes_key: the 43 characters the admin console shows are expected") from None
    if len(key) != 32:
        raise ValueError("encoding_aes_key: the 43 characters the admin console shows are expected")
    return key


def decrypt(encrypted: str, encoding_aes_key: str, corp_id: str) -> bytes:
    """The plain message; ``ValueError`` when it does not decrypt to one addressed to ``corp_id``."""
    key = _key(encoding_aes_key)
    try:
        raw = base64.b64decode(encrypted, validate=True)
    except binascii.Error:
        raise ValueError("not base64") from None
    if not raw or len(raw) % 16:
        raise ValueError("not a whole number of AES blocks")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    plain = decryptor.update(raw) + decryptor.finalize()
    pad = plain[-1]
    if not 1 <= pad <= _BLOCK or plain[-pad:] != bytes([pad]) * pad:
        raise ValueError("bad padding")
    plain = plain[16:-pad]  # 16 random bytes first
    if len(plain) < 4:
        raise ValueError("too short")
    (length,) = struct.unpack(">I", plain[:4])
    message, receiver = plain[4:4 + length], plain[4 + length:]
    if len(message) != length or not hmac.compare_digest(receiver, corp_id.encode()):
        raise ValueError("addressed to another corporation")
    return message


def _query(request: Request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(request.url).query).items()}


def _checked(request: Request, secrets: Mapping[str, Sequence[str]], encrypted: str) -> bytes:
    q = _query(request)
    stamp, nonce, given = q.get("timestamp", ""), q.get("nonce", ""), q.get("msg_signature", "")
    if not stamp.isascii() or not stamp.isdigit() or not nonce or not given:
        raise forged("msg_signature, timestamp and nonce are required in the URL")
    fresh(int(stamp) * 1000, request.now_ms)
    for token in secrets["token"]:
        if hmac.compare_digest(signature(token, stamp, nonce, encrypted), given):
            break
    else:
        raise forged()
    for aes_key in secrets["encoding_aes_key"]:
        try:
            return decrypt(encrypted, aes_key, secrets["corp_id"][0])
        except ValueError:
            continue
    raise forged("the message does not decrypt with this tenant's EncodingAESKey and corp id")


def handshake(request: Request, secrets: Mapping[str, Sequence[str]]) -> str:
    """The GET the admin console sends when the URL is saved: its ``echostr``, decrypted."""
    echo = _query(request).get("echostr", "")
    if not echo:
        raise malformed("echostr", "is required")
    return _checked(request, secrets, echo).decode("utf-8", "replace")


def _xml(data: bytes, where: str) -> ET.Element:
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise malformed(where, "XML with a DOCTYPE or entities is refused")
    try:
        return ET.fromstring(data)
    except ET.ParseError:
        raise malformed(where, "XML is expected") from None


def verify(request: Request, secrets: Mapping[str, Sequence[str]]) -> Request:
    encrypted = _xml(request.body, "body").findtext("Encrypt") or ""
    if not encrypted:
        raise forged("the body has no Encrypt element")
    return replace(request, body=_checked(request, secrets, encrypted))


def parse(request: Request) -> Parsed:
    event = _xml(request.body, "message")
    kind, change = event.findtext("Event") or "", event.findtext("ChangeType") or ""
    if kind != "change_external_contact" or change not in ("del_follow_user", "add_external_contact"):
        return Parsed([], ignored=1)
    customer, staff, created = (event.findtext(n) or "" for n in ("ExternalUserID", "UserID", "CreateTime"))
    if not customer:
        raise malformed("ExternalUserID", "is required")
    if not created.isascii() or not created.isdigit():
        raise malformed("CreateTime", "seconds since 1970 are expected")
    return Parsed([ContactChange(f"{change}:{customer}:{staff}:{created}", customer, staff,
                                 change == "del_follow_user", int(created) * 1000)])


