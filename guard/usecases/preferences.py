"""The user's preference panel and the consent ledger: read, change (whole or not at all), list.

Every change is compare-and-set on the preference document's version and appends one ledger
line per changed field in the same script, so the document and its history never disagree.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from guard import logs
from guard.domain import clock
from guard.domain.clock import Clock
from guard.domain.types import SCOPES, Preferences, QuietHours
from guard.errors import Conflict, InvalidArgument, StaleVersion, StoreUnavailable
from guard.policy import Policy
from guard.store.keys import UserKeys
from guard.store.redis_store import RedisStore
from guard.validate import check_id, check_name, check_page_size, check_word, shown

log = logs.get("guard.usecases.preferences")

MAX_MASK_PATHS = 64
# A pause longer than this is an unsubscribe; it also keeps every answer's times inside protobuf's range.
MAX_PAUSE_MS = 10 * 366 * 86_400_000
PREFERENCE_PATHS = ("channels", "categories", "grid", "unsubscribed_all", "quiet_hours", "paused_until",
                    "max_marketing_per_week")
MAPS = ("channels", "categories", "grid")
CONFIRMATION = "confirmation"  # the source of a confirmed opt-in (through the link guard made)
FROM_THE_CHANNEL = ("keyword", CONFIRMATION)  # an opt-in that needs no confirmation: it came through the channel
_STREAM_ID = re.compile(r"([0-9]{1,20})-([0-9]{1,20})")
_U64 = 2**64 - 1


@dataclass(frozen=True)
class PreferencesPatch:
    """The values of an UpdatePreferences call; only ``paths`` are applied."""

    paths: Sequence[str]
    channels: Mapping[str, bool] = field(default_factory=dict)
    categories: Mapping[str, bool] = field(default_factory=dict)
    grid: Mapping[str, bool] = field(default_factory=dict)  # "channel.topic" -> open there or not
    # How far closing a channel named here reaches ("marketing" or "all"); absent: the policy's for the source.
    channel_scopes: Mapping[str, str] = field(default_factory=dict)
    unsubscribed_all: bool = False
    quiet_hours: tuple[str, str, str] | None = None  # (time_zone, start, end); None clears
    paused_until_ms: int = 0
    max_marketing_per_week: int = 0


@dataclass(frozen=True)
class ConsentEvent:
    at_ms: int
    source: str
    actor: str
    field: str
    old_value: str
    new_value: str
    version: int
    cursor: str
    # How the wish was expressed: page, wording (the version of the words the person saw), lang, ip (as the
    # policy's privacy.ip keeps it), ua (the browser's family), provider, provider_event, key (the API key's id).
    evidence: Mapping[str, str] = dataclasses.field(default_factory=dict)


EVIDENCE_KEYS = ("page", "wording", "lang", "ip", "ua", "provider", "provider_event", "key")


def prefs_from_doc(doc: Mapping[str, Any]) -> Preferences:
    quiet = doc.get("quiet")
    return Preferences(
        channels=dict(doc.get("channels") or {}),
        channel_scopes=dict(doc.get("scopes") or {}),
        categories=dict(doc.get("categories") or {}),
        grid=dict(doc.get("grid") or {}),
        pending=dict(doc.get("pending") or {}),
        unsubscribed_all=bool(doc.get("unsubscribed_all", False)),
        quiet_hours=QuietHours(quiet["tz"], int(quiet["start"]), int(quiet["end"])) if quiet else None,
        paused_until_ms=int(doc.get("paused_until", 0)),
        max_marketing_per_week=int(doc.get("max_week", 0)),
        version=int(doc.get("version", 0)),
        updated_at_ms=int(doc.get("updated_at", 0)),
    )


def _quiet_doc(quiet: QuietHours) -> dict[str, Any]:
    """Stored by zone name only: offsets are computed when a touch is checked, from the tzdata then current."""
    return {"tz": quiet.time_zone, "start": quiet.start_minute, "end": quiet.end_minute}


def _public(prefs: Preferences, path: str) -> Any:
    """A preference value as the ledger shows it (JSON-friendly)."""
    if path.startswith("channels."):
        return prefs.channels.get(path.split(".", 1)[1])
    if path.startswith("categories."):
        return prefs.categories.get(path.split(".", 1)[1])
    if path.startswith("grid."):
        return prefs.grid.get(path.split(".", 1)[1])
    if path == "quiet_hours":
        q = prefs.quiet_hours
        return (
            None
            if q is None
            else {"time_zone": q.time_zone, "start": clock.format_hhmm(q.start_minute), "end": clock.format_hhmm(q.end_minute)}
        )
    return {
        "unsubscribed_all": prefs.unsubscribed_all,
        "paused_until": prefs.paused_until_ms,
        "max_marketing_per_week": prefs.max_marketing_per_week,
    }[path]


def _evidence(raw: str) -> dict[str, str]:
    try:
        found = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}


class PreferenceService:
    def __init__(self, policy: Policy, store: RedisStore, *, now: Clock = clock.system_clock,
                 tenant: str = "default") -> None:
        self.policy = policy
        self.store = store
        self.now = now
        self.tenant = tenant

    def keys(self, user_id: str) -> UserKeys:
        return UserKeys(self.tenant, user_id)

    async def get_preferences(self, user_id: str) -> Preferences:
        check_id(user_id, "user_id")
        return prefs_from_doc(await self.store.read_preferences(self.keys(user_id)))

    def _validate_patch(self, patch: PreferencesPatch) -> list[str]:
        """The mask, expanded and checked; map paths may name one key (``channels.sms``).

        Only what the mask names is read, so a value outside it is ignored, never refused (AIP-134).
        """
        if not patch.paths:
            raise InvalidArgument("update_mask", "is required (name the fields to change, or '*')")
        if len(patch.paths) > MAX_MASK_PATHS:
            raise InvalidArgument("update_mask", f"names {len(patch.paths)} paths; at most {MAX_MASK_PATHS}")
        paths: list[str] = []
        for raw in patch.paths:
            if raw == "*":
                paths += [p for p in PREFERENCE_PATHS if p not in paths]
                continue
            head, dot, key = raw.partition(".")
            if head not in PREFERENCE_PATHS or (dot and head not in MAPS):
                raise InvalidArgument(
                    "update_mask",
                    f"unknown path {shown(raw)} (known: {', '.join(PREFERENCE_PATHS)}, channels.<name>, categories.<name>, "
                    "grid.<channel>.<topic>)",
                )
            if dot and head == "grid":
                self._check_cell(key, "update_mask")
            elif dot:
                known = self.policy.channels if head == "channels" else self.policy.categories
                if key not in known:
                    what = f"unknown {head[:-1]} {shown(key)}" if key else f"path {shown(raw)} names no {head[:-1]}"
                    raise InvalidArgument("update_mask", f"{what} (known: {', '.join(sorted(known))})")
            if raw not in paths:
                paths.append(raw)
        for name, values, known in (
            ("channels", patch.channels, self.policy.channels),
            ("categories", patch.categories, self.policy.categories),
        ):
            if name in paths:  # the whole map is replaced: every key in it must be known
                for key in values:
                    if key not in known:
                        raise InvalidArgument(f"preferences.{name}", f"unknown {name[:-1]} {shown(key)} "
                                                                     f"(known: {', '.join(sorted(known))})")
        for name, scope in patch.channel_scopes.items():
            named = "channels" in paths or f"channels.{name}" in paths
            if name not in self.policy.channels:
                raise InvalidArgument("preferences.channel_scopes", f"unknown channel {shown(name)} "
                                                                    f"(known: {', '.join(sorted(self.policy.channels))})")
            if named and scope not in SCOPES:
                raise InvalidArgument(f"preferences.channel_scopes.{name}",
                                      f"unknown scope {shown(scope)} (known: {', '.join(SCOPES)})")
            if named and scope == "all" and not self.policy.channels[name].stop_all:
                raise InvalidArgument(f"preferences.channel_scopes.{name}",
                                      f"the policy does not offer stopping every message on {name}; "
                                      "closing it stops marketing")
        if "grid" in paths:  # the whole grid is replaced: every cell must name a known channel and topic
            for cell in patch.grid:
                self._check_cell(cell, "preferences.grid")
        if patch.quiet_hours is not None and "quiet_hours" in paths:
            tz, start, end = patch.quiet_hours
            try:
                clock.zone(tz)
            except ValueError as exc:
                raise InvalidArgument("preferences.quiet_hours.time_zone", str(exc)) from None
            for name, value in (("start", start), ("end", end)):
                try:
                    clock.parse_hhmm(value)
                except ValueError as exc:
                    raise InvalidArgument(f"preferences.quiet_hours.{name}", str(exc)) from None
        if "max_marketing_per_week" in paths and not 0 <= patch.max_marketing_per_week <= 1000:
            raise InvalidArgument("preferences.max_marketing_per_week", "must be between 0 and 1000 (0: none)")
        if "paused_until" in paths:
            if patch.paused_until_ms < 0:
                raise InvalidArgument("preferences.paused_until", "must not be before 1970")
            if patch.paused_until_ms > self.now() + MAX_PAUSE_MS:
                raise InvalidArgument("preferences.paused_until",
                                      "lies more than 10 years ahead; to stop marketing for good, unsubscribe")
        return paths

    def _check_cell(self, cell: str, field_name: str) -> None:
        """A grid cell is "channel.topic", both known to the policy."""
        channel, _, topic = cell.partition(".")
        if channel not in self.policy.channels:
            raise InvalidArgument(field_name, f"grid cell {shown(cell)}: unknown channel {shown(channel)} "
                                              f"(known: {', '.join(sorted(self.policy.channels))})")
        if topic not in self.policy.categories:
            raise InvalidArgument(field_name, f"grid cell {shown(cell)}: unknown topic {shown(topic)} "
                                              f"(known: {', '.join(sorted(self.policy.categories))})")

    def _apply(self, doc: dict[str, Any], paths: Sequence[str], patch: PreferencesPatch, source: str) -> dict[str, Any]:
        new: dict[str, Any] = json.loads(json.dumps(doc))
        before = dict(doc.get("channels") or {})
        for path in paths:
            head, _, key = path.partition(".")
            if head in MAPS:
                values = {"channels": patch.channels, "categories": patch.categories, "grid": patch.grid}[head]
                current = dict(new.get(head) or {})
                if key:
                    if key in values:
                        current[key] = bool(values[key])
                    else:
                        current.pop(key, None)  # absent in the request: back to the policy default
                else:
                    current = {k: bool(v) for k, v in values.items()}
                new[head] = current
            elif head == "unsubscribed_all":
                new["unsubscribed_all"] = patch.unsubscribed_all
            elif head == "quiet_hours":
                if patch.quiet_hours is None:
                    new.pop("quiet", None)
                else:
                    tz, start, end = patch.quiet_hours
                    new["quiet"] = _quiet_doc(QuietHours(tz, clock.parse_hhmm(start), clock.parse_hhmm(end)))
            elif head == "paused_until":
                new["paused_until"] = patch.paused_until_ms
            elif head == "max_marketing_per_week":
                new["max_week"] = patch.max_marketing_per_week
        if any(p == "channels" or p.startswith("channels.") for p in paths):
            after = dict(new.get("channels") or {})
            new["scopes"] = self._scopes(before, after, dict(doc.get("scopes") or {}), paths, patch, source)
            new["pending"] = self._pending(before, after, dict(doc.get("pending") or {}), paths, source)
            for key in ("scopes", "pending"):
                if not new[key]:
                    new.pop(key)
        return new

    def _pending(self, before: Mapping[str, bool], after: Mapping[str, bool], stored: Mapping[str, bool],
                 paths: Sequence[str], source: str) -> dict[str, bool]:
        """Channels opted back into that wait for the person's confirmation: reopened where the policy asks for one
        (confirm_opt_in), unless the wish came through the channel itself (a START reply) or is the confirmation;
        a closed channel, or a confirmed one, waits for nothing."""
        pending = {name: True for name, waiting in stored.items() if waiting and after.get(name, True)}
        for name, is_open in after.items():
            named = "channels" in paths or f"channels.{name}" in paths
            if not named or not is_open:
                continue
            if source == CONFIRMATION:
                pending.pop(name, None)
            elif (before.get(name, True) is False and self.policy.channels[name].confirm_opt_in
                  and source not in FROM_THE_CHANNEL):
                pending[name] = True
        return pending

    async def confirm(self, user_id: str, channel: str, evidence: Mapping[str, str] | None = None) -> Preferences:
        """The person confirms opting back in on ``channel`` (the link guard made for them); ledgered with how."""
        return await self.update_preferences(user_id, PreferencesPatch(paths=[f"channels.{channel}"],
                                                                       channels={channel: True}),
                                             source=CONFIRMATION, actor="self", expected_version=None,
                                             evidence=evidence)

    def _scopes(self, before: Mapping[str, bool], after: Mapping[str, bool], stored: Mapping[str, str],
                paths: Sequence[str], patch: PreferencesPatch, source: str) -> dict[str, str]:
        """How far each closed channel is closed: a channel closed now gets the scope the change asks for, else the
        policy's for its source; closing a closed channel again widens it when the source means everything (an SMS
        STOP after an unsubscribe); one that stays closed keeps its own (none, for a closing from before scopes:
        it keeps reading as the policy's ``scope_before``); an open channel has none."""
        scopes: dict[str, str] = {}
        for name, is_open in after.items():
            if is_open:
                continue
            named = "channels" in paths or f"channels.{name}" in paths
            implied = self.policy.channels[name].scope_for(source)
            if named and name in patch.channel_scopes:  # said explicitly: wider or narrower
                scopes[name] = patch.channel_scopes[name]
            elif named and before.get(name, True):  # closed now
                scopes[name] = implied
            elif named and implied == "all":  # already closed, and now a STOP: it widens, never narrows by itself
                scopes[name] = "all"
            elif name in stored:
                scopes[name] = stored[name]
        return scopes

    async def update_preferences(
        self, user_id: str, patch: PreferencesPatch, *, source: str, actor: str, expected_version: int | None,
        evidence: Mapping[str, str] | None = None,
    ) -> Preferences:
        check_id(user_id, "preferences.user_id")
        if not source:
            raise InvalidArgument("source", "is required: a short word such as user, support, import")
        check_word(source, "source")
        check_name(actor, "actor")
        if expected_version is not None and expected_version < 0:
            raise InvalidArgument("expected_version", "must not be negative")
        paths = self._validate_patch(patch)
        proof = {k: str(v)[:256] for k, v in (evidence or {}).items() if k in EVIDENCE_KEYS and v}
        keys = self.keys(user_id)
        for _ in range(20):
            doc = await self.store.read_preferences(keys)
            now = self.now()
            old = prefs_from_doc(doc)
            new_doc = self._apply(doc, paths, patch, source)
            new = prefs_from_doc(new_doc)
            changed = self._changes(old, new, paths)
            if not changed:
                if expected_version is not None and expected_version != old.version:
                    raise Conflict(f"preferences are at version {old.version}, not {expected_version}")
                return old
            version = old.version + 1
            new_doc["version"], new_doc["updated_at"] = version, now
            events = [
                {
                    "at": str(now),
                    "source": source,
                    "actor": actor,
                    "field": path,
                    "old": json.dumps(before, ensure_ascii=False),
                    "new": json.dumps(after, ensure_ascii=False),
                    "version": str(version),
                    **({"evidence": json.dumps(proof, ensure_ascii=False, sort_keys=True)} if proof else {}),
                }
                for path, before, after in changed
            ]
            try:
                written = await self.store.write_preferences(keys, old.version, expected_version, new_doc, events)
            except StaleVersion as exc:
                raise Conflict(f"{exc}, not {expected_version}") from None
            if written:
                log.info("preferences_updated", fields=[c[0] for c in changed], source=source, version=version)
                return prefs_from_doc(new_doc)
        raise StoreUnavailable("preferences kept changing under concurrent writers; try again")

    @staticmethod
    def _changes(old: Preferences, new: Preferences, paths: Sequence[str]) -> list[tuple[str, Any, Any]]:
        out: list[tuple[str, Any, Any]] = []
        for path in paths:
            if path in MAPS:
                before, after = getattr(old, path), getattr(new, path)
                for key in sorted(set(before) | set(after)):
                    if before.get(key) != after.get(key):
                        out.append((f"{path}.{key}", before.get(key), after.get(key)))
            else:
                a, b = _public(old, path), _public(new, path)
                if a != b:
                    out.append((path, a, b))
            if path == "channels" or path.startswith("channels."):
                # How far a closing reaches, and a wait for confirmation, change with the channel: ledgered too.
                for side in ("channel_scopes", "pending"):
                    before, after = getattr(old, side), getattr(new, side)
                    names = sorted(set(before) | set(after)) if path == "channels" else [path.split(".", 1)[1]]
                    out += [(f"{side}.{k}", before.get(k), after.get(k)) for k in names if before.get(k) != after.get(k)]
        return out

    async def consent_events(self, user_id: str, page_size: int = 50, page_token: str = "") -> tuple[list[ConsentEvent], str]:
        check_id(user_id, "user_id")
        check_page_size(page_size)
        if page_token:
            match = _STREAM_ID.fullmatch(page_token)
            parts = (int(match.group(1)), int(match.group(2))) if match else (0, 0)
            if parts == (0, 0) or max(parts) > _U64:
                raise InvalidArgument("page_token", "is not a token this service gave out")
        size = page_size or 50
        rows = await self.store.consent_events(self.keys(user_id), size + 1, page_token or None)
        events = [
            ConsentEvent(
                int(f.get("at", 0)),
                f.get("source", ""),
                f.get("actor", ""),
                f.get("field", ""),
                f.get("old", ""),
                f.get("new", ""),
                int(f.get("version", 0)),
                entry_id,
                _evidence(f.get("evidence", "")),
            )
            for entry_id, f in rows[:size]
        ]
        token = events[-1].cursor if len(rows) > size else ""
        return events, token
