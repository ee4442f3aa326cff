"""The preference update path under generated patches, on real Redis: all or nothing, and a ledger line per change."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guard import policy
from guard.domain import clock
from guard.errors import InvalidArgument
from guard.usecases.preferences import PreferencesPatch
from guard.usecases.tenants import wire
from tests.conftest import REPO
from tests.helpers import FakeClock, ms

NOW = ms(2026, 11, 23, 12, 0)
CHANNELS = ["sms", "email", "push", "fax"]
CATEGORIES = ["promotion", "survey", "spam"]
PATHS = ["*", "channels", "categories", "unsubscribed_all", "quiet_hours", "paused_until", "max_marketing_per_week",
         "channels.sms", "channels.push", "categories.survey", "channels.", "channels.fax", "colour",
         "grid", "grid.sms.promotion", "grid.push.survey", "grid.sms", "grid.fax.promotion", "grid.sms.spam"]

patches = st.builds(
    PreferencesPatch,
    paths=st.lists(st.sampled_from(PATHS), min_size=0, max_size=3),
    channels=st.dictionaries(st.sampled_from(CHANNELS), st.booleans(), max_size=3),
    categories=st.dictionaries(st.sampled_from(CATEGORIES), st.booleans(), max_size=2),
    grid=st.dictionaries(st.sampled_from(["sms.promotion", "push.survey", "sms.spam", "fax.promotion", "sms"]),
                         st.booleans(), max_size=2),
    channel_scopes=st.dictionaries(st.sampled_from(CHANNELS), st.sampled_from(["marketing", "all", "some"]), max_size=2),
    unsubscribed_all=st.booleans(),
    quiet_hours=st.one_of(st.none(), st.tuples(st.sampled_from(["Asia/Shanghai", "Europe/Berlin", "Mars/Base"]),
                                               st.sampled_from(["22:00", "07:30", "25:00", "２２:００"]),
                                               st.sampled_from(["07:00", "x"]))),
    paused_until_ms=st.one_of(st.just(0), st.integers(-5, NOW + 20 * 366 * 86_400_000)),
    max_marketing_per_week=st.integers(-2, 1200),
)


def _view(prefs):
    return (prefs.channels, prefs.channel_scopes, prefs.categories, prefs.grid, prefs.unsubscribed_all, prefs.quiet_hours,
            prefs.paused_until_ms, prefs.max_marketing_per_week, prefs.version)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(patches, min_size=1, max_size=6))
async def test_a_patch_is_applied_whole_or_not_at_all(store, steps):
    """Each generated patch either fails naming a field (nothing stored changes, no ledger line) or applies whole:
    the version rises by one when anything changed, and the ledger gains one line per changed field."""
    await store.client.flushdb()
    svc = wire(policy.load(None), store, None, now=FakeClock(NOW)).preferences
    for patch in steps:
        before = await svc.get_preferences("u1")
        ledger_before = await store.client.xlen(svc.keys("u1").consent)
        try:
            after = await svc.update_preferences("u1", patch, source="test", actor="t", expected_version=None)
        except InvalidArgument as exc:
            assert exc.field.startswith("preferences.channel_scopes") or exc.field in (
                                 "update_mask", "preferences.channels", "preferences.categories", "preferences.grid",
                                 "preferences.quiet_hours.time_zone", "preferences.quiet_hours.start",
                                 "preferences.quiet_hours.end", "preferences.paused_until",
                                 "preferences.max_marketing_per_week")
            assert _view(await svc.get_preferences("u1")) == _view(before)
            assert await store.client.xlen(svc.keys("u1").consent) == ledger_before
            continue
        stored = await svc.get_preferences("u1")
        assert _view(stored) == _view(after)
        # Only a closed channel has a scope, and only one the policy offers (push has no "stop everything").
        assert set(after.channel_scopes) <= {c for c, is_open in after.channels.items() if not is_open}
        assert after.channel_scopes.get("push", "marketing") == "marketing"
        added = await store.client.xlen(svc.keys("u1").consent) - ledger_before
        if after.version == before.version:
            assert added == 0
        else:
            assert after.version == before.version + 1 and added >= 1
        masked = set(patch.paths) | (set(PATHS[1:7]) if "*" in patch.paths else set())
        if "quiet_hours" in masked:
            expected = patch.quiet_hours
            assert (after.quiet_hours is None) == (expected is None)
            if expected is not None and after.quiet_hours is not None:
                assert after.quiet_hours.time_zone == expected[0]
                assert after.quiet_hours.start_minute == clock.parse_hhmm(expected[1])
        else:
            assert after.quiet_hours == before.quiet_hours
        if "paused_until" not in masked:
            assert after.paused_until_ms == before.paused_until_ms


async def test_a_scope_the_policy_does_not_offer_is_refused_naming_the_field(store):
    svc = wire(policy.load(None), store, None, now=FakeClock(NOW)).preferences
    await store.client.flushdb()
    for scopes, field in (({"push": "all"}, "preferences.channel_scopes.push"),
                          ({"sms": "forever"}, "preferences.channel_scopes.sms"),
                          ({"fax": "all"}, "preferences.channel_scopes")):
        channel = next(iter(scopes))
        patch = PreferencesPatch(paths=[f"channels.{channel}" if channel != "fax" else "channels.sms"],
                                 channels={channel: False}, channel_scopes=scopes)
        try:
            await svc.update_preferences("u1", patch, source="user", actor="self", expected_version=None)
        except InvalidArgument as exc:
            assert exc.field == field, (scopes, exc)
        else:
            raise AssertionError(f"{scopes} was accepted")
    assert (await svc.get_preferences("u1")).version == 0  # nothing stored
    closed = await svc.update_preferences("u1", PreferencesPatch(paths=["channels.sms"], channels={"sms": False},
                                                                 channel_scopes={"sms": "all"}),
                                          source="user", actor="self", expected_version=None)
    assert closed.channel_scopes == {"sms": "all"}
    keyword = await svc.update_preferences("u2", PreferencesPatch(paths=["channels.sms"], channels={"sms": False}),
                                           source="keyword", actor="reply:r1", expected_version=None)
    assert keyword.channel_scopes == {"sms": "all"}  # an SMS STOP stops every SMS
    reopened = await svc.update_preferences("u2", PreferencesPatch(paths=["channels.sms"], channels={"sms": True}),
                                            source="keyword", actor="reply:r2", expected_version=None)
    assert reopened.channel_scopes == {}


async def test_a_store_from_the_release_before_scopes_keeps_every_decision(store):
    """Upgrade: preference documents as the previous release wrote them (through its own PreferenceService, kept in
    tests/fixtures/preferences_before_scopes.json with the decisions that release gave) decide the same now: a
    channel closed then stays closed as the page described it (SMS and email: every message)."""
    import json

    from guard.domain.types import Touch, TouchClass

    fixture = json.loads((REPO / "tests/fixtures/preferences_before_scopes.json").read_text(encoding="utf-8"))
    await store.client.flushdb()
    parts = wire(policy.load(None), store, None, now=FakeClock(fixture["at_ms"]))
    for user, document in fixture["documents"].items():
        await store.client.set(parts.preferences.keys(user).prefs, document)
    now = []
    for d in fixture["decisions"]:
        out = await parts.service.check(Touch(d["user"], d["channel"], d["category"], "", "", TouchClass(d["class"]),
                                              True, fixture["at_ms"]))
        now.append({**d, "verdict": out.verdict.value, "reasons": [r.value for r in out.reasons]})
    assert now == fixture["decisions"]
    assert any(d["class"] == "transactional" and d["verdict"] == "BLOCK" for d in now)  # a closed email, as told
    shown = await parts.preferences.get_preferences("closed-sms-push")
    assert shown.channel_scopes == {}  # nothing rewritten: read as scope_before


async def test_opting_back_in_waits_for_a_confirmation_where_the_policy_asks_for_one(store):
    """Email (confirm_opt_in) reopened on the page waits: marketing BLOCKs with CONSENT_PENDING until the person
    confirms, and the confirmation is ledgered with its evidence; push needs none; a START reply on SMS is itself
    the confirmation; closing again forgets the wait."""
    from guard.domain.types import Reason, Touch, TouchClass, Verdict

    await store.client.flushdb()
    parts = wire(policy.load(None), store, None, now=FakeClock(ms(2026, 11, 23, 12, 0, "Asia/Shanghai")))
    svc = parts.preferences

    async def flip(user: str, channel: str, source: str = "user") -> None:
        for is_open in (False, True):
            await svc.update_preferences(user, PreferencesPatch(paths=[f"channels.{channel}"],
                                                                channels={channel: is_open}),
                                         source=source, actor="self", expected_version=None)

    def promotion(user: str, channel: str) -> Touch:
        return Touch(user, channel, "promotion", "", "", TouchClass.MARKETING, True, ms(2026, 11, 23, 12, 0,
                                                                                      "Asia/Shanghai"))

    await flip("u1", "email")
    assert (await svc.get_preferences("u1")).pending == {"email": True}
    waiting = await parts.service.check(promotion("u1", "email"))
    assert waiting.verdict is Verdict.BLOCK and waiting.reasons == (Reason.CONSENT_PENDING,)
    receipt = await parts.service.check(Touch("u1", "email", "service", "", "", TouchClass.TRANSACTIONAL, True,
                                              ms(2026, 11, 23, 12, 0, "Asia/Shanghai")))
    assert receipt.verdict is Verdict.ALLOW  # a confirmation is about marketing
    confirmed = await svc.confirm("u1", "email", {"page": "confirmation", "lang": "en"})
    assert confirmed.pending == {}
    assert (await parts.service.check(promotion("u1", "email"))).verdict is Verdict.ALLOW
    events, _ = await svc.consent_events("u1")
    assert (events[0].field, events[0].source, events[0].new_value, dict(events[0].evidence)) == (
        "pending.email", "confirmation", "null", {"page": "confirmation", "lang": "en"})
    await flip("u2", "push")
    assert (await svc.get_preferences("u2")).pending == {}
    await flip("u3", "sms", source="keyword")  # STOP, then START, both by SMS from the person's own number
    assert (await svc.get_preferences("u3")).pending == {}
    await flip("u4", "email")
    await svc.update_preferences("u4", PreferencesPatch(paths=["channels.email"], channels={"email": False}),
                                 source="user", actor="self", expected_version=None)
    assert (await svc.get_preferences("u4")).pending == {}  # closed: nothing to confirm
