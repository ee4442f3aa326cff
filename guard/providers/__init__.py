"""What providers send guard, read without I/O: each provider's own proof that it sent the request, and its
payload's shape mapped onto guard's events.

A receiver (``guard.web.receivers``) hands the request here and applies what comes back through the same use
cases as the API (``guard.usecases.hooks``): a provider's delivery is a ``RecordEngagements`` event, its inbound
message a ``RecordReply``. Nothing here logs a body or keeps one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

# Every provider with a receiver, by the name in its route (/hooks/<tenant>/<name>); light enough for the CLI.
NAMES = ("sendgrid", "ses", "mailgun", "postmark", "twilio", "aliyun", "wecom")
# A provider's request older (or newer) than this is refused as stale: a replay of a captured request.
MAX_SKEW_MS = 5 * 60_000


@dataclass(frozen=True)
class Request:
    """What a receiver needs of an HTTP request: the URL the provider called (as configured in its console),
    the headers (lower-case names), the raw body, and the time it came."""

    url: str
    headers: Mapping[str, str]
    body: bytes
    now_ms: int
    form: Mapping[str, str] = field(default_factory=dict)  # a form-encoded body, parsed
    path_secret: str = ""  # a secret in the URL's path, for providers that do not sign (Aliyun)


@dataclass(frozen=True)
class Engagement:
    """A delivery, open, click, bounce, complaint or unsubscribe: ``RecordEngagements``'s event."""

    event_id: str  # the provider's own id: a retried webhook is applied once
    touch_id: str  # guard's touch, as the sender passed it to the provider ('' when it did not)
    user_id: str
    event: str  # guard's name: DELIVERED, OPENED, CLICKED, BOUNCED, SPAM_COMPLAINT, UNSUBSCRIBED
    occurred_ms: int
    channel: str
    detail: str = ""  # "hard" for a bounce that will not pass
    address: str = ""  # the recipient, to find the user when the sender passed no user_id


@dataclass(frozen=True)
class Inbound:
    """A message a person sent (an SMS reply): ``RecordReply``'s, found by the number it came from."""

    event_id: str
    address: str
    text: str
    channel: str
    received_ms: int
    user_id: str = ""


@dataclass(frozen=True)
class CarrierStop:
    """The carrier itself stopped (or restarted) messages to a number: every message on the channel stops."""

    event_id: str
    user_id: str
    address: str
    channel: str
    stop: bool  # False: START, the person opted back in at the carrier


@dataclass(frozen=True)
class ContactChange:
    """A customer removed the staff member from their contacts (WeCom ``del_follow_user``), or added them again."""

    event_id: str
    external_id: str  # the customer, as the platform names them (a contact point: wecom:<id>)
    staff: str
    deleted: bool
    at_ms: int


Item = Engagement | Inbound | CarrierStop | ContactChange


@dataclass(frozen=True)
class Parsed:
    items: list[Item]
    ignored: int = 0  # events guard has no use for (processed, deferred, sent ...)


class Refused(Exception):
    """The request is not applied. ``outcome`` is the metric's label; ``status`` the HTTP answer, chosen by what the
    provider does with it (a 4xx it will not retry where retrying cannot help)."""

    def __init__(self, outcome: str, status: int, message: str) -> None:
        super().__init__(message)
        self.outcome = outcome
        self.status = status


def forged(message: str = "the signature does not verify") -> Refused:
    return Refused("forged", 403, message)


def malformed(field_name: str, message: str) -> Refused:
    return Refused("malformed", 400, f"{field_name}: {message}")


def fresh(timestamp_ms: int, now_ms: int) -> None:
    if abs(now_ms - timestamp_ms) > MAX_SKEW_MS:
        raise Refused("stale", 403, "the timestamp is more than 5 minutes from now: a replayed or delayed request")
