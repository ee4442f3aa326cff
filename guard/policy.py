"""The operator's policy file: channels, categories, cap rules, quiet hours, classes, fail modes.

Parsed once at start into frozen dataclasses. Every mistake is a ``PolicyError``
that names the key path and the line, so ``guard policy check FILE`` can point
at it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from guard.domain import clock
from guard.domain.fatigue import DEFAULT_COMPONENTS, MIN_TOUCHES, RATES, Component
from guard.domain.timing import WEEK_HOURS, TimingPolicy
from guard.domain.types import SCOPES, Check, EngagementPolicy, QuietHours, RuleCheck, Tier, TierRule, Touch, TouchClass

_DURATION = re.compile(r"^([0-9]+)(ms|s|m|h|d|w)$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_ID = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,47}$")


class PolicyError(ValueError):
    """A policy file is invalid; ``str()`` names the key and the line."""


@dataclass(frozen=True)
class ChannelPolicy:
    """A channel, and how far a person's "no" on it reaches.

    ``opt_out_scope`` says, per source of the change (``user``, ``link``, ``keyword``, ``carrier`` ...; ``default``
    for the rest), whether closing the channel closes it for marketing or for everything; ``stop_all`` whether a
    person may ask for everything themselves ("stop everything here"); ``scope_before`` what a channel closed
    before scopes existed means (what the preference page said then).
    """

    name: str
    default_opt_in: bool
    labels: Mapping[str, str] = field(default_factory=dict)  # locale → display name (the preference center's)
    opt_out_scope: Mapping[str, str] = field(default_factory=lambda: {"default": "marketing"})
    stop_all: bool = False
    scope_before: str = "marketing"
    confirm_opt_in: bool = False  # opting back in waits for a confirmation (CONSENT_PENDING until then)

    def scope_for(self, source: str) -> str:
        """How far a closing by ``source`` reaches, when the change itself does not say."""
        return self.opt_out_scope.get(source) or self.opt_out_scope.get("default") or "marketing"


@dataclass(frozen=True)
class CapRule:
    rule_id: str
    limit: int
    window_ms: int
    classes: frozenset[TouchClass]
    channels: frozenset[str]  # empty: every channel
    categories: frozenset[str]
    campaigns: frozenset[str]
    per: str  # "user" (the default) or "campaign", "channel", "category"
    shadow: bool

    def applies(self, touch_class: TouchClass, channel: str, category: str, campaign: str) -> bool:
        return self.matches(touch_class, channel, category) and self.counts_campaign(campaign)

    def matches(self, touch_class: TouchClass, channel: str, category: str) -> bool:
        """The rule's class, channel and category scope holds this touch."""
        return (touch_class in self.classes and (not self.channels or channel in self.channels)
                and (not self.categories or category in self.categories))

    def counts_campaign(self, campaign: str) -> bool:
        """The rule's campaign scope holds this campaign (a per-campaign rule needs one)."""
        return (not self.campaigns or campaign in self.campaigns) and not (self.per == "campaign" and not campaign)

    def check_for(self, channel: str, category: str, campaign: str) -> RuleCheck:
        group = {"user": "", "campaign": campaign, "channel": channel, "category": category}[self.per]
        return RuleCheck(self.rule_id, group, self.limit, self.window_ms, self.shadow)


@dataclass(frozen=True)
class ClassPolicy:
    checks: frozenset[Check]
    fail_open: bool


DEFAULT_OPT_OUT = ("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "OPT OUT", "REVOKE",
                   "退订", "TD", "T", "R", "拒收", "取消订阅", "回T退订", "退订谢谢", "拒收请回复R")
DEFAULT_OPT_IN = ("START", "UNSTOP", "订阅", "恢复订阅")
DEFAULT_LEGAL = ("投诉", "12315", "律师", "曝光", "消协", "起诉", "lawyer", "sue", "report", "attorney", "FTC", "BBB")


@dataclass(frozen=True)
class ReplyPolicy:
    negative_threshold: float
    hold_ms: int
    lookback_ms: int
    attribution_window_ms: int
    pending_retry_ms: int
    score_wait_ms: int
    opt_out_keywords: tuple[str, ...]
    opt_in_keywords: tuple[str, ...]
    legal_words: tuple[str, ...]
    sla_ms: Mapping[str, int]
    redeliver_after_ms: int
    max_task_replies: int = 20  # a task lists this many newest replies in full and counts the rest
    text_retention_ms: int = 90 * 86_400_000  # a reply's words are dropped this long after it came
    task_retention_ms: int = 180 * 86_400_000  # a resolved task is deleted this long after it was opened


