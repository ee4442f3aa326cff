"""Prometheus metrics, one home for every counter and histogram."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from guard.domain.types import Outcome

DECISIONS = Counter(
    "guard_decisions_total", "CheckTouch decisions by decision, reason and touch class",
    ["decision", "reason", "touch_class"],
)
RPC_LATENCY = Histogram(
    "guard_rpc_seconds", "RPC latency by method and gRPC status", ["method", "code"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
STORE_ERRORS = Counter("guard_store_errors_total", "Redis calls that failed (unreachable, timed out or refused)")


def count_decision(outcome: Outcome, touch_class: str) -> None:
    reasons = [r.value for r in outcome.reasons] or ["NONE"]
    for reason in reasons:
        DECISIONS.labels(outcome.verdict.value, reason, touch_class).inc()

SENTIMENT_FAILURES = Counter("guard_sentiment_failures_total", "Scoring calls that failed or timed out (replies kept)")
TASKS_OPENED = Counter("guard_recovery_tasks_opened_total", "Recovery tasks opened by priority", ["priority"])
AUTH_FAILURES = Counter("guard_auth_failures_total",
                        "Calls refused by authentication or authorisation, by reason "
                        "(missing, unknown, revoked, role, tenant, limited)", ["reason"])
ENGAGEMENT_EVENTS = Counter("guard_engagement_events_total",
                            "Engagement events by event, and whether guard knew the touch", ["event", "touch"])
FIGURES = Counter("guard_figures_total", "The tenant's figures (touches, opens, negative replies, opt-outs, "
                  "spam complaints, tasks ...); per campaign they are in the health calls, not here", ["tenant", "figure"])
WATCHERS = Gauge("guard_desk_watchers", "WatchRecoveryTasks streams open in this process", multiprocess_mode="livesum")
