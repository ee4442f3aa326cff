"""Plain data of the decision core: no I/O, no protobuf, no Redis.

Times are integer milliseconds since the Unix epoch (UTC) everywhere in the
core, so that the Lua script and this code compute with the same numbers.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class TouchClass(enum.Enum):
    MARKETING = "marketing"
    TRANSACTIONAL = "transactional"
    SERVICE = "service"


class Verdict(enum.Enum):
    ALLOW = "ALLOW"
    DEFER = "DEFER"
    BLOCK = "BLOCK"


class Reason(enum.Enum):
    FREQUENCY_CAP = "FREQUENCY_CAP"
    CHANNEL_OPTED_OUT = "CHANNEL_OPTED_OUT"
    CATEGORY_OPTED_OUT = "CATEGORY_OPTED_OUT"
    UNSUBSCRIBED = "UNSUBSCRIBED"
    QUIET_HOURS = "QUIET_HOURS"
    PAUSED = "PAUSED"
    NEGATIVE_SENTIMENT = "NEGATIVE_SENTIMENT"
    SENTIMENT_PENDING = "SENTIMENT_PENDING"
    STORE_UNAVAILABLE = "STORE_UNAVAILABLE"
    LOW_ENGAGEMENT = "LOW_ENGAGEMENT"
    UNDELIVERABLE = "UNDELIVERABLE"
    CAMPAIGN_FATIGUED = "CAMPAIGN_FATIGUED"
    STORE_RESET = "STORE_RESET"  # the store lost what guard wrote: decided outside the check script
    CONSENT_PENDING = "CONSENT_PENDING"  # opted back in on a channel that asks for a confirmation, not confirmed yet
    BEST_TIME = "BEST_TIME"  # the sender asked for the user's best hour (timing BEST_HOUR); it comes within 24 h


# Reasons that pass with time: a touch held back only by these is DEFERred; any other BLOCKs. Written here
# once: the check script is sent the blocking ones with the policy's part of its arguments.
DEFERRABLE = frozenset({Reason.FREQUENCY_CAP, Reason.QUIET_HOURS, Reason.PAUSED,
                        Reason.SENTIMENT_PENDING, Reason.STORE_UNAVAILABLE, Reason.LOW_ENGAGEMENT, Reason.STORE_RESET,
                        Reason.BEST_TIME})
BLOCKING = frozenset(r for r in Reason if r not in DEFERRABLE)


SCOPES = ("marketing", "all")  # how far a closed channel is closed


class Check(enum.Enum):
    """The checks a touch class is subject to (policy ``classes.<class>.checks``)."""

    UNSUBSCRIBED = "unsubscribed"
    CHANNEL = "channel"  # any channel the user closed, for marketing or for everything
    STOPPED_CHANNEL = "stopped_channel"  # only a channel closed for everything (a carrier STOP, "stop everything here")
    CATEGORY = "category"
    PAUSE = "pause"
    HOLD = "hold"
    QUIET_HOURS = "quiet_hours"
    CAPS = "caps"
    ENGAGEMENT = "engagement"  # the user's engagement tier (touches nobody opened demote it)
    BEST_TIME = "best_time"  # a sender may ask for the user's best hour (CheckTouch timing BEST_HOUR)


MINUTE_MS = 60_000
DAY_MS = 86_400_000


@dataclass(frozen=True)
class QuietHours:
    time_zone: str
    start_minute: int  # local minutes after midnight
    end_minute: int

    @property
    def empty(self) -> bool:
        return self.start_minute == self.end_minute


@dataclass(frozen=True)
class Preferences:
    channels: dict[str, bool] = field(default_factory=dict)
    # How far a closed channel is closed: "marketing" or "all". A channel closed before scopes existed has none
    # stored; it reads as its policy's ``scope_before`` (what the page said then).
    channel_scopes: dict[str, str] = field(default_factory=dict)
    categories: dict[str, bool] = field(default_factory=dict)
    # One topic on one channel, keyed "channel.topic": false closes it there ("promotions by SMS: off"), true opens
    # it there though the topic is closed elsewhere; absent, the topic's own setting holds.
    grid: dict[str, bool] = field(default_factory=dict)
    # Channels opted back into where the policy asks for a confirmation (confirm_opt_in), not confirmed yet.
    pending: dict[str, bool] = field(default_factory=dict)
    unsubscribed_all: bool = False
    quiet_hours: QuietHours | None = None
    paused_until_ms: int = 0
    max_marketing_per_week: int = 0
    version: int = 0
    updated_at_ms: int = 0


@dataclass(frozen=True)
class RuleCheck:
    """One cap rule as it applies to one touch, and the counter it counts in.

    ``group`` is empty for a per-user rule, else the campaign, channel or category value
    (``per`` in the policy): one counter per value. ``counter`` names the counter.
    """

    rule_id: str
    group: str
    limit: int
    window_ms: int
    shadow: bool = False

    @property
    def counter(self) -> tuple[str, str]:
        return (self.rule_id, self.group)


@dataclass(frozen=True)
class TierRule:
    """A cap of an engagement tier: at most ``limit`` marketing touches in any ``window_ms``."""

    rule_id: str
    limit: int
    window_ms: int


@dataclass(frozen=True)
class Tier:
    name: str
    after_ignored: int  # consecutive ignored marketing touches that put a user here
    rules: tuple[TierRule, ...] = ()
    shadow: bool = False  # counted and reported, never holding a touch back


@dataclass(frozen=True)
class EngagementPolicy:
    ignore_after_ms: int  # a marketing touch with no interaction this long after it is ignored
    tiers: tuple[Tier, ...]  # by after_ignored, the first at 0


@dataclass(frozen=True)
class Touch:
    user_id: str
    channel: str
    category: str
    campaign_id: str
    touch_id: str
    touch_class: TouchClass
    dry_run: bool
    at_ms: int
    high_value: bool = False  # the sender marks the user high-value (recovery tasks become P1)
    strategy_id: str = ""  # the layering strategy or journey the campaign belongs to
    timing: str = ""  # "best_hour": the sender asks for the user's most responsive hour in the next 24 h


@dataclass(frozen=True)
class CapUsage:
    rule_id: str
    limit: int
    used: int
    window_ms: int
    shadow: bool
    exceeded: bool


@dataclass(frozen=True)
class Outcome:
    verdict: Verdict
    reasons: tuple[Reason, ...]
    retry_at_ms: int | None  # DEFER (and a timed BLOCK): when the same touch would pass
    caps: tuple[CapUsage, ...]
    detail: str
    recorded: bool = False
    replayed: bool = False
    evaluated_at_ms: int = 0
    tier: str = ""  # the user's engagement tier at the touch ("" where the class does not check it)
