"""Who may call what: roles, the grant an API key carries, the method table, key format, tenant names.

Pure: no I/O. The transport asks ``Grant.allows`` before it touches any data, so a
refusal never depends on (and so never reveals) whether a user or task exists.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from enum import StrEnum

from guard.errors import InvalidArgument, PermissionDenied
from guard.validate import check_id, shown

# The tenant of a single-tenant deployment: the admin key written on a first start belongs to it.
DEFAULT_TENANT = "default"


class Role(StrEnum):
    SENDER = "sender"
    PREFERENCES = "preferences"
    SUPPORT = "support"
    ADMIN = "admin"  # everything of its own tenant
    OPERATOR = "operator"  # keys and policies of every tenant; no user data


ROLE_NAMES = frozenset(r.value for r in Role)


_SENDER = frozenset({Role.SENDER, Role.ADMIN})
_PREFERENCES = frozenset({Role.PREFERENCES, Role.ADMIN})
_SUPPORT = frozenset({Role.SUPPORT, Role.ADMIN})
_ADMIN = frozenset({Role.ADMIN})
_PROVISIONING = frozenset({Role.ADMIN, Role.OPERATOR})

# The roles any one of which lets a key call a method. A method missing here is refused (fail closed);
# a test holds this table to the services' methods.
METHOD_ROLES: dict[str, frozenset[Role]] = {
    "CheckTouch": _SENDER, "CheckTouches": _SENDER, "CancelTouch": _SENDER, "RecordReply": _SENDER,
    "RecordEngagement": _SENDER, "RecordEngagements": _SENDER, "SetEngagementTier": _SUPPORT,
    "GetPreferences": _PREFERENCES, "UpdatePreferences": _PREFERENCES, "ListConsentEvents": _PREFERENCES,
    "GetUserState": _SUPPORT, "WatchRecoveryTasks": _SUPPORT, "ListRecoveryTasks": _SUPPORT,
    "ClaimRecoveryTask": _SUPPORT, "ResolveRecoveryTask": _SUPPORT,
    "GetCampaignHealth": _SUPPORT, "ListCampaignHealth": _SUPPORT, "GetExperienceHealth": _SUPPORT,
    "ExportUserData": _ADMIN, "EraseUser": _ADMIN, "ResumeCampaign": _ADMIN, "CreatePreferenceLink": _SENDER,
    "CreateConfirmationLink": _SENDER, "SetContactPoints": _SENDER,
    "CreateApiKey": _PROVISIONING, "ListApiKeys": _PROVISIONING, "RevokeApiKey": _PROVISIONING,
    "ApplyPolicy": _PROVISIONING, "GetPolicy": _PROVISIONING, "RotateLinkSecret": _PROVISIONING,
    "SetHookSecret": _PROVISIONING, "ListHookReceivers": _PROVISIONING,
    "AddWebhook": _PROVISIONING, "ListWebhooks": _PROVISIONING, "RemoveWebhook": _PROVISIONING,
    "RotateWebhookSecret": _PROVISIONING, "TestWebhook": _PROVISIONING, "ReplayWebhook": _PROVISIONING,
}


def methods_of(role: Role) -> list[str]:
    """The methods a key with ``role`` may call, in the table's order."""
    return [method for method, roles in METHOD_ROLES.items() if role in roles]


def role_table() -> str:
    """docs/api.md's role table, made from METHOD_ROLES (a test holds the docs and the proto to it)."""
    def listed(methods: list[str]) -> str:
        return ", ".join(f"`{m}`" for m in methods)

    others = {m for role in Role if role is not Role.ADMIN for m in methods_of(role)}
    rows = ["| role | may call |", "| --- | --- |"]
    for role in Role:
        if role is Role.ADMIN:
            own = [m for m in methods_of(role) if m not in others]
            text = f"everything the other roles may, for its own tenant only, and {listed(own)}"
        elif role is Role.OPERATOR:
            text = f"{listed(methods_of(role))}, naming any tenant (provisioning); no user data"
        else:
            text = listed(methods_of(role)) + ("; signing in to the desk pages" if role is Role.SUPPORT else "")
        rows.append(f"| `{role.value}` | {text} |")
    return "\n".join(rows)


