"""Prometheus metrics, one home for every counter and histogram."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from guard.domain.types import Outcome

DECISIONS = Counter(
    "guard_decisions_total", "CheckTouch decisions by decision and touch class (each decision counted once)",
    ["decision", "touch_class"],
)
DECISION_REASONS = Counter(
    "guard_decision_reasons_total", "The reasons CheckTouch decisions gave (a decision with two reasons counts in both)",
    ["reason", "decision", "touch_class"],
)
RPC_LATENCY = Histogram(
    "guard_rpc_seconds", "RPC latency by method and gRPC status", ["method", "code"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
STORE_ERRORS = Counter("guard_store_errors_total", "Redis calls that failed (unreachable, timed out or refused)")


def count_decision(outcome: Outcome, touch_class: str) -> None:
    DECISIONS.labels(outcome.verdict.value, touch_class).inc()
    for reason in outcome.reasons:
        DECISION_REASONS.labels(reason.value, outcome.verdict.value, touch_class).inc()

SENTIMENT_FAILURES = Counter("guard_sentiment_failures_total", "Scoring calls that failed or timed out (replies kept)")
TASKS_OPENED = Counter("guard_recovery_tasks_opened_total", "Recovery tasks opened by priority", ["priority"])
AUTH_FAILURES = Counter("guard_auth_failures_total",
                        "Calls refused by authentication or authorisation, by reason "
                        "(missing, unknown, revoked, role, tenant, limited)", ["reason"])
ENGAGEMENT_EVENTS = Counter("guard_engagement_events_total",
                            "Engagement events by event, and whether guard knew the touch", ["event", "touch"])
FIGURES = Counter("guard_figures_total", "The tenant's figures (touches, opens, negative replies, opt-outs, "
                  "spam complaints, tasks ...); per campaign they are in the health calls, not here", ["tenant", "figure"])
WEBHOOK_EVENTS = Counter("guard_webhook_events_total",
                         "Providers' webhook events by outcome: applied, replayed, unmatched (no user yet), ignored (of no "
                         "use to guard), or the request refused (forged, stale, replayed, malformed, too_large, "
                         "not_configured, unknown_provider)", ["provider", "outcome"])
BRAKE_EVALUATIONS = Counter("guard_brake_evaluations_total",
                            "Complete passes of the brake rules over every tenant (one process per deployment runs them)")
WATCHERS = Gauge("guard_desk_watchers", "WatchRecoveryTasks streams open in this process", multiprocess_mode="livesum")

# What on-call watches (gauges read every few seconds by the first worker; see docs/alerts.yaml).
STORE_UP = Gauge("guard_store_up", "1 while Redis answers this process", multiprocess_mode="livemin")
STORE_RESET = Gauge("guard_store_reset", "1 while the store is reset (it lost what guard wrote; see guard store adopt)",
                    multiprocess_mode="livemax")
STORE_RTT = Gauge("guard_store_rtt_seconds", "Round-trip time of the last PING to Redis", multiprocess_mode="livemax")
TASKS_OPEN = Gauge("guard_recovery_tasks_open", "Open or claimed recovery tasks by tenant and priority",
                   ["tenant", "priority"], multiprocess_mode="livemax")
TASKS_OVERDUE = Gauge("guard_recovery_tasks_overdue", "Open or claimed recovery tasks past their SLA by tenant and priority",
                      ["tenant", "priority"], multiprocess_mode="livemax")
REPLIES_UNSCORED = Gauge("guard_replies_unscored", "Replies waiting for the model (stored, not scored yet) by tenant",
                         ["tenant"], multiprocess_mode="livemax")
CAMPAIGNS_BRAKED = Gauge("guard_campaigns_braked", "Campaigns and strategies braked now by tenant", ["tenant"],
                         multiprocess_mode="livemax")
