"""Every Redis key guard uses, named in one place.

A user's keys share one hash tag, ``{tenant:user}``; a tenant's shared keys (the desk, the
campaign counters, the sweep's queue) share ``{tenant}``. So every script touches one slot
and runs unchanged on Redis Cluster.
"""

from __future__ import annotations

from dataclasses import dataclass

from guard.domain.types import RuleCheck

# Every kind of key a user has, after ``guard:{tenant:user}:``: whole names, and the starts of per-item names.
# Export and erasure find a user's keys by these (a test holds them to every name UserKeys gives).
USER_SUFFIXES = ("prefs", "consent", "hold", "touches", "replies", "unscored", "open_task", "marketing", "engagement",
                 "engagement:audit", "events:unmatched", "contacts")
USER_PREFIXES = ("touch:", "cap:", "reply:", "harmed:")


@dataclass(frozen=True)
class UserKeys:
    """Every key of one user. The braces make Redis Cluster hash them to one slot."""

    tenant: str
    user_id: str

    def _k(self, suffix: str) -> str:
        return f"guard:{{{self.tenant}:{self.user_id}}}:{suffix}"

    @property
    def prefs(self) -> str:
        return self._k("prefs")

    @property
    def consent(self) -> str:
        return self._k("consent")

    @property
    def hold(self) -> str:
        return self._k("hold")

    @property
    def touch_index(self) -> str:
        return self._k("touches")

    def touch(self, touch_id: str) -> str:
        return self._k(f"touch:{touch_id}")

    def cap(self, rule: RuleCheck) -> str:
        """The counter of one cap rule: per user, or per campaign/channel/category value (its group)."""
        return self._k(f"cap:{rule.rule_id}" + (f":{rule.group}" if rule.group else ""))

    @property
    def marketing(self) -> str:
        """The user's recorded marketing touches by time (the newest 64): what engagement tiers count."""
        return self._k("marketing")

    @property
    def engagement(self) -> str:
        """The user's last interaction and a manual tier calibration, if any."""
        return self._k("engagement")

    @property
    def engagement_audit(self) -> str:
        """Who calibrated the user's tier, when and why (the consent ledger's neighbour)."""
        return self._k("engagement:audit")

    @property
    def stray_events(self) -> str:
        """Engagement events for touches guard does not know, kept against the user."""
        return self._k("events:unmatched")

    @property
    def contacts(self) -> str:
        """The keyed hashes of the user's contact points (the tenant's index maps each back to the user)."""
        return self._k("contacts")

    @property
    def replies(self) -> str:
        return self._k("replies")

    @property
    def unscored(self) -> str:
        return self._k("unscored")

    @property
    def open_task(self) -> str:
        return self._k("open_task")

    def reply(self, reply_id: str) -> str:
        return self._k(f"reply:{reply_id}")

    def harmed(self, figure: str, campaign_id: str) -> str:
        """That this user already counted once in a campaign's ``figure`` (a negative reply): rates count people."""
        return self._k(f"harmed:{figure}:{campaign_id}")