DEFAULT_ENGAGEMENT = EngagementPolicy(3 * 86_400_000, (
    Tier("active", 0),
    Tier("cooling", 3, (TierRule("7d", 1, 7 * 86_400_000),)),
    Tier("dormant", 6, (TierRule("30d", 1, 30 * 86_400_000),)),
))


@dataclass(frozen=True)
class BrakeRule:
    """Trips when a campaign's (or strategy's) figures over ``window`` pass any threshold."""

    rule_id: str
    scope: str  # campaign or strategy
    window: str  # 24h or 7d
    min_touches: int
    thresholds: Mapping[str, float]  # a rate name or fatigue_index → the level that trips the brake
    release_after_ms: int  # 0: until an operator resumes
    shadow: bool


@dataclass(frozen=True)
class FatiguePolicy:
    components: Mapping[str, Component]
    brakes: tuple[BrakeRule, ...] = ()
    min_touches: int = MIN_TOUCHES  # fewer touches in a window: "too few touches", not an index


@dataclass(frozen=True)
class Policy:
    channels: Mapping[str, ChannelPolicy]
    categories: Mapping[str, bool]  # category → default opt-in
    default_quiet: QuietHours
    rules: tuple[CapRule, ...]
    classes: Mapping[TouchClass, ClassPolicy]
    store_unavailable_retry_ms: int
    max_schedule_ahead_ms: int
    source: str
    replies: ReplyPolicy
    # (class, channel, category) → the rules that may apply (only a campaign can still rule one out)
    _candidates: dict[tuple[TouchClass, str, str], tuple[CapRule, ...]] = field(
        default_factory=dict, compare=False, repr=False)
    text: str = field(default="", compare=False, repr=False)  # the YAML it was read from (guard policy show)
    engagement: EngagementPolicy = field(default_factory=lambda: DEFAULT_ENGAGEMENT)
    fatigue: FatiguePolicy = field(default_factory=lambda: FatiguePolicy(DEFAULT_COMPONENTS))
    category_labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # category → locale → display name
    # How the consent ledger keeps a person's address: none, truncated (IPv4 /24, IPv6 /48) or hashed (keyed).
    privacy_ip: str = "truncated"
    timing: TimingPolicy = field(default_factory=TimingPolicy)  # the best hour: enough history, fading, size
    webhooks_disable_after_ms: int = 5 * 86_400_000  # an endpoint failing this long is disabled

    def label(self, kind: str, name: str, locale: str) -> str:
        """The display name of a channel or category in ``locale`` (English, then the name itself, when absent)."""
        labels = self.channels[name].labels if kind == "channel" else self.category_labels.get(name, {})
        return labels.get(locale) or labels.get("en") or name

    def rules_for(self, touch: Touch) -> tuple[RuleCheck, ...]:
        """The cap rules that count this touch, each with the counter it counts in."""
        key = (touch.touch_class, touch.channel, touch.category)
        candidates = self._candidates.get(key)
        if candidates is None:
            candidates = tuple(r for r in self.rules if r.matches(*key))
            self._candidates[key] = candidates
        campaign = touch.campaign_id
        return tuple(r.check_for(touch.channel, touch.category, campaign) for r in candidates if r.counts_campaign(campaign))


def parse_duration(value: Any, where: str) -> int:
    match = _DURATION.match(str(value).strip())
    if not match or int(match.group(1)) <= 0:
        raise PolicyError(f"{where}: a duration like 30s, 15m, 1d or 7d is expected, got {value!r}")
    return int(match.group(1)) * _UNIT_MS[match.group(2)]


class _Lines:
    """Key path → line number, from YAML's node tree (for error messages)."""

    def __init__(self, text: str) -> None:
        self.lines: dict[str, int] = {}
        try:
            node = yaml.compose(text)
        except yaml.YAMLError:
            node = None
        if node is not None:
            self._walk(node, "")

    def _walk(self, node: yaml.Node, path: str) -> None:
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                sub = f"{path}.{key.value}" if path else str(key.value)
                self.lines[sub] = key.start_mark.line + 1
                self._walk(value, sub)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self._walk(item, f"{path}[{i}]")

    def at(self, path: str) -> str:
        probe = path
        while probe:
            if probe in self.lines:
                return f"{path} (line {self.lines[probe]})"
            probe = probe.rsplit(".", 1)[0] if "." in probe else ""
        return path


