"""The brake table of a tenant: which campaigns and strategies are braked, when they were resumed, the audit.

All in the tenant's slot. Every serving process reads the table once per control poll and passes
"braked" into the check script with the touch, so CheckTouch stays one round trip in the user's slot.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from guard.store.connection import Connection
from guard.store.keys import TenantKeys


@dataclass(frozen=True)
class Brake:
    rule: str
    at_ms: int
    until_ms: int  # 0: until an operator resumes
    shadow: bool
    signal: str  # what passed its threshold
    value: float

    def blocks(self, at_ms: int) -> bool:
        return not self.shadow and (self.until_ms == 0 or at_ms < self.until_ms)

    def to_json(self) -> str:
        return json.dumps({"rule": self.rule, "at": self.at_ms, "until": self.until_ms, "shadow": self.shadow,
                           "signal": self.signal, "value": self.value})

    @classmethod
    def from_json(cls, raw: str) -> Brake:
        d = json.loads(raw)
        return cls(str(d["rule"]), int(d["at"]), int(d["until"]), bool(d["shadow"]), str(d["signal"]),
                   float(d["value"]))


def field_of(scope: str, name: str) -> str:
    return ("c:" if scope == "campaign" else "s:") + name


class BrakeStore:
    def __init__(self, conn: Connection, tenant: str) -> None:
        self.conn = conn
        self.keys = TenantKeys(tenant)

    async def table(self) -> dict[str, Brake]:
        raw = await self.conn.execute("HGETALL", self.keys.brakes)
        return {str(k): Brake.from_json(str(v)) for k, v in dict(raw or {}).items()}

    async def resumed(self) -> dict[str, tuple[int, dict[str, int]]]:
        """When each brake ended, and the figures its hour already held then (the rules count what came after)."""
        raw = await self.conn.execute("HGETALL", self.keys.brakes_resumed)
        out = {}
        for k, v in dict(raw or {}).items():
            d = json.loads(v)
            out[str(k)] = (int(d["at"]), {str(f): int(n) for f, n in d["base"].items()})
        return out

    async def trip(self, field: str, brake: Brake, now_ms: int) -> bool:
        k = self.keys
        scope, _, name = field.partition(":")
        event = json.dumps({"campaign_id" if scope == "c" else "strategy_id": name, "rule": brake.rule,
                            "signal": brake.signal, "value": brake.value, "shadow": brake.shadow}, ensure_ascii=False)
        return bool(await self.conn.run("brake_trip", [k.brakes, k.brakes_audit, k.outbox],
                                        [field, brake.to_json(), str(now_ms), brake.rule, event]))

    async def release(self, field: str, now_ms: int, actor: str, reason: str, what: str,
                      base: dict[str, int]) -> bool:
        k = self.keys
        mark = json.dumps({"at": now_ms, "base": base})
        scope, _, name = field.partition(":")
        event = json.dumps({"campaign_id" if scope == "c" else "strategy_id": name, "how": what, "actor": actor,
                            "reason": reason}, ensure_ascii=False)
        return bool(await self.conn.run("brake_release", [k.brakes, k.brakes_resumed, k.brakes_audit, k.outbox],
                                        [field, str(now_ms), actor, reason, what, mark, event]))
