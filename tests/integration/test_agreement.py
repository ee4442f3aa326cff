"""The check script and its specification agree: ``check_touch.lua`` on real Redis against ``decide.decide``.

Random users, mostly permissive with a few perturbations (channels and categories closed or open, closed
for marketing or for everything, a grid cell, unsubscribed, paused, held, a reply not yet scored, their own
quiet hours in zones with daylight saving and odd offsets, their own weekly maximum, an interaction partway,
a manual tier calibration, a braked campaign, a channel reopened and waiting for its confirmation, an
interaction-hours profile their marketing touches ask the best hour of, shadow tiers) receive random histories
of twelve days of touches of every class, some scheduled ahead and some in the past, under a policy with a
shadow rule. At every step the script's verdict, reasons, retry time, engagement tier and cap usage must equal
the pure core's over the same state; no window of a rule ever holds more than its limit; and the examples
reach each condition that matters in a fair share (``WANTED``).
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from guard import policy as policy_mod
from guard.domain import decide, timing
from guard.domain.types import Preferences, Reason, Touch, TouchClass
from guard.store.brakes import Brake
from guard.usecases.preferences import PreferencesPatch
from guard.usecases.tenants import wire
from tests.helpers import FakeClock, ms

ZONES = ["Asia/Shanghai", "America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "Asia/Kathmandu",
         "Pacific/Chatham", "America/St_Johns", "UTC"]
CHANNELS = ["sms", "email", "push", "wecom"]
CATEGORIES = ["promotion", "new_arrival", "service"]
HOUR = 3_600_000


def _policy(shadow_tiers: bool = False) -> policy_mod.Policy:
    """The shipped policy with a shadow rule and a per-channel rule; touches ignored after 6 hours (so a
    history of days reaches the tiers); with ``shadow_tiers``, the tiers report and never hold back."""
    from importlib import resources

    data = yaml.safe_load(resources.files("guard").joinpath("default_policy.yaml").read_text(encoding="utf-8"))
    data["caps"] += [{"id": "push_shadow", "limit": 1, "window": "1d", "channels": ["push"], "shadow": True},
                     {"id": "per_channel", "limit": 2, "window": "2d", "per": "channel"}]
    data["quiet_hours"] = {"time_zone": "Asia/Shanghai", "start": "23:00", "end": "06:00"}  # most hours open
    engagement = data.setdefault("engagement", {})
    engagement["ignore_after"] = "6h"
    if shadow_tiers:
        engagement["tiers"] = [{**tier, "shadow": tier["name"] != "active"} for tier in engagement["tiers"]]
    return policy_mod.parse(yaml.safe_dump(data), "agreement")


POLICY = _policy()
POLICY_SHADOW_TIERS = _policy(shadow_tiers=True)

def _hhmm(rng: random.Random) -> str:
    return f"{rng.randrange(24):02d}:{rng.choice([0, 15, 30, 45]):02d}"


def _some(rng: random.Random, keys: list[str], least: int, most: int) -> dict[str, bool]:
    return {k: rng.random() < 0.5 for k in rng.sample(keys, rng.randint(least, most))}


_PERMISSIVE = {"channels": {}, "categories": {}, "unsubscribed_all": False, "quiet_hours": None, "paused_for_h": 0,
               "weekly_max": 0, "hold_for_h": 0, "pending_h_ago": None, "interaction_min": None, "tier_override": None,
               "undeliverable": None, "braked": False, "shadow_tiers": False, "closed_scope": None, "grid": {},
               "reopened": None, "best_hour": None}
_PERTURBATIONS: dict[str, Callable[[random.Random], Any]] = {  # one thing a user may have that holds touches back
    "channels": lambda r: _some(r, CHANNELS, 1, 2),
    "categories": lambda r: _some(r, CATEGORIES, 1, 2),
    "unsubscribed_all": lambda r: True,
    "quiet_hours": lambda r: (r.choice(ZONES), _hhmm(r), _hhmm(r)),
    "paused_for_h": lambda r: r.choice([-5, 3, 30, 200]),
    "weekly_max": lambda r: r.choice([1, 2, 4]),
    "hold_for_h": lambda r: r.choice([-2, 5, 100]),
    "pending_h_ago": lambda r: r.choice([1, 80]),
    "interaction_min": lambda r: r.choice([600, 3000, 5000, 9000]),  # an open or a reply, this far in
    "tier_override": lambda r: r.choice([("dormant", 48), ("active", 200), ("cooling", -1)]),
    "undeliverable": lambda r: r.choice(["push", "sms"]),  # a hard bounce on that channel
    "braked": lambda r: True,  # campaign c1 braked (fatigue.brake)
    # A channel closed for marketing, for everything, or before scopes existed (the previous release's document,
    # no scope stored: it reads as the policy's scope_before).
    "closed_scope": lambda r: (r.choice(["sms", "email"]), r.choice(["marketing", "all", "before"])),
    # One topic on one channel: closed there, or open there though the topic is closed (drawn with the topics).
    "grid": lambda r: _some(r, [f"{c}.{k}" for c in CHANNELS for k in CATEGORIES], 1, 3),
    # Closed, then opened again on the page: SMS and email wait for a confirmation (confirm_opt_in), push does not.
    "reopened": lambda r: r.choice(["sms", "email", "push"]),
    # Marketing touches ask for the user's best hour, over a profile of interaction hours (hour of week → faded
    # count) with a total below or above the policy's min_interactions, faded to this many hours before the start.
    "best_hour": lambda r: ({r.randrange(168): r.choice([0.5, 1.25, 3.0, 7.5]) for _ in range(r.randint(0, 30))},
                            r.choice([2.0, 6.0, 40.0]), r.choice([0, 30, 24 * 60, 24 * 150])),
}


def random_user(rng: random.Random) -> dict[str, Any]:
    """Mostly permissive users with one or two perturbations: so touches get recorded and caps and tiers bind,
    while every restriction still turns up, alone and together."""
    user = dict(_PERMISSIVE)
    for name in rng.sample(sorted(_PERTURBATIONS), rng.choice([1, 1, 2])):
        user[name] = _PERTURBATIONS[name](rng)
    user["shadow_tiers"] = rng.random() < 0.2  # a fifth of users: the tiers report and never hold back
    return user


def random_history(rng: random.Random) -> list[tuple[Any, ...]]:
    return [(
        rng.randint(0, 12 * 24 * 60),  # minutes after the start: twelve days, so a week's window ages out
        rng.choice([0, 0, 0, 0, 30, 600, 2000, -20, -50]),  # send_at this many minutes after (or before) the check
        rng.choice(CHANNELS),
        rng.choice(CATEGORIES),
        rng.choice(["", "c1", "c2", "c3", "c4"]),
        rng.choice([TouchClass.MARKETING] * 5 + [TouchClass.SERVICE, TouchClass.TRANSACTIONAL]),
        rng.random() < 1 / 8,  # dry run
    ) for _ in range(rng.randint(8, 24))]


STARTS = [ms(2026, 3, 7, 20), ms(2026, 3, 28, 12), ms(2026, 10, 24, 3), ms(2026, 11, 23, 12), ms(2026, 4, 4, 14)]
EXAMPLES = 120
SEED = 20261201

# What the property's examples met, by backend: held to minimum shares by the test after it.
COVERAGE: dict[str, Counter[str]] = {}
# The share of the examples that must reach each condition, or the property proves little about it (before the
# strategies were reworked the weekly cap bound in 0.6% of examples and a tier came from history in 0.3%).
WANTED = {
    "a marketing touch recorded": 0.6, "the weekly cap binding": 0.25, "a tier reached from the history": 0.15,
    "a cap window aged out": 0.25, "send_at in the past": 0.5, "shadow tiers": 0.1, "a DEFER": 0.6, "a BLOCK": 0.25,
    "a non-marketing touch on a channel closed with a scope": 0.03, "a grid cell deciding a topic on a channel": 0.03,
    "a best hour ahead": 0.03, "a best hour asked with too little history": 0.02,
}


async def test_the_script_and_its_specification_agree_on_random_users_and_histories(store):
    """The same 120 examples every run, from a seeded generator (hypothesis's choices leaned so hard towards their
    simplest values, and so differently from one run to the next, that a drawn perturbation reached 2% of users
    in one run and 44% in another): the coverage held below is a fact about them, not luck. A failure names its
    example; ``agree`` runs it alone."""
    rng = random.Random(SEED)
    counted = COVERAGE.setdefault(store.conn.target.kind if store.conn.target else "redis", Counter())
    for example in range(EXAMPLES):
        user, history, start = random_user(rng), random_history(rng), rng.choice(STARTS)
        try:
            met = await agree(store, user, history, start)
        except AssertionError as exc:
            raise AssertionError(f"example {example}: agree(store, {user!r}, {history!r}, {start})") from exc
        counted["examples"] += 1
        for condition in met:
            counted[condition] += 1


def test_the_property_reaches_what_it_must_cover():
    """The agreement property is only as good as the states it reaches: each condition in a fair share."""
    assert COVERAGE, "run the whole file: the property above gathers what this test checks"
    for backend, counted in COVERAGE.items():
        shares = {c: round(counted[c] / counted["examples"], 3) for c in WANTED}
        assert all(shares[c] >= WANTED[c] for c in WANTED), f"{backend}: {shares}"


async def agree(store, user, history, start) -> set[str]:
    """Run one history through the script and the core side by side; the reasons it met, and the conditions
    of ``WANTED`` it reached."""
    await store.client.flushdb()
    clock = FakeClock(start)
    policy = POLICY_SHADOW_TIERS if user.get("shadow_tiers") else POLICY
    parts = wire(policy, store, None, now=clock)
    keys = parts.service.keys("u1")
    patch = PreferencesPatch(
        paths=["*"], channels=user["channels"], categories=user["categories"], grid=user["grid"],
        unsubscribed_all=user["unsubscribed_all"],
        quiet_hours=user["quiet_hours"], paused_until_ms=max(0, start + user["paused_for_h"] * HOUR) if user["paused_for_h"]
        else 0, max_marketing_per_week=user["weekly_max"])
    prefs: Preferences = await parts.preferences.update_preferences("u1", patch, source="test", actor="t",
                                                                    expected_version=None)
    if user["closed_scope"] is not None:
        closed, scope = user["closed_scope"]
        if scope == "before":  # as the previous release stored it: closed, no scope
            doc = json.loads(await store.client.get(keys.prefs) or "{}")
            doc.setdefault("channels", {})[closed] = False
            doc.pop("scopes", None)
            await store.client.set(keys.prefs, json.dumps(doc))
        else:
            await parts.preferences.update_preferences(
                "u1", PreferencesPatch(paths=[f"channels.{closed}"], channels={closed: False},
                                       channel_scopes={closed: scope}), source="test", actor="t", expected_version=None)
        prefs = await parts.preferences.get_preferences("u1")
    if user["reopened"] is not None:
        reopened = user["reopened"]
        for is_open in (False, True):
            await parts.preferences.update_preferences(
                "u1", PreferencesPatch(paths=[f"channels.{reopened}"], channels={reopened: is_open}),
                source="user", actor="self", expected_version=None)
        prefs = await parts.preferences.get_preferences("u1")
    hold_until = start + user["hold_for_h"] * HOUR if user["hold_for_h"] else 0
    if hold_until:
        await store.client.set(keys.hold, hold_until)
    reply_at = start - user["pending_h_ago"] * HOUR if user["pending_h_ago"] is not None else None
    if reply_at is not None:
        await store.client.zadd(keys.unscored, {"r1": reply_at})
    override = None
    if user["tier_override"] is not None:
        override = (user["tier_override"][0], start + user["tier_override"][1] * HOUR)
        await store.client.hset(keys.engagement, mapping={"tier": override[0], "tier_until": override[1]})
    if user["braked"]:
        parts.service.brakes = {"c:c1": Brake("optouts", start, 0, False, "opt_out_rate", 0.5)}
    if user["undeliverable"]:
        await store.client.hset(keys.engagement, f"undeliverable:{user['undeliverable']}", start)
    profile = timing.EMPTY
    if user["best_hour"] is not None:
        weights, total, faded_h = user["best_hour"]
        profile = timing.Profile(start - faded_h * HOUR, total + sum(weights.values()), weights)
        await store.client.hset(keys.engagement, "hours", timing.encode(profile))
    last_interaction = 0
    events: dict[tuple[str, str], list[int]] = {}
    marketing: list[int] = []  # recorded marketing touches: what the engagement tiers count
    seen_reasons: set[str] = set()
    for i, (minute, ahead, channel, category, campaign, cls, dry) in enumerate(sorted(history, key=lambda s: s[0])):
        clock.now_ms = start + minute * 60_000
        if user["interaction_min"] is not None and not last_interaction and minute >= user["interaction_min"]:
            last_interaction = start + user["interaction_min"] * 60_000
            await store.client.hset(keys.engagement, "last_int", last_interaction)
        best_hour = user["best_hour"] is not None and cls is TouchClass.MARKETING
        touch = Touch("u1", channel, category, campaign, "" if dry else f"t{i}", cls, dry,
                      clock.now_ms + ahead * 60_000, timing="best_hour" if best_hour else "")
        rules = list(policy.rules_for(touch))
        if cls is TouchClass.MARKETING:
            rules.append(decide.user_rule(prefs))
        channel_policy = policy.channels[channel]
        facts = decide.Facts(
            at_ms=touch.at_ms, checks=policy.classes[cls].checks, channel=channel, category=category,
            channel_default=channel_policy.default_opt_in, category_default=policy.categories[category],
            channel_scope_before=channel_policy.scope_before, prefs=prefs, hold_until_ms=hold_until,
            default_quiet=policy.default_quiet, rules=rules, events=events,
            pending_replies=reply_at is not None and reply_at >= clock.now_ms - policy.replies.lookback_ms,
            pending_retry_ms=policy.replies.pending_retry_ms,
            engagement=policy.engagement, marketing_ms=marketing, last_interaction_ms=last_interaction,
            tier_override=override, undeliverable=channel == user["undeliverable"],
            campaign_braked=user["braked"] and campaign == "c1" and cls is TouchClass.MARKETING,
            timing_policy=policy.timing if best_hour else None, profile=profile)
        expected = decide.decide(facts)
        got = await parts.service.check(touch)
        assert (got.verdict, got.reasons, got.retry_at_ms, got.tier) == (
            expected.verdict, expected.reasons, expected.retry_at_ms, expected.tier), (i, touch, prefs)
        assert [dataclasses.astuple(c) for c in got.caps] == [dataclasses.astuple(c) for c in expected.caps]
        seen_reasons.update(r.value for r in got.reasons)
        seen_reasons |= _conditions(got, touch, clock.now_ms, events, policy, override is not None)
        if user["closed_scope"] is not None and channel == user["closed_scope"][0] and cls is not TouchClass.MARKETING:
            seen_reasons.add("a non-marketing touch on a channel closed with a scope")
        if f"{channel}.{category}" in user["grid"] and cls is not TouchClass.TRANSACTIONAL:
            seen_reasons.add("a grid cell deciding a topic on a channel")
        if best_hour and Reason.BEST_TIME in got.reasons:
            seen_reasons.add("a best hour ahead")
        elif best_hour and profile.total * profile.faded(touch.at_ms, policy.timing.half_life_ms) < \
                policy.timing.min_interactions:
            seen_reasons.add("a best hour asked with too little history")
        if got.recorded:
            if cls is TouchClass.MARKETING:
                marketing.append(touch.at_ms)
            for rule in rules:
                if rule.limit > 0:
                    events.setdefault(rule.counter, []).append(touch.at_ms)
    if user.get("shadow_tiers"):
        seen_reasons.add("shadow tiers")
    for cap in policy.rules:
        if cap.shadow:
            continue
        for counter, times in events.items():
            if counter[0] == cap.rule_id:
                ordered = sorted(times)
                for s in ordered:
                    assert sum(1 for e in ordered if s <= e < s + cap.window_ms) <= cap.limit


    return seen_reasons


def _conditions(got: Any, touch: Touch, now_ms: int, events: dict[tuple[str, str], list[int]],
                policy: policy_mod.Policy, calibrated: bool) -> set[str]:
    """Which of ``WANTED`` this step reached."""
    met = set()
    if got.recorded and touch.touch_class is TouchClass.MARKETING:
        met.add("a marketing touch recorded")
    if any(c.rule_id == "marketing_weekly" and c.exceeded for c in got.caps):
        met.add("the weekly cap binding")
    if got.tier and got.tier != policy.engagement.tiers[0].name and not calibrated:
        met.add("a tier reached from the history")
    weekly = events.get(("marketing_weekly", ""), [])
    if any(at + 7 * 24 * HOUR <= now_ms for at in weekly):
        met.add("a cap window aged out")
    if touch.at_ms < now_ms:
        met.add("send_at in the past")
    if got.verdict.value in ("DEFER", "BLOCK"):
        met.add(f"a {got.verdict.value}")
    return met


QUIET_USER = {"channels": {}, "categories": {}, "unsubscribed_all": False, "quiet_hours": None, "paused_for_h": 0,
              "weekly_max": 0, "hold_for_h": 0, "pending_h_ago": None, "interaction_min": None, "tier_override": None,
              "undeliverable": None, "braked": False, "shadow_tiers": False, "closed_scope": None, "grid": {},
              "reopened": None, "best_hour": None}
ONE_PUSH = [(0, 0, "push", "promotion", "", TouchClass.MARKETING, False)]
EVERY_REASON: dict[str, tuple[dict[str, Any], Any]] = {
    "UNSUBSCRIBED": ({"unsubscribed_all": True}, ONE_PUSH),
    "CHANNEL_OPTED_OUT": ({"channels": {"push": False}}, ONE_PUSH),
    "CATEGORY_OPTED_OUT": ({"categories": {"promotion": False}}, ONE_PUSH),
    "PAUSED": ({"paused_for_h": 30}, ONE_PUSH),
    "UNDELIVERABLE": ({"undeliverable": "push"}, ONE_PUSH),
    "CONSENT_PENDING": ({"reopened": "email"}, [(0, 0, "email", "promotion", "", TouchClass.MARKETING, False)]),
    "CAMPAIGN_FATIGUED": ({"braked": True}, [(0, 0, "push", "promotion", "c1", TouchClass.MARKETING, False)]),
    "NEGATIVE_SENTIMENT": ({"hold_for_h": 5}, ONE_PUSH),
    "SENTIMENT_PENDING": ({"pending_h_ago": 1}, ONE_PUSH),
    # 2026-11-23 12:00 UTC is a Monday, hour 12 of the week: the user opens most at 13:00 UTC
    "BEST_TIME": ({"best_hour": ({13: 10.0, 9: 2.0}, 0.0, 0)}, ONE_PUSH),
    "QUIET_HOURS": ({"quiet_hours": ("Australia/Lord_Howe", "00:00", "23:45")}, ONE_PUSH),
    "FREQUENCY_CAP": ({"weekly_max": 1}, [(m, 0, "push", "promotion", "", TouchClass.MARKETING, False) for m in (0, 5)]),
    # three marketing touches nobody opened, and four days later the user is cooling
    "LOW_ENGAGEMENT": ({}, [(m, 0, c, "promotion", "", TouchClass.MARKETING, False)
                            for m, c in ((0, "push"), (20, "wecom"), (40, "push"), (5760, "push"))]),
}


@pytest.mark.parametrize("reason", sorted(EVERY_REASON))
async def test_each_reason_is_met_and_agreed_on(store, reason):
    """Every reason a check can give (but the store outage, which never reaches the script) is reached
    by the states the property draws from, and the two agree on it."""
    changes, history = EVERY_REASON[reason]
    assert reason in await agree(store, {**QUIET_USER, **changes}, history, ms(2026, 11, 23, 12))


def test_the_table_names_every_reason_the_script_can_give():
    """Every reason but the two decided around the script (Redis not answering; the store reset, in
    ``tests/e2e/test_amnesia.py``)."""
    assert set(EVERY_REASON) == {r.value for r in Reason} - {"STORE_UNAVAILABLE", "STORE_RESET"}


@pytest.mark.parametrize(("scope", "receipt_blocked"), [("marketing", False), ("all", True), ("before", True)])
async def test_a_closed_email_reaches_as_far_as_its_scope(store, scope, receipt_blocked):
    """Closed for marketing, a receipt still goes and a promotion does not; closed for everything (or closed before
    scopes existed, when the page said every message would stop) neither goes. Script and core agree on each."""
    receipt = [(0, 0, "email", "service", "", TouchClass.TRANSACTIONAL, False)]
    promotion = [(5, 0, "email", "promotion", "", TouchClass.MARKETING, False)]
    user = {**QUIET_USER, "closed_scope": ("email", scope)}
    assert ("CHANNEL_OPTED_OUT" in await agree(store, user, receipt, ms(2026, 11, 23, 12))) is receipt_blocked
    assert "CHANNEL_OPTED_OUT" in await agree(store, user, promotion, ms(2026, 11, 23, 12))


async def test_a_grid_cell_closes_one_topic_on_one_channel_and_opens_it_against_its_topic(store):
    """"Promotions by SMS: off; by push: on": the cell decides its channel only; a cell opened on push admits
    promotions there while the topic is closed everywhere else."""
    sms, push = ([(0, 0, ch, "promotion", "", TouchClass.MARKETING, False)] for ch in ("sms", "push"))
    closed_on_sms = {**QUIET_USER, "grid": {"sms.promotion": False}}
    assert "CATEGORY_OPTED_OUT" in await agree(store, closed_on_sms, sms, ms(2026, 11, 23, 12))
    assert "CATEGORY_OPTED_OUT" not in await agree(store, closed_on_sms, push, ms(2026, 11, 23, 12))
    open_on_push = {**QUIET_USER, "categories": {"promotion": False}, "grid": {"push.promotion": True}}
    assert "CATEGORY_OPTED_OUT" not in await agree(store, open_on_push, push, ms(2026, 11, 23, 12))
    assert "CATEGORY_OPTED_OUT" in await agree(store, open_on_push, sms, ms(2026, 11, 23, 12))