class _Reader:
    def __init__(self, lines: _Lines) -> None:
        self.where = lines.at

    def mapping(self, value: Any, path: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise PolicyError(f"{self.where(path)}: a mapping is expected")
        return value

    def only(self, value: dict[str, Any], path: str, allowed: set[str]) -> None:
        for key in value:
            if key not in allowed:
                raise PolicyError(f"{self.where(f'{path}.{key}' if path else str(key))}: unknown key "
                                  f"(expected one of {', '.join(sorted(allowed))})")

    def ident(self, value: Any, path: str) -> str:
        if not isinstance(value, str) or not _ID.match(value):
            raise PolicyError(f"{self.where(path)}: a lowercase identifier is expected, got {value!r}")
        return value

    def boolean(self, value: Any, path: str) -> bool:
        if not isinstance(value, bool):
            raise PolicyError(f"{self.where(path)}: true or false is expected, got {value!r}")
        return value

    def names(self, value: Any, path: str, known: Mapping[str, Any] | set[str] | None) -> frozenset[str]:
        if value is None:
            return frozenset()
        if not isinstance(value, list):
            raise PolicyError(f"{self.where(path)}: a list is expected")
        out = set()
        for i, item in enumerate(value):
            name = str(item)
            if known is not None and name not in known:
                raise PolicyError(f"{self.where(f'{path}[{i}]')}: unknown name {name!r} "
                                  f"(known: {', '.join(sorted(known))})")
            out.add(name)
        return frozenset(out)


def _scope(reader: _Reader, value: Any, path: str) -> str:
    if value not in SCOPES:
        raise PolicyError(f"{reader.where(path)}: one of {', '.join(SCOPES)} is expected, got {value!r}")
    return str(value)


def _quiet(reader: _Reader, raw: Any, path: str) -> QuietHours:
    q = reader.mapping(raw, path)
    reader.only(q, path, {"time_zone", "start", "end"})
    try:
        clock.zone(str(q.get("time_zone", "")))
    except ValueError as exc:
        raise PolicyError(f"{reader.where(path + '.time_zone')}: {exc}") from None
    try:
        start, end = clock.parse_hhmm(str(q.get("start", ""))), clock.parse_hhmm(str(q.get("end", "")))
    except ValueError as exc:
        raise PolicyError(f"{reader.where(path)}: {exc}") from None
    return QuietHours(str(q["time_zone"]), start, end)


def parse(text: str, source: str = "<policy>") -> Policy:
    lines = _Lines(text)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" (line {mark.line + 1})" if mark is not None else ""
        raise PolicyError(f"not valid YAML{line}: {getattr(exc, 'problem', exc)}") from None
    r = _Reader(lines)
    top = r.mapping(data, "")
    r.only(top, "", {"channels", "categories", "quiet_hours", "caps", "classes", "store_unavailable_retry_after",
                     "max_schedule_ahead", "replies", "recovery", "engagement", "fatigue", "privacy", "timing",
                     "webhooks"})

    channels: dict[str, ChannelPolicy] = {}
    for name, raw in r.mapping(top.get("channels"), "channels").items():
        path = f"channels.{name}"
        r.ident(name, path)
        cfg = r.mapping(raw or {}, path)
        r.only(cfg, path, {"default_opt_in", "opt_out_scope", "stop_all", "scope_before", "confirm_opt_in",
                           "closed_by_law", "label"})
        # closed_by_law (before scopes): closing the channel stopped every message; it keeps meaning that.
        law = r.boolean(cfg.get("closed_by_law", False), path + ".closed_by_law")
        everything = "all" if law else "marketing"
        raw_scopes = r.mapping(cfg.get("opt_out_scope", {"default": everything}), path + ".opt_out_scope")
        scopes = {"default": everything}
        for source, scope in raw_scopes.items():
            r.ident(source, f"{path}.opt_out_scope")
            scopes[source] = _scope(r, scope, f"{path}.opt_out_scope.{source}")
        channels[name] = ChannelPolicy(name, r.boolean(cfg.get("default_opt_in", True), path + ".default_opt_in"),
                                       _labels(r, cfg.get("label"), path + ".label"), scopes,
                                       r.boolean(cfg.get("stop_all", law), path + ".stop_all"),
                                       _scope(r, cfg.get("scope_before", everything), path + ".scope_before"),
                                       r.boolean(cfg.get("confirm_opt_in", False), path + ".confirm_opt_in"))
    categories: dict[str, bool] = {}
    category_labels: dict[str, Mapping[str, str]] = {}
    for name, raw in r.mapping(top.get("categories"), "categories").items():
        path = f"categories.{name}"
        r.ident(name, path)
        cfg = r.mapping(raw or {}, path)
        r.only(cfg, path, {"default_opt_in", "label"})
        categories[name] = r.boolean(cfg.get("default_opt_in", True), path + ".default_opt_in")
        category_labels[name] = _labels(r, cfg.get("label"), path + ".label")

    quiet = _quiet(r, top.get("quiet_hours"), "quiet_hours")

    class_names = {c.value: c for c in TouchClass}
    check_names = {c.value: c for c in Check}
    classes: dict[TouchClass, ClassPolicy] = {}
    for name, raw in r.mapping(top.get("classes"), "classes").items():
        path = f"classes.{name}"
        if name not in class_names:
            raise PolicyError(f"{r.where(path)}: unknown touch class (known: {', '.join(class_names)})")
        cfg = r.mapping(raw, path)
        r.only(cfg, path, {"checks", "fail_mode"})
        listed = cfg.get("checks", [])
        if isinstance(listed, list):  # legal_channel: stopped_channel's name before scopes
            listed = ["stopped_channel" if c == "legal_channel" else c for c in listed]
        checks = r.names(listed, path + ".checks", set(check_names))
        mode = cfg.get("fail_mode", "closed")
        if mode not in ("open", "closed"):
            raise PolicyError(f"{r.where(path + '.fail_mode')}: open or closed is expected, got {mode!r}")
        classes[class_names[name]] = ClassPolicy(frozenset(check_names[c] for c in checks), mode == "open")
    for touch_class in TouchClass:
        if touch_class not in classes:
            raise PolicyError(f"{r.where('classes')}: class {touch_class.value!r} is missing")

    rules: list[CapRule] = []
    caps = _rules(r, top.get("caps"), "caps")
    seen: set[str] = set()
    for i, raw in enumerate(caps):
        path = f"caps[{i}]"
        cfg = r.mapping(raw, path)
        r.only(cfg, path, {"id", "limit", "window", "classes", "channels", "categories", "campaigns", "per", "shadow"})
        rule_id = r.ident(cfg.get("id"), path + ".id")
        if rule_id in seen or rule_id == "user_max_marketing_per_week":
            raise PolicyError(f"{r.where(path + '.id')}: rule id {rule_id!r} is used twice or reserved")
        seen.add(rule_id)
        limit = cfg.get("limit")
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise PolicyError(f"{r.where(path + '.limit')}: a whole number ≥ 1 is expected, got {limit!r}")
        per = cfg.get("per", "user")
        if per not in ("user", "campaign", "channel", "category"):
            raise PolicyError(f"{r.where(path + '.per')}: user, campaign, channel or category is expected")
        rule_classes = r.names(cfg.get("classes", ["marketing"]), path + ".classes", set(class_names))
        rules.append(CapRule(
            rule_id=rule_id,
            limit=limit,
            window_ms=parse_duration(cfg.get("window"), r.where(path + ".window")),
            classes=frozenset(class_names[c] for c in rule_classes),
            channels=r.names(cfg.get("channels"), path + ".channels", channels),
            categories=r.names(cfg.get("categories"), path + ".categories", categories),
            campaigns=r.names(cfg.get("campaigns"), path + ".campaigns", None),
            per=per,
            shadow=r.boolean(cfg.get("shadow", False), path + ".shadow"),
        ))
    retry = parse_duration(top.get("store_unavailable_retry_after", "30s"), r.where("store_unavailable_retry_after"))
    ahead = parse_duration(top.get("max_schedule_ahead", "90d"), r.where("max_schedule_ahead"))
    privacy = r.mapping(top.get("privacy") or {}, "privacy")
    r.only(privacy, "privacy", {"ip"})
    ip = privacy.get("ip", "truncated")
    if ip not in IP_KEPT:
        raise PolicyError(f"{r.where('privacy.ip')}: one of {', '.join(IP_KEPT)} is expected, got {ip!r}")
    return Policy(channels, categories, quiet, tuple(rules), classes, retry, ahead, source, _replies(r, top), text=text,
                  engagement=_engagement(r, top.get("engagement")), fatigue=_fatigue(r, top.get("fatigue")),
                  category_labels=category_labels, privacy_ip=str(ip), timing=_timing(r, top.get("timing")),
                  webhooks_disable_after_ms=_webhooks(r, top.get("webhooks")))


LABEL_LOCALES = ("en", "zh")
IP_KEPT = ("none", "truncated", "hashed")


def _labels(r: _Reader, raw: Any, path: str) -> Mapping[str, str]:
    """Display names by locale: ``{en: Text messages, zh: 短信}``; a missing one falls back to the name."""
    if raw is None:
        return {}
    cfg = r.mapping(raw, path)
    r.only(cfg, path, set(LABEL_LOCALES))
    out = {}
    for locale, value in cfg.items():
        if not isinstance(value, str) or not value.strip() or len(value) > 64:
            raise PolicyError(f"{r.where(path + '.' + locale)}: a display name of 1 to 64 characters is expected")
        out[locale] = value.strip()
    return out


def _rules(r: _Reader, value: Any, path: str) -> list[Any]:
    """A list of rules (absent: none)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise PolicyError(f"{r.where(path)}: a list of rules is expected")
    return value


def _words(r: _Reader, value: Any, path: str, default: tuple[str, ...]) -> tuple[str, ...]:
    if value is None:
        return default
    if not isinstance(value, list) or not all(isinstance(v, str | int) and str(v).strip() for v in value):
        raise PolicyError(f"{r.where(path)}: a list of non-empty words is expected")
    return tuple(str(v) for v in value)


def _replies(r: _Reader, top: dict[str, Any]) -> ReplyPolicy:
    rep = r.mapping(top.get("replies") or {}, "replies")
    r.only(rep, "replies", {"negative_threshold", "hold", "lookback", "attribution_window", "pending_retry_after",
                            "score_wait", "opt_out_keywords", "opt_in_keywords", "legal_words", "retention"})
    rec = r.mapping(top.get("recovery") or {}, "recovery")
    r.only(rec, "recovery", {"sla", "redeliver_after", "max_replies_per_task", "retention"})
    keep = rec.get("max_replies_per_task", 20)
    if not isinstance(keep, int) or isinstance(keep, bool) or not 1 <= keep <= 200:
        raise PolicyError(f"{r.where('recovery.max_replies_per_task')}: a whole number from 1 to 200 is expected")
    threshold = rep.get("negative_threshold", 0.5)
    if not isinstance(threshold, int | float) or isinstance(threshold, bool) or not 0 < threshold <= 1:
        raise PolicyError(f"{r.where('replies.negative_threshold')}: a number in (0, 1] is expected")
    sla_raw = r.mapping(rec.get("sla") or {"p1": "2h", "p2": "8h", "p3": "24h"}, "recovery.sla")
    r.only(sla_raw, "recovery.sla", {"p1", "p2", "p3"})
    sla = {"P1": "2h", "P2": "8h", "P3": "24h"}
    sla.update({k.upper(): v for k, v in sla_raw.items()})

    def dur(key: str, default: str, section: dict[str, Any] = rep, name: str = "replies") -> int:
        return parse_duration(section.get(key, default), r.where(f"{name}.{key}"))

    return ReplyPolicy(
        negative_threshold=float(threshold),
        hold_ms=dur("hold", "7d"),
        lookback_ms=dur("lookback", "3d"),
        attribution_window_ms=dur("attribution_window", "3d"),
        pending_retry_ms=dur("pending_retry_after", "60s"),
        score_wait_ms=dur("score_wait", "2s"),
        opt_out_keywords=_words(r, rep.get("opt_out_keywords"), "replies.opt_out_keywords", DEFAULT_OPT_OUT),
        opt_in_keywords=_words(r, rep.get("opt_in_keywords"), "replies.opt_in_keywords", DEFAULT_OPT_IN),
        legal_words=_words(r, rep.get("legal_words"), "replies.legal_words", DEFAULT_LEGAL),
        sla_ms={k: parse_duration(v, r.where(f"recovery.sla.{k.lower()}")) for k, v in sla.items()},
        redeliver_after_ms=dur("redeliver_after", "60s", rec, "recovery"),
        max_task_replies=keep,
        text_retention_ms=_retention(r, rep, "replies", "90d"),
        task_retention_ms=_retention(r, rec, "recovery", "180d"),
    )


MAX_TIERS = 8


def _engagement(r: _Reader, raw: Any) -> EngagementPolicy:
    """``engagement``: when a touch counts as ignored, and the tiers consecutive ignored touches lead to."""
    if raw is None:
        return DEFAULT_ENGAGEMENT
    cfg = r.mapping(raw, "engagement")
    r.only(cfg, "engagement", {"ignore_after", "tiers"})
    ignore = parse_duration(cfg.get("ignore_after", "3d"), r.where("engagement.ignore_after"))
    raw_tiers = cfg.get("tiers")
    if raw_tiers is None:
        return EngagementPolicy(ignore, DEFAULT_ENGAGEMENT.tiers)
    if not isinstance(raw_tiers, list) or not 1 <= len(raw_tiers) <= MAX_TIERS:
        raise PolicyError(f"{r.where('engagement.tiers')}: a list of 1 to {MAX_TIERS} tiers is expected")
    tiers: list[Tier] = []
    for i, item in enumerate(raw_tiers):
        path = f"engagement.tiers[{i}]"
        t = r.mapping(item, path)
        r.only(t, path, {"name", "after_ignored", "caps", "shadow"})
        name = r.ident(t.get("name"), path + ".name")
        after = t.get("after_ignored", 0)
        if not isinstance(after, int) or isinstance(after, bool) or not 0 <= after <= 50:
            raise PolicyError(f"{r.where(path + '.after_ignored')}: a whole number from 0 to 50 is expected")
        if i == 0 and after != 0:
            raise PolicyError(f"{r.where(path + '.after_ignored')}: the first tier is where every user starts: 0")
        if tiers and (after <= tiers[-1].after_ignored or name in {x.name for x in tiers}):
            raise PolicyError(f"{r.where(path)}: tiers need distinct names and after_ignored rising from one to the next")
        rules: list[TierRule] = []
        for j, rule in enumerate(_rules(r, t.get("caps"), path + ".caps")):
            rpath = f"{path}.caps[{j}]"
            c = r.mapping(rule, rpath)
            r.only(c, rpath, {"id", "limit", "window"})  # a tier's caps count every marketing touch of the user
            limit = c.get("limit")
            if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
                raise PolicyError(f"{r.where(rpath + '.limit')}: a whole number ≥ 1 is expected, got {limit!r}")
            window = parse_duration(c.get("window"), r.where(rpath + ".window"))
            if window > 90 * 86_400_000:
                raise PolicyError(f"{r.where(rpath + '.window')}: at most 90d")
            rule_id = r.ident(c.get("id", str(c.get("window"))), rpath + ".id")
            rules.append(TierRule(rule_id, limit, window))
        tiers.append(Tier(name, after, tuple(rules), r.boolean(t.get("shadow", False), path + ".shadow")))
    return EngagementPolicy(ignore, tuple(tiers))


def _webhooks(r: _Reader, raw: Any) -> int:
    """``webhooks.disable_after``: how long an endpoint may fail before it is disabled (1h-30d, default 5d)."""
    cfg = r.mapping(raw or {}, "webhooks")
    r.only(cfg, "webhooks", {"disable_after"})
    after = parse_duration(cfg.get("disable_after", "5d"), r.where("webhooks.disable_after"))
    if not 3_600_000 <= after <= 30 * 86_400_000:
        raise PolicyError(f"{r.where('webhooks.disable_after')}: from 1h to 30d is expected")
    return after


def _timing(r: _Reader, raw: Any) -> TimingPolicy:
    """``timing``: when a user's interaction hours are enough to pick their best hour, and how they fade."""
    cfg = r.mapping(raw or {}, "timing")
    r.only(cfg, "timing", {"min_interactions", "half_life", "profile_hours"})
    default = TimingPolicy()
    half_life = parse_duration(cfg.get("half_life", "28d"), r.where("timing.half_life"))
    if not 86_400_000 <= half_life <= 365 * 86_400_000:
        raise PolicyError(f"{r.where('timing.half_life')}: from 1d to 365d is expected")
    hours = cfg.get("profile_hours", default.profile_hours)
    if not isinstance(hours, int) or isinstance(hours, bool) or not 1 <= hours <= WEEK_HOURS:
        raise PolicyError(f"{r.where('timing.profile_hours')}: a whole number from 1 to {WEEK_HOURS} is expected")
    least = _number(r, cfg.get("min_interactions", default.min_interactions), "timing.min_interactions", 0, 1000)
    return TimingPolicy(least, half_life, hours)


BRAKE_SIGNALS = (*RATES, "fatigue_index")


def _number(r: _Reader, value: Any, path: str, low: float, high: float) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or not low <= value <= high:
        raise PolicyError(f"{r.where(path)}: a number from {low:g} to {high:g} is expected")
    return float(value)


def _fatigue(r: _Reader, raw: Any) -> FatiguePolicy:
    """``fatigue``: the index's levels and weights (``index``), and the brake rules (``brake``)."""
    if raw is None:
        return FatiguePolicy(DEFAULT_COMPONENTS)
    cfg = r.mapping(raw, "fatigue")
    r.only(cfg, "fatigue", {"index", "brake", "min_touches"})
    components = dict(DEFAULT_COMPONENTS)
    levels = r.mapping(cfg.get("index") or {}, "fatigue.index")
    r.only(levels, "fatigue.index", set(RATES))
    for name, item in levels.items():
        path = f"fatigue.index.{name}"
        c = r.mapping(item, path)
        r.only(c, path, {"good", "bad", "weight"})
        base = components[name]
        good = _number(r, c.get("good", base.good), path + ".good", 0, 1)
        bad = _number(r, c.get("bad", base.bad), path + ".bad", 0, 1)
        if bad <= good:
            raise PolicyError(f"{r.where(path)}: bad must be above good")
        components[name] = Component(good, bad, _number(r, c.get("weight", base.weight), path + ".weight", 0, 100))
    brakes: list[BrakeRule] = []
    for i, item in enumerate(_rules(r, cfg.get("brake"), "fatigue.brake")):
        path = f"fatigue.brake[{i}]"
        b = r.mapping(item, path)
        r.only(b, path, {"id", "scope", "window", "min_touches", "when", "release_after", "shadow"})
        scope = b.get("scope", "campaign")
        if scope not in ("campaign", "strategy"):
            raise PolicyError(f"{r.where(path + '.scope')}: campaign or strategy is expected")
        window = str(b.get("window", "24h"))
        if window not in ("24h", "7d"):
            raise PolicyError(f"{r.where(path + '.window')}: 24h or 7d is expected")
        minimum = b.get("min_touches", 100)
        if not isinstance(minimum, int) or isinstance(minimum, bool) or minimum < 1:
            raise PolicyError(f"{r.where(path + '.min_touches')}: a whole number ≥ 1 is expected")
        when = r.mapping(b.get("when"), path + ".when")
        r.only(when, path + ".when", set(BRAKE_SIGNALS))
        if not when:
            raise PolicyError(f"{r.where(path + '.when')}: name at least one of {', '.join(BRAKE_SIGNALS)}")
        thresholds = {k: _number(r, v, f"{path}.when.{k}", 0, 100 if k == "fatigue_index" else 1)
                      for k, v in when.items()}
        release = b.get("release_after")
        brakes.append(BrakeRule(r.ident(b.get("id"), path + ".id"), scope, window, minimum, thresholds,
                                parse_duration(release, r.where(path + ".release_after")) if release else 0,
                                r.boolean(b.get("shadow", False), path + ".shadow")))
    evidence = cfg.get("min_touches", MIN_TOUCHES)
    if not isinstance(evidence, int) or isinstance(evidence, bool) or evidence < 1:
        raise PolicyError(f"{r.where('fatigue.min_touches')}: a whole number ≥ 1 is expected")
    return FatiguePolicy(components, tuple(brakes), evidence)


def _retention(r: _Reader, section: dict[str, Any], name: str, default: str) -> int:
    """A retention: at least a day (the sweep's pace), at most ten years."""
    ms = parse_duration(section.get("retention", default), r.where(f"{name}.retention"))
    if not 86_400_000 <= ms <= 3650 * 86_400_000:
        raise PolicyError(f"{r.where(f'{name}.retention')}: between 1d and 3650d is expected")
    return ms


def load(path: Path | None) -> Policy:
    """The policy at ``path``, or the shipped default (``guard/default_policy.yaml``)."""
    if path is None:
        text = resources.files("guard").joinpath("default_policy.yaml").read_text(encoding="utf-8")
        return parse(text, "default")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"cannot read policy file {path}: {exc.strerror}") from None
    return parse(text, str(path))