@dataclass(frozen=True)
class Grant:
    """What one API key lets its holder do: one tenant, some roles."""

    key_id: str
    tenant: str
    roles: frozenset[Role]
    name: str

    def allows(self, method: str) -> bool:
        return not self.roles.isdisjoint(METHOD_ROLES.get(method, frozenset()))

    @property
    def agent(self) -> str:
        """The name the desk records this key's actions under: the key's name made an id, else its public id.

        Two keys may share a name; what a task records as the actor is the key id beside it.
        """
        cleaned = re.sub(r"[\s{}]+", "-", self.name.strip())[:64].strip("-")
        return cleaned if cleaned and cleaned.isprintable() else self.key_id

    def acting_agent(self, asked: str) -> str:
        """The agent a desk call acts as: always the key's; a request naming another is refused."""
        check_id(asked, "agent", required=False)
        if asked and asked != self.agent:
            raise PermissionDenied(f"agent: this key acts as {shown(self.agent)}, not {shown(asked)}; the acting agent "
                                   "comes from the key (leave agent empty)")
        return self.agent

    def may_act_for(self, tenant: str) -> bool:
        """Provisioning calls name a tenant; only an operator names another than its own."""
        return tenant == self.tenant or Role.OPERATOR in self.roles


_TENANT = re.compile(r"^[a-z0-9][a-z0-9_-]{0,47}$")


def check_tenant(value: str, field_name: str = "tenant") -> str:
    """Tenant names go into every Redis key's hash tag: no colon or brace, so no tenant reaches another's slot."""
    if not _TENANT.match(value):
        raise InvalidArgument(field_name, f"{shown(value)} is not a tenant name (lower-case letters, digits, '-' and "
                                          "'_', at most 48, starting with a letter or digit)")
    return value


def parse_roles(values: list[str], field_name: str = "roles") -> frozenset[Role]:
    if not values:
        raise InvalidArgument(field_name, f"name at least one role ({', '.join(r.value for r in Role)})")
    out = set()
    for value in values:
        try:
            out.add(Role(value.strip().lower()))
        except ValueError:
            raise InvalidArgument(field_name, f"unknown role {shown(value)} (known: "
                                              f"{', '.join(r.value for r in Role)})") from None
    return frozenset(out)


KEY_PREFIX = "gk_"


@dataclass(frozen=True)
class NewKey:
    secret: str  # given to the caller once; guard keeps only ``digest``
    key_id: str
    digest: str


def digest_of(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def key_id_of(digest: str) -> str:
    """The public name of a key: the first 16 hex digits of its hash (reveals nothing of the key)."""
    return digest[:16]


def new_key() -> NewKey:
    return key_of(KEY_PREFIX + secrets.token_urlsafe(32))


def key_of(secret: str) -> NewKey:
    """A key's record parts from its secret (a kept ``admin.key`` registered again)."""
    digest = digest_of(secret)
    return NewKey(secret, key_id_of(digest), digest)


def same_digest(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("ascii", "replace"), b.encode("ascii", "replace"))


def bearer(value: str) -> str:
    """The key in an ``authorization`` value: ``Bearer <key>`` (the scheme in any case); '' when malformed."""
    scheme, _, token = value.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


class FailureLimiter:
    """Failed authentications per peer address: a token bucket of ``per_minute``, refilled evenly.

    Only failures are counted, and a key is checked before the bucket is asked, so a valid key is never
    refused by it: an address out of tokens gets RESOURCE_EXHAUSTED for a bad key instead of
    UNAUTHENTICATED, which keeps guessing slow.
    """

    MAX_PEERS = 10_000

    def __init__(self, per_minute: int) -> None:
        self.capacity = float(max(1, per_minute))
        self.rate = self.capacity / 60.0
        self._buckets: dict[str, tuple[float, float]] = {}  # peer -> (tokens, at)

    def _tokens(self, peer: str, now: float) -> float:
        tokens, at = self._buckets.get(peer, (self.capacity, now))
        return min(self.capacity, tokens + (now - at) * self.rate)

    def blocked(self, peer: str, now: float) -> float:
        """Seconds until ``peer`` may try again; 0 when it may now."""
        tokens = self._tokens(peer, now)
        return 0.0 if tokens >= 1 else (1 - tokens) / self.rate

    def failed(self, peer: str, now: float) -> None:
        if len(self._buckets) >= self.MAX_PEERS and peer not in self._buckets:
            self._buckets = {p: v for p, v in self._buckets.items() if self._tokens(p, now) < self.capacity}
        self._buckets[peer] = (max(0.0, self._tokens(peer, now) - 1), now)


def peer_host(peer: str) -> str:
    """gRPC's ``ipv4:10.0.0.1:5000`` / ``ipv6:[::1]:5000`` without the port: one bucket per address."""
    kind, _, rest = peer.partition(":")
    if kind in ("ipv4", "ipv6"):
        return rest.rpartition(":")[0] or rest
    return peer
