"""Protobuf ⇄ domain types, in one place. Only the transport imports generated code."""

from __future__ import annotations

from collections.abc import Mapping

from google.protobuf import duration_pb2, timestamp_pb2

from guard.domain import clock
from guard.domain.fatigue import Figures
from guard.domain.types import CapUsage, Outcome, Preferences, Touch, TouchClass
from guard.errors import InvalidArgument
from guard.policy import Policy
from guard.store.brakes import Brake, field_of
from guard.store.redis_store import StoredTouch
from guard.usecases.checks import UserState
from guard.usecases.desk import RecoveryTask
from guard.usecases.engagement import EngagementState, Event, EventResult
from guard.usecases.figures import Health
from guard.usecases.preferences import ConsentEvent, PreferencesPatch
from guard.usecases.replies import ReplyResult
from guard.v1 import guard_pb2 as pb
from guard.validate import MAX_TIMESTAMP_S, timestamp_ms

_CLASS_TO_DOMAIN = {pb.MARKETING: TouchClass.MARKETING, pb.TRANSACTIONAL: TouchClass.TRANSACTIONAL,
                    pb.SERVICE: TouchClass.SERVICE}
_CLASS_TO_PB = {v: k for k, v in _CLASS_TO_DOMAIN.items()}
_CLASS_BY_NAME = {c.value: _CLASS_TO_PB[c] for c in TouchClass}


def ts_to_ms(ts: timestamp_pb2.Timestamp, field_name: str) -> int:
    """A request's Timestamp in epoch ms; ``InvalidArgument`` naming the field when out of range."""
    return timestamp_ms(int(ts.seconds), int(ts.nanos), field_name)


_MAX_MS = MAX_TIMESTAMP_S * 1000 + 999


