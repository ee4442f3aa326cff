"""Signed, expiring tokens: the preference links users get and the desk's session cookies.

Pure: no I/O. A token is ``<secret id>.<payload>.<mac>``, both parts base64url without padding;
the payload is the token's fields joined by a unit separator, the MAC an HMAC-SHA256 over the
purpose, the secret id and the payload. The purpose is in the MAC so that a token made for one
use (a desk session) is never accepted for another (a preference link). The payload carries
only what the holder is allowed to know: whom it names, and until when.

A *sealed* token (``seal``: ``e1.<first field>.<secret id>.<nonce and ciphertext>``) also hides its
fields: AES-256-GCM under a key drawn from the secret and the purpose, the purpose, the first field and
the secret id bound in as associated data. Only the first field (the tenant, which names whose secrets to
try) stays readable, so a link mailed to a person carries no user id in clear. ``verify`` takes both.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from collections.abc import Mapping, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_SEP = "\x1f"
MAX_TOKEN_CHARS = 2048
SEALED = "e1"
_NONCE = 12


class BadToken(ValueError):
    """Why a token was refused: ``malformed``, ``forged`` (altered, or signed by no secret in force) or ``expired``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(purpose: str, secret_id: str, payload: str, secret: bytes) -> str:
    message = f"{purpose}{_SEP}{secret_id}{_SEP}{payload}".encode("ascii")
    return _b64(hmac.new(secret, message, hashlib.sha256).digest())


def sign(purpose: str, fields: Sequence[str], expires_ms: int, secret_id: str, secret: bytes) -> str:
    if any(_SEP in f for f in fields) or "." in secret_id:
        raise ValueError("a token field holds a separator")
    payload = _b64(_SEP.join([*fields, str(expires_ms)]).encode("utf-8"))
    return f"{secret_id}.{payload}.{_mac(purpose, secret_id, payload, secret)}"


def _seal_key(purpose: str, secret: bytes) -> bytes:
    return hmac.new(secret, f"seal{_SEP}{purpose}".encode("ascii"), hashlib.sha256).digest()


def seal(purpose: str, fields: Sequence[str], expires_ms: int, secret_id: str, secret: bytes) -> str:
    """Like ``sign``, but every field after the first is encrypted, not only signed."""
    if not fields or any(_SEP in f for f in fields) or "." in secret_id or "." in fields[0] or not fields[0].isascii():
        raise ValueError("a token field holds a separator")
    nonce = os.urandom(_NONCE)
    aad = f"{purpose}{_SEP}{fields[0]}{_SEP}{secret_id}".encode("ascii")
    body = AESGCM(_seal_key(purpose, secret)).encrypt(nonce, _SEP.join([*fields[1:], str(expires_ms)]).encode("utf-8"),
                                                      aad)
    return f"{SEALED}.{fields[0]}.{secret_id}.{_b64(nonce + body)}"


def _open_sealed(purpose: str, parts: list[str], secrets: Mapping[str, bytes], now_ms: int) -> tuple[list[str], int]:
    _, first, secret_id, body = parts
    secret = secrets.get(secret_id)
    if secret is None:
        raise BadToken("forged")
    try:
        raw = _unb64(body)
    except (binascii.Error, ValueError):
        raise BadToken("malformed") from None
    if len(raw) <= _NONCE + 16:
        raise BadToken("malformed")
    aad = f"{purpose}{_SEP}{first}{_SEP}{secret_id}".encode("ascii")
    try:
        plain = AESGCM(_seal_key(purpose, secret)).decrypt(raw[:_NONCE], raw[_NONCE:], aad)
    except InvalidTag:
        raise BadToken("forged") from None
    try:
        *fields, expires = plain.decode("utf-8").split(_SEP)
        expires_ms = int(expires)
    except (UnicodeDecodeError, ValueError):
        raise BadToken("malformed") from None
    if now_ms >= expires_ms:
        raise BadToken("expired")
    return [first, *fields], expires_ms


def verify(purpose: str, token: str, secrets: Mapping[str, bytes], now_ms: int) -> tuple[list[str], int]:
    """(the fields, the expiry) of a token one of ``secrets`` signed (or sealed) for ``purpose``; raises BadToken."""
    parts = token.split(".") if 0 < len(token) <= MAX_TOKEN_CHARS and token.isascii() else []
    if len(parts) == 4 and parts[0] == SEALED and all(parts):
        return _open_sealed(purpose, parts, secrets, now_ms)
    if len(parts) != 3 or not all(parts):
        raise BadToken("malformed")
    secret_id, payload, mac = parts
    secret = secrets.get(secret_id)
    if secret is None or not hmac.compare_digest(mac.encode("ascii", "replace"),
                                                 _mac(purpose, secret_id, payload, secret).encode("ascii")):
        raise BadToken("forged")
    try:
        *fields, expires = _unb64(payload).decode("utf-8").split(_SEP)
        expires_ms = int(expires)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadToken("malformed") from None  # signed by us, so only another version could make this
    if now_ms >= expires_ms:
        raise BadToken("expired")
    return fields, expires_ms


def secret_id_of(token: str) -> str:
    """Which secret a token names (signed or sealed), before it is checked: to know whether it is one in hand."""
    parts = token.split(".")
    return parts[2] if len(parts) == 4 and parts[0] == SEALED else parts[0]


def unverified_fields(token: str) -> list[str]:
    """The fields of a token before its MAC is checked: only to choose which secrets to check it with (of a sealed
    token, only the first)."""
    parts = token.split(".") if 0 < len(token) <= MAX_TOKEN_CHARS and token.isascii() else []
    if len(parts) == 4 and parts[0] == SEALED and parts[1]:
        return [parts[1]]
    if len(parts) != 3:
        raise BadToken("malformed")
    try:
        return _unb64(parts[1]).decode("utf-8").split(_SEP)[:-1]
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadToken("malformed") from None


def tag(purpose: str, value: str, secret: bytes) -> str:
    """A keyed digest of ``value`` (a form's CSRF token is the tag of the session or link it belongs to)."""
    return _b64(hmac.new(secret, f"{purpose}{_SEP}{value}".encode(), hashlib.sha256).digest())[:32]


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8", "replace"), b.encode("utf-8", "replace"))
