"""Preference links: a user's own page, reached by a signed, expiring address instead of an account.

Each tenant has its own signing secrets in the control records. Rotating makes a new secret sign
from then on while the older ones still verify (so links already mailed keep working until they
expire); retiring drops the older ones at once. Every process caches the secrets and forgets them
when the control revision moves; a token naming a secret this process has not seen yet makes it
read them again, so a rotation elsewhere never refuses a fresh link.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from guard import logs
from guard.access.keys import check_tenant
from guard.domain import clock, tokens
from guard.domain.clock import Clock
from guard.errors import InvalidArgument
from guard.store.control import ControlStore
from guard.validate import check_id, shown

log = logs.get("guard.usecases.links")

PURPOSE = "preferences"
CONFIRM_PURPOSE = "confirm-opt-in"  # another purpose: a preference link is never taken for a confirmation
CONFIRM_TTL_MS = 7 * 86_400_000
DEFAULT_TTL_MS = 30 * 86_400_000
MAX_TTL_MS = 366 * 86_400_000
MAX_SECRETS = 4  # kept per tenant: the one signing now and the three before it
LOCALES = ("en", "zh")
ONE_CLICK = "List-Unsubscribe=One-Click"  # RFC 8058's List-Unsubscribe-Post value (and the POST body)


@dataclass(frozen=True)
class Link:
    url: str
    unsubscribe_url: str
    expires_ms: int


@dataclass(frozen=True)
class Subject:
    """Whom a verified link names."""

    tenant: str
    user_id: str
    expires_ms: int
    topic: str = ""  # the topic of the message the link was put in: one-click closes only that topic by email
    campaign_id: str = ""  # the campaign of that message: the opt-out counts in its figures


def locale_of(value: str, field_name: str = "locale") -> str:
    """``en`` / ``zh`` from a locale or language tag (``zh-CN``, ``en_GB``); '' stays ''."""
    if not value:
        return ""
    lang = value.replace("_", "-").split("-", 1)[0].lower()
    if lang not in LOCALES:
        raise InvalidArgument(field_name, f"{shown(value)} is not a locale the pages speak ({', '.join(LOCALES)})")
    return lang


def new_secret_id(now_ms: int) -> str:
    """Time-ordered (the store keeps the newest), then random."""
    return f"{now_ms:012x}{secrets.token_hex(3)}"


class PreferenceLinks:
    def __init__(self, control: ControlStore, public_url: str, *, now: Clock = clock.system_clock) -> None:
        self.control = control
        self.public_url = public_url.rstrip("/")
        self.now = now
        self._secrets: dict[str, tuple[str, dict[str, bytes]]] = {}  # tenant -> (signing id, accepted by id)

    def forget(self) -> None:
        """The control revision moved: a rotation may have happened."""
        self._secrets.clear()

    async def _load(self, tenant: str) -> tuple[str, dict[str, bytes]]:
        found = await self.control.link_secrets(tenant)
        self._secrets[tenant] = found
        return found

    async def create(self, tenant: str, user_id: str, ttl_ms: int = 0, locale: str = "", *, topic: str = "",
                     campaign_id: str = "") -> Link:
        """A link to the user's page and its one-click address; ``topic`` and ``campaign_id`` (of the message the
        link goes in, checked by the caller against the tenant's policy) scope the one-click unsubscribe."""
        check_id(campaign_id, "campaign_id", required=False)
        scope = [topic, campaign_id] if topic or campaign_id else []  # a link from before scopes has neither
        token, query, expires = await self._sealed(PURPOSE, tenant, user_id, scope, ttl_ms, DEFAULT_TTL_MS, locale)
        return Link(f"{self.public_url}/p/{token}{query}", f"{self.public_url}/u/{token}", expires)

    async def create_confirmation(self, tenant: str, user_id: str, channel: str, ttl_ms: int = 0,
                                  locale: str = "") -> tuple[str, int]:
        """(the address, its expiry) of a confirmation page for an opt-in on ``channel`` (the caller checked it)."""
        token, query, expires = await self._sealed(CONFIRM_PURPOSE, tenant, user_id, [channel], ttl_ms, CONFIRM_TTL_MS,
                                                   locale)
        return f"{self.public_url}/c/{token}{query}", expires

    async def _sealed(self, purpose: str, tenant: str, user_id: str, fields: list[str], ttl_ms: int, default_ms: int,
                      locale: str) -> tuple[str, str, int]:
        """(the sealed token, the page's ?lang= query, the expiry) of a link for ``user_id``: the checks every
        link's request gets, then the tenant's current secret."""
        check_id(user_id, "user_id")
        if ttl_ms < 0 or ttl_ms > MAX_TTL_MS:
            raise InvalidArgument("ttl", f"must be between 1 second and 366 days (unset: {default_ms // 86_400_000} days)")
        lang = locale_of(locale)
        now = self.now()
        current, accepted = await self._signing(tenant, now)
        expires = now + (ttl_ms or default_ms)
        token = tokens.seal(purpose, [tenant, user_id, *fields], expires, current, accepted[current])
        return token, f"?lang={lang}" if lang else "", expires

    async def open_confirmation(self, token: str) -> tuple[Subject, str]:
        """(whom, which channel) a confirmation link names; raises ``tokens.BadToken``."""
        fields, expires = await self._verify(CONFIRM_PURPOSE, token)
        if len(fields) != 3:
            raise tokens.BadToken("malformed")
        return Subject(fields[0], fields[1], expires), fields[2]

    async def _signing(self, tenant: str, now: int) -> tuple[str, dict[str, bytes]]:
        current, accepted = self._secrets.get(tenant) or await self._load(tenant)
        if not current:
            await self.control.change_link_secret(tenant, "ensure", new_secret_id(now), secrets.token_bytes(32))
            current, accepted = await self._load(tenant)
        return current, accepted

    async def _verify(self, purpose: str, token: str) -> tuple[list[str], int]:
        secret_id = tokens.secret_id_of(token)
        try:
            tenant_hint = tokens.unverified_fields(token)[0]
            check_tenant(tenant_hint)
        except (tokens.BadToken, IndexError, InvalidArgument):
            raise tokens.BadToken("malformed") from None
        known = self._secrets.get(tenant_hint)
        if known is None or secret_id not in known[1]:
            known = await self._load(tenant_hint)
        fields, expires = tokens.verify(purpose, token, known[1], self.now())
        if not fields or fields[0] != tenant_hint:
            raise tokens.BadToken("malformed")
        return fields, expires

    async def open(self, token: str) -> Subject:
        """Whom a link names; raises ``tokens.BadToken`` for a forged, altered or expired one."""
        fields, expires = await self._verify(PURPOSE, token)
        if len(fields) not in (2, 4):
            raise tokens.BadToken("malformed")
        return Subject(fields[0], fields[1], expires, *fields[2:])

    async def rotate(self, tenant: str, retire_previous: bool) -> tuple[str, list[str]]:
        """(the id signing now, every accepted id)."""
        check_tenant(tenant)
        current = await self.control.change_link_secret(
            tenant, "rotate", new_secret_id(self.now()), secrets.token_bytes(32), retire_previous=retire_previous,
            keep=MAX_SECRETS)
        _, accepted = await self._load(tenant)
        log.info("link_secret_rotated", tenant=tenant, secret_id=current, retired_previous=retire_previous,
                 accepted=len(accepted))
        return current, sorted(accepted)