def ms_to_ts(ms: int) -> timestamp_pb2.Timestamp:
    """Clamped into the Timestamp range, so no stored value can make an answer unencodable."""
    ms = min(max(0, ms), _MAX_MS)
    return timestamp_pb2.Timestamp(seconds=ms // 1000, nanos=(ms % 1000) * 1_000_000)


def duration_ms(value: duration_pb2.Duration, field_name: str) -> int:
    """A Duration as whole milliseconds; a negative or out-of-range one names its field."""
    if value.seconds < 0 or value.nanos < 0 or value.seconds > 10 * 366 * 86_400:
        raise InvalidArgument(field_name, "must be a positive duration of at most 10 years")
    return int(value.seconds) * 1000 + int(value.nanos) // 1_000_000


def ms_to_duration(ms: int) -> duration_pb2.Duration:
    ms = min(max(0, ms), _MAX_MS)
    return duration_pb2.Duration(seconds=ms // 1000, nanos=(ms % 1000) * 1_000_000)


_TIMING = {pb.AS_SOON_AS_ALLOWED: "", pb.BEST_HOUR: "best_hour"}


def touch_from_pb(req: pb.CheckTouchRequest, prefix: str = "") -> Touch:
    if req.touch_class not in _CLASS_TO_DOMAIN:
        raise InvalidArgument(prefix + "touch_class", f"unknown touch class {req.touch_class}")
    at = 0
    if req.HasField("send_at"):
        at = ts_to_ms(req.send_at, prefix + "send_at")
        if at <= 0:
            raise InvalidArgument(prefix + "send_at", "must be after 1970")
    if req.timing not in _TIMING:
        raise InvalidArgument(prefix + "timing", f"unknown timing {req.timing} (known: AS_SOON_AS_ALLOWED, BEST_HOUR)")
    return Touch(req.user_id, req.channel, req.category, req.campaign_id, req.touch_id,
                 _CLASS_TO_DOMAIN[req.touch_class], req.dry_run, at, req.high_value_user, req.strategy_id,
                 _TIMING[req.timing])


def cap_to_pb(cap: CapUsage) -> pb.CapUsage:
    return pb.CapUsage(rule_id=cap.rule_id, limit=cap.limit, used=cap.used, window=ms_to_duration(cap.window_ms),
                       shadow=cap.shadow, exceeded=cap.exceeded)


def outcome_to_pb(outcome: Outcome) -> pb.CheckTouchResponse:
    resp = pb.CheckTouchResponse(
        decision=pb.Decision.Value(outcome.verdict.value),
        reasons=[pb.Reason.Value(r.value) for r in outcome.reasons],
        caps=[cap_to_pb(c) for c in outcome.caps],
        recorded=outcome.recorded,
        detail=outcome.detail,
        replayed=outcome.replayed,
        evaluated_at=ms_to_ts(outcome.evaluated_at_ms),
        tier=outcome.tier,
    )
    if outcome.retry_at_ms is not None:
        resp.retry_after.CopyFrom(ms_to_duration(outcome.retry_at_ms - outcome.evaluated_at_ms))
    return resp


def prefs_to_pb(user_id: str, prefs: Preferences, policy: Policy) -> pb.Preferences:
    """The preferences as the API shows them: every closed channel with how far it is closed (a closing from
    before scopes existed as its policy's scope_before)."""
    scopes = {name: prefs.channel_scopes.get(name, policy.channels[name].scope_before if name in policy.channels
                                             else "marketing")
              for name, is_open in prefs.channels.items() if not is_open}
    msg = pb.Preferences(user_id=user_id, channels=prefs.channels, categories=prefs.categories, channel_scopes=scopes,
                         grid=prefs.grid, pending_confirmation=sorted(c for c, waiting in prefs.pending.items() if waiting),
                         unsubscribed_all=prefs.unsubscribed_all, max_marketing_per_week=prefs.max_marketing_per_week,
                         version=prefs.version)
    if prefs.quiet_hours is not None:
        q = prefs.quiet_hours
        msg.quiet_hours.CopyFrom(pb.QuietHours(time_zone=q.time_zone, start=clock.format_hhmm(q.start_minute),
                                               end=clock.format_hhmm(q.end_minute)))
    if prefs.paused_until_ms:
        msg.paused_until.CopyFrom(ms_to_ts(prefs.paused_until_ms))
    if prefs.updated_at_ms:
        msg.updated_at.CopyFrom(ms_to_ts(prefs.updated_at_ms))
    return msg


def patch_from_pb(req: pb.UpdatePreferencesRequest) -> PreferencesPatch:
    p = req.preferences
    quiet = None
    if p.HasField("quiet_hours") and (p.quiet_hours.time_zone or p.quiet_hours.start or p.quiet_hours.end):
        quiet = (p.quiet_hours.time_zone, p.quiet_hours.start, p.quiet_hours.end)
    masked = {"paused_until", "*"} & set(req.update_mask.paths)  # a value outside the mask is never read
    paused = ts_to_ms(p.paused_until, "preferences.paused_until") if masked and p.HasField("paused_until") else 0
    return PreferencesPatch(paths=list(req.update_mask.paths), channels=dict(p.channels),
                            channel_scopes=dict(p.channel_scopes), grid=dict(p.grid),
                            categories=dict(p.categories), unsubscribed_all=p.unsubscribed_all,
                            quiet_hours=quiet, paused_until_ms=paused,
                            max_marketing_per_week=p.max_marketing_per_week)


def consent_to_pb(event: ConsentEvent) -> pb.ConsentEvent:
    return pb.ConsentEvent(at=ms_to_ts(event.at_ms), source=event.source, actor=event.actor, field=event.field,
                           old_value=event.old_value, new_value=event.new_value, version=event.version,
                           evidence=dict(event.evidence))


def touch_record_to_pb(t: StoredTouch) -> pb.TouchRecord:
    return pb.TouchRecord(touch_id=t.touch_id, channel=t.channel, category=t.category, campaign_id=t.campaign_id,
                          touch_class=_CLASS_BY_NAME.get(t.touch_class, pb.MARKETING), at=ms_to_ts(t.at_ms))


def user_state_to_pb(user_id: str, state: UserState, engagement: EngagementState, policy: Policy) -> pb.UserState:
    msg = pb.UserState(preferences=prefs_to_pb(user_id, state.preferences, policy), engagement=engagement_to_pb(engagement),
                       recent_touches=[touch_record_to_pb(t) for t in state.recent_touches],
                       caps=[cap_to_pb(c) for c in state.caps],
                       consent_events=[consent_to_pb(e) for e in state.consent_events])
    if state.hold_until_ms:
        msg.holds.append(pb.Hold(kind="negative_sentiment", until=ms_to_ts(state.hold_until_ms),
                                 detail="marketing held after a negative reply"))
    return msg


_ACTIONS = {"none": pb.NONE, "hold": pb.HOLD, "opt_out": pb.OPT_OUT, "opt_in": pb.OPT_IN}
_LABELS = {"UNSCORED": pb.UNSCORED, "NEGATIVE": pb.NEGATIVE, "NEUTRAL": pb.NEUTRAL, "POSITIVE": pb.POSITIVE}


def reply_to_pb(result: ReplyResult) -> pb.RecordReplyResponse:
    return pb.RecordReplyResponse(label=_LABELS.get(result.label, pb.UNSCORED), negative_score=result.negative,
                                  action=_ACTIONS.get(result.action, pb.NONE), task_id=result.task_id,
                                  detail=result.detail, campaign_id=result.campaign_id, replayed=result.replayed)


def task_to_pb(task: RecoveryTask) -> pb.RecoveryTask:
    msg = pb.RecoveryTask(
        task_id=task.task_id, user_id=task.user_id, channel=task.channel, campaign_id=task.campaign_id,
        priority=pb.Priority.Value(task.priority) if task.priority in ("P1", "P2", "P3") else pb.PRIORITY_UNSPECIFIED,
        created_at=ms_to_ts(task.created_ms), due_at=ms_to_ts(task.due_ms),
        status=pb.TaskStatus.Value(task.status if task.status in ("OPEN", "CLAIMED", "RESOLVED") else "TASK_STATUS_UNSPECIFIED"),
        assignee=task.assignee, assignee_key_id=task.assignee_key,
        outcome=pb.TaskOutcome.Value(task.outcome or "TASK_OUTCOME_UNSPECIFIED"),
        note=task.note, replies_omitted=task.replies_omitted, kind=task.kind, summary=task.summary)
    for r in task.replies:
        msg.replies.append(pb.TaskReply(reply_id=r.reply_id, text=r.text, at=ms_to_ts(r.at_ms), negative_score=r.negative))
    return msg


def event_from_pb(msg: pb.EngagementEvent, prefix: str = "") -> Event:
    occurred = ts_to_ms(msg.occurred_at, prefix + "occurred_at") if msg.HasField("occurred_at") else 0
    if msg.HasField("occurred_at") and occurred <= 0:
        raise InvalidArgument(prefix + "occurred_at", "must be after 1970")
    known = msg.event != pb.EngagementEvent.KIND_UNSPECIFIED and msg.event in pb.EngagementEvent.Kind.values()
    return Event(msg.touch_id, msg.user_id, pb.EngagementEvent.Kind.Name(msg.event) if known else "", occurred,
                 msg.detail, msg.provider, msg.channel)


def event_result_to_pb(result: EventResult) -> pb.RecordEngagementResponse:
    return pb.RecordEngagementResponse(replayed=result.replayed, touch_known=result.touch_known,
                                       campaign_id=result.campaign_id, channel=result.channel, action=result.action,
                                       task_id=result.task_id)


def engagement_to_pb(state: EngagementState) -> pb.EngagementState:
    msg = pb.EngagementState(tier=state.tier, ignored_in_a_row=state.ignored_in_a_row,
                             override_tier=state.override_tier, undeliverable_channels=list(state.undeliverable),
                             interaction_hours=[pb.InteractionHour(hour_of_week=h, weight=w) for h, w in state.hours],
                             interactions=state.interactions)
    if state.last_interaction_ms:
        msg.last_interaction_at.CopyFrom(ms_to_ts(state.last_interaction_ms))
    if state.override_until_ms:
        msg.override_until.CopyFrom(ms_to_ts(state.override_until_ms))
    return msg


def _figures_to_pb(f: Figures) -> pb.HealthFigures:
    return pb.HealthFigures(
        touches=f.touches, deliveries=f.deliveries, opens=f.opens, clicks=f.clicks, conversions=f.conversions,
        replies=f.replies, negative_replies=f.negative_replies, opt_outs=f.opt_outs,
        list_unsubscribes=f.list_unsubscribes, spam_complaints=f.spam_complaints, bounces=f.bounces,
        ignored=f.ignored, judged=f.judged, tasks_opened=f.tasks_opened, tasks_resolved=f.tasks_resolved,
        tasks_resolved_in_sla=f.tasks_resolved_in_sla, tasks_recovered=f.tasks_recovered)


def campaign_health_to_pb(h: Health, brakes: Mapping[str, Brake]) -> pb.CampaignHealth:
    msg = pb.CampaignHealth(campaign_id=h.name if h.scope == "campaign" else "",
                            strategy_id=h.name if h.scope == "strategy" else "", window=h.window,
                            figures=_figures_to_pb(h.figures), rates=pb.HealthRates(**h.rates),
                            fatigue_index=h.fatigue_index, previous_fatigue_index=h.previous_index, trend=h.trend,
                            too_few_touches=not h.enough, ranking_index=h.ranking_index)
    brake = brakes.get(field_of(h.scope, h.name))
    if brake is not None:
        msg.brake.CopyFrom(pb.Brake(rule=brake.rule, braked_at=ms_to_ts(brake.at_ms), shadow=brake.shadow,
                                    signal=brake.signal, value=brake.value))
        if brake.until_ms:
            msg.brake.until.CopyFrom(ms_to_ts(brake.until_ms))
    return msg


def experience_to_pb(h: Health) -> pb.ExperienceHealth:
    f = h.figures
    return pb.ExperienceHealth(window=h.window, figures=_figures_to_pb(f), rates=pb.HealthRates(**h.rates),
                               fatigue_index=h.fatigue_index, too_few_touches=not h.enough,
                               resolved_in_sla_share=f.tasks_resolved_in_sla / f.tasks_resolved if f.tasks_resolved else 0,
                               recovered_share=f.tasks_recovered / f.tasks_resolved if f.tasks_resolved else 0)
