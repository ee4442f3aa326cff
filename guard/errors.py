"""Every typed failure of guard, in one place; the transport maps each to one gRPC status.

A failure names what happened, not where: the service raises ``InvalidArgument``
for bad input whichever layer found it, and the store raises ``StoreUnavailable``
for every driver error, so each status code is chosen in exactly one table.
"""

from __future__ import annotations


class GuardError(Exception):
    """The root of guard's own failures."""


class InvalidArgument(GuardError, ValueError):
    """Bad input; the message starts with the field's name so a caller knows what to fix."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name


class Conflict(GuardError):
    """Optimistic concurrency failed: ``expected_version`` is stale."""


class NotFound(GuardError, LookupError):
    """The named thing does not exist (for this tenant)."""


class PreconditionFailed(GuardError):
    """The thing exists but is in a state that forbids the call (claimed by another agent, resolved)."""


class StoreUnavailable(GuardError):
    """Redis could not be reached, answered with an error, or answered after the caller gave up."""


class StaleVersion(GuardError):
    """The preferences changed since the caller read them (``expected_version``)."""

    def __init__(self, current: int) -> None:
        super().__init__(f"preferences are at version {current}")
        self.current = current


class Unauthenticated(GuardError):
    """No API key, or one that is unknown or revoked."""


class PermissionDenied(GuardError):
    """The key is good but its roles do not reach this call (or this tenant)."""


class TooManyFailures(GuardError):
    """This address failed to authenticate too often; it may try again after ``retry_after_s``."""

    def __init__(self, retry_after_s: float) -> None:
        super().__init__(f"too many failed authentications from this address; try again in {retry_after_s:.0f}s")
        self.retry_after_s = retry_after_s
