"""A data subject's rights: export everything guard holds on a user, and erase it.

Erasure keeps only what consent law needs: the channels and categories the user closed and
whether they unsubscribed from all marketing, with no content, so a later touch to the same
id is still refused; the ledger keeps one ``erasure`` event saying who asked and why.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from guard import logs
from guard.domain import clock
from guard.domain.clock import Clock
from guard.errors import InvalidArgument
from guard.store.control import ControlStore
from guard.store.hooks import HookStore
from guard.store.keys import UserKeys
from guard.store.redis_store import RedisStore
from guard.store.subject import SubjectStore
from guard.store.webhooks import WebhookStore
from guard.validate import check_id, check_name, check_text

log = logs.get("guard.usecases.privacy")

FORMAT = "guard.user-export/1"


@dataclass(frozen=True)
class Erasure:
    keys_removed: int
    tasks_redacted: int
    channels: tuple[str, ...]
    categories: tuple[str, ...]
    unsubscribed_all: bool


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


# Fields of stored records that are times in epoch milliseconds, and flags stored as "0"/"1": shown as a
# person reads them (a time in ISO 8601, a flag as true or false).
_TIMES = ("at", "created_at", "due_at", "claimed_at", "resolved_at", "last_int", "interacted")
_FLAGS = {"hv": "high_value"}


def _readable(record: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in record.items():
        if (name in _TIMES or name.endswith(("_ms", "_at"))) and isinstance(value, str) and value.isascii() \
                and value.isdigit():
            out[name] = _iso(int(value))
        elif name in _FLAGS and value in ("0", "1"):
            out[_FLAGS[name]] = value == "1"
        elif name == "result":
            out[name] = _json_or_text(value)
        else:
            out[name] = value
    return out


def _json_or_text(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value


class PrivacyService:
    def __init__(self, store: RedisStore, tenant: str, *, now: Clock = clock.system_clock) -> None:
        self.subjects = SubjectStore(store, tenant)
        self.control = ControlStore(store.conn)
        self.hooks = HookStore(store.conn)
        self.outbox = WebhookStore(store.conn, tenant)
        self.tenant = tenant
        self.now = now

    async def export(self, user_id: str) -> dict[str, Any]:
        """One JSON document: every key of the user by what it holds, and the tasks that name them."""
        check_id(user_id, "user_id")
        keys = UserKeys(self.tenant, user_id)
        names = await self.subjects.key_names(keys)
        raw = await self.subjects.read(names)
        prefix = keys.prefs[: -len("prefs")]
        doc: dict[str, Any] = {
            "format": FORMAT, "tenant": self.tenant, "user_id": user_id, "exported_at": _iso(self.now()),
            "preferences": _json_or_text(raw.pop(keys.prefs)) if keys.prefs in raw else None,
            "consent_ledger": raw.pop(keys.consent, []),
            "wordings": {},  # the words behind each ledger entry's evidence.wording: what the person saw
            "hold_until": None, "open_task": raw.pop(keys.open_task, None),
            "touches": [], "replies": [], "cap_counters": {}, "tasks": [], "other": {},
            "keys": names,
        }
        seen = sorted({str(json.loads(e["evidence"]).get("wording", "")) for e in doc["consent_ledger"]
                       if isinstance(e, dict) and str(e.get("evidence", "")).startswith("{")} - {""})
        doc["wordings"] = {v: _json_or_text(t) for v, t in (await self.control.wordings(seen)).items()}
        if keys.hold in raw:
            doc["hold_until"] = _iso(int(raw.pop(keys.hold)))
        for name, value in raw.items():
            rest = name[len(prefix):]
            if rest.startswith("touch:"):
                doc["touches"].append({"touch_id": rest[len("touch:"):], **_readable(value)})
            elif rest.startswith("reply:"):
                doc["replies"].append({"reply_id": rest[len("reply:"):], **_readable(value)})
            elif rest.startswith("cap:"):
                doc["cap_counters"][rest[len("cap:"):]] = [_iso(int(score)) for _, score in value]
            else:
                doc["other"][rest] = value
        for task_id, fields in await self.subjects.tasks_of(user_id):
            replies = _json_or_text(fields.pop("replies", "[]"))
            doc["tasks"].append({"task_id": task_id, **_readable(fields), "replies": replies})
        return doc

    async def erase(self, user_id: str, actor: str, reason: str) -> Erasure:
        check_id(user_id, "user_id")
        actor = actor.strip()
        if not actor:
            raise InvalidArgument("actor", "is required: who asked for the erasure")
        check_name(actor, "actor")
        if reason:
            check_text(reason, "reason")
        keys = UserKeys(self.tenant, user_id)
        now = self.now()
        tasks = 0
        for task_id, _ in await self.subjects.tasks_of(user_id):
            tasks += await self.subjects.redact_task(task_id, user_id, now)
        elsewhere = await self.hooks.drop_contacts(keys)  # the tenant's index forgets the user's addresses first
        elsewhere += await self.outbox.forget_user(user_id)  # and the outbox its events about them
        removed = 0
        kept: tuple[tuple[str, ...], tuple[str, ...], bool] = ((), (), False)
        for _ in range(3):  # a reply or touch landing during the erasure is caught by the next pass
            names = await self.subjects.key_names(keys)
            if not [n for n in names if n not in (keys.prefs, keys.consent)] and removed:
                break
            current = await self.subjects.read([keys.prefs]) if keys.prefs in names else {}
            prefs = _json_or_text(current.get(keys.prefs, "{}")) or {}
            closed_channels = tuple(sorted(c for c, on in (prefs.get("channels") or {}).items() if on is False))
            closed_categories = tuple(sorted(c for c, on in (prefs.get("categories") or {}).items() if on is False))
            unsubscribed = bool(prefs.get("unsubscribed_all", False))
            kept = (tuple(sorted(set(kept[0]) | set(closed_channels))), tuple(sorted(set(kept[1]) | set(closed_categories))),
                    kept[2] or unsubscribed)
            suppression = {"channels": {c: False for c in kept[0]}, "categories": {c: False for c in kept[1]},
                           "unsubscribed_all": kept[2], "version": int(prefs.get("version", 0)) + 1, "updated_at": now,
                           "erased_at": now}
            event = {"at": str(now), "source": "erasure", "actor": actor, "field": "erasure",
                     "old": "", "new": json.dumps({"suppressed_channels": list(kept[0]),
                                                   "suppressed_categories": list(kept[1]),
                                                   "unsubscribed_all": kept[2], "reason": reason}, ensure_ascii=False),
                     "version": str(suppression["version"])}
            removed += await self.subjects.erase(keys, names, suppression, event)
        await self.subjects.drop_from_queues(user_id)
        removed += elsewhere
        log.info("user_erased", keys_removed=removed, tasks_redacted=tasks, actor=actor)
        return Erasure(removed, tasks, kept[0], kept[1], kept[2])
