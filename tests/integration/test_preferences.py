"""The preference update path under generated patches, on real Redis: all or nothing, and a ledger line per change."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guard import policy
from guard.domain import clock
from guard.errors import InvalidArgument
from guard.usecases.preferences import PreferencesPatch
from guard.usecases.tenants import wire
from tests.helpers import FakeClock, ms

NOW = ms(2026, 11, 23, 12, 0)
CHANNELS = ["sms", "email", "push", "fax"]
CATEGORIES = ["promotion", "survey", "spam"]
PATHS = ["*", "channels", "categories", "unsubscribed_all", "quiet_hours", "paused_until", "max_marketing_per_week",
         "channels.sms", "channels.push", "categories.survey", "channels.", "channels.fax", "colour"]

patches = st.builds(
    PreferencesPatch,
    paths=st.lists(st.sampled_from(PATHS), min_size=0, max_size=3),
    channels=st.dictionaries(st.sampled_from(CHANNELS), st.booleans(), max_size=3),
    categories=st.dictionaries(st.sampled_from(CATEGORIES), st.booleans(), max_size=2),
    unsubscribed_all=st.booleans(),
    quiet_hours=st.one_of(st.none(), st.tuples(st.sampled_from(["Asia/Shanghai", "Europe/Berlin", "Mars/Base"]),
                                               st.sampled_from(["22:00", "07:30", "25:00", "２２:００"]),
                                               st.sampled_from(["07:00", "x"]))),
    paused_until_ms=st.one_of(st.just(0), st.integers(-5, NOW + 20 * 366 * 86_400_000)),
    max_marketing_per_week=st.integers(-2, 1200),
)


def _view(prefs):
    return (prefs.channels, prefs.categories, prefs.unsubscribed_all, prefs.quiet_hours, prefs.paused_until_ms,
            prefs.max_marketing_per_week, prefs.version)


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
            assert exc.field in ("update_mask", "preferences.channels", "preferences.categories",
                                 "preferences.quiet_hours.time_zone", "preferences.quiet_hours.start",
                                 "preferences.quiet_hours.end", "preferences.paused_until",
                                 "preferences.max_marketing_per_week")
            assert _view(await svc.get_preferences("u1")) == _view(before)
            assert await store.client.xlen(svc.keys("u1").consent) == ledger_before
            continue
        stored = await svc.get_preferences("u1")
        assert _view(stored) == _view(after)
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