@dataclass(frozen=True)
class TenantKeys:
    """Keys shared by a tenant (the recovery desk, campaign counters): one slot per tenant."""

    tenant: str

    def _k(self, suffix: str) -> str:
        return f"guard:{{{self.tenant}}}:{suffix}"

    @property
    def task_stream(self) -> str:
        return self._k("tasks:stream")

    @property
    def task_index(self) -> str:
        return self._k("tasks:index")

    @property
    def pending_replies(self) -> str:
        return self._k("replies:pending")

    @property
    def reply_texts(self) -> str:
        """Every stored reply's words by arrival time (``"<user> <reply>"``): what retention drops, oldest first."""
        return self._k("replies:texts")

    def task(self, task_id: str) -> str:
        return self._k(f"task:{task_id}")

    def task_replies(self, task_id: str) -> str:
        """The ids of every reply ever filed on a task (the task itself lists only the newest)."""
        return self._k(f"task:{task_id}:replies")

    def campaign(self, campaign_id: str) -> str:
        """A campaign's all-time figures."""
        return self._k(f"campaign:{campaign_id}")

    def totals(self, scope: str, name: str) -> str:
        """The all-time figures of a campaign (scope ``c``: ``campaign``) or a strategy (``s``)."""
        return self.campaign(name) if scope == "c" else self._k(f"strategy:{name}")

    def figures(self, scope: str, name: str, hour: int) -> str:
        """One hour's figures of a campaign (scope ``c``), a strategy (``s``) or the whole tenant (``t``)."""
        return self._k(f"fig:{scope}:{name}:{hour}")

    @property
    def brakes(self) -> str:
        """Campaigns (``c:<id>``) and strategies (``s:<id>``) braked now: what every serving process polls."""
        return self._k("brakes")

    @property
    def brakes_resumed(self) -> str:
        """When each was last resumed: a rule looks only at figures from then on."""
        return self._k("brakes:resumed")

    def hook_seen(self, provider: str, event_id: str) -> str:
        """A provider's event applied (its retries are applied once), or a signature token used (Mailgun)."""
        return self._k(f"hook:{provider}:{event_id}")

    def contact(self, digest: str) -> str:
        """The user behind one contact point, under a keyed hash of the normalised address (never the address)."""
        return self._k(f"contact:{digest}")

    def unmatched_inbound(self, digest: str) -> str:
        """Inbound messages from an address no user has yet (by its hash), kept until the address becomes known."""
        return self._k(f"inbound:{digest}")

    @property
    def brakes_audit(self) -> str:
        return self._k("brakes:audit")

    @property
    def outbox(self) -> str:
        """Events for the tenant's webhook endpoints (task.opened, brake.tripped ...), appended by the script that
        makes the change they report: a crash between the change and its event cannot lose the event."""
        return self._k("outbox")

    @property
    def webhooks(self) -> str:
        """The tenant's webhook endpoints: id → JSON (URL, events, secrets, delivery state)."""
        return self._k("webhooks")

    @property
    def webhooks_failed(self) -> str:
        """Deliveries given up on (bounded), for ``guard webhooks replay``."""
        return self._k("webhooks:failed")

    def figures_dirty(self, scope: str) -> str:
        """Campaigns (or strategies) a harm befell since the brake rules last looked at them."""
        return self._k(f"fig:{scope}:dirty")

    def figure_index(self, scope: str) -> str:
        """The campaigns (or strategies) with figures, by their latest hour with any."""
        return self._k(f"fig:{scope}:index")


@dataclass(frozen=True)
class ControlKeys:
    """The deployment's own records (tenants, API keys, tenants' policies): one slot, ``{control}``.

    No tenant can be named ``control``'s way into a user's slot: tenant names hold no colon or
    brace, so ``{control}`` never equals a ``{tenant:user}`` or ``{tenant}`` tag.
    """

    @staticmethod
    def _k(suffix: str) -> str:
        return f"guard:{{control}}:{suffix}"

    @property
    def revision(self) -> str:
        """Bumped by every change of a key or a policy: what serving processes poll."""
        return self._k("revision")

    @property
    def tenants(self) -> str:
        return self._k("tenants")

    @property
    def key_index(self) -> str:
        """Every key id, by creation time."""
        return self._k("keys")

    def key(self, key_id: str) -> str:
        return self._k(f"key:{key_id}")

    @property
    def policy_versions(self) -> str:
        return self._k("policy:versions")

    def policy(self, tenant: str) -> str:
        return self._k(f"policy:{tenant}")

    def link_secrets(self, tenant: str) -> str:
        """The secrets that sign a tenant's preference links: ``current`` names the one signing now."""
        return self._k(f"links:{tenant}")

    def hook_secrets(self, tenant: str) -> str:
        """The secrets a tenant's webhook receivers check providers' requests with: ``<provider>.<name>`` (current),
        ``…:previous`` and ``…:until`` (the previous one, accepted until then)."""
        return self._k(f"hooks:{tenant}")

    @property
    def store_identity(self) -> str:
        """The store's identity (id, when and how it was made): what a wiped or replaced store no longer has."""
        return self._k("store")

    @property
    def store_audit(self) -> str:
        """Every initialisation and adoption of the store, with who and why."""
        return self._k("store:audit")

    def desk_session(self, session_id: str) -> str:
        """A signed-in desk session (its key, tenant and agent), deleted at sign-out; it expires with its cookie."""
        return self._k(f"desk:session:{session_id}")

    def wording(self, version: str) -> str:
        """The words a consent page showed, stored once under their hash (the ledger names the hash)."""
        return self._k(f"wording:{version}")

    @property
    def web_secret(self) -> str:
        """The deployment's one secret for desk session cookies and form tokens (made on first use)."""
        return self._k("web:secret")


def shard_marker(tag: str) -> str:
    """The copy of the store's identity kept on one shard of a cluster (``tag`` hashes to a slot it serves)."""
    return f"guard:{{{tag}}}:store"
