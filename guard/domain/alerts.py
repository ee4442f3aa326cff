"""Alerts where support and marketing teams already look: a WeChat Work group robot (企业微信群机器人, markdown), a
DingTalk robot (钉钉, signed with its secret) and a Slack-compatible incoming webhook, for a P1 recovery task opening
and a brake tripping, in the tenant's language. Pure: the bodies and DingTalk's signature; the sending is the
outbound webhooks'."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

FORMATS = ("standard", "wecom_robot", "dingtalk", "slack")
ALERTS = ("task.opened", "brake.tripped")  # what a robot is told (a task only when it is P1)
LANGUAGES = ("zh", "en")

_TEXT = {
    "zh": {"task": "P1 服务修复任务", "user": "用户", "channel": "渠道", "campaign": "活动", "due": "处理时限",
           "brake": "活动已被疲劳刹车暂停", "signal": "触发指标", "value": "数值", "rule": "规则", "open": "请尽快在工作台处理。",
           "strategy": "策略", "summary": "说明"},
    "en": {"task": "P1 recovery task", "user": "User", "channel": "Channel", "campaign": "Campaign", "due": "Due",
           "brake": "Campaign braked for fatigue", "signal": "Signal", "value": "Value", "rule": "Rule",
           "open": "Please pick it up on the desk.", "strategy": "Strategy", "summary": "Summary"},
}


def _lines(event_type: str, data: Mapping[str, Any], language: str) -> tuple[str, list[str]] | None:
    t = _TEXT[language]
    if event_type == "task.opened":
        if data.get("priority") != "P1":
            return None
        rows = [f"{t['user']}: {data.get('user_id') or '-'}", f"{t['channel']}: {data.get('channel') or '-'}",
                f"{t['campaign']}: {data.get('campaign_id') or '-'}"]
        if data.get("summary"):
            rows.append(f"{t['summary']}: {data['summary']}")
        return f"{t['task']} {data.get('task_id', '')}", [*rows, t["open"]]
    if event_type == "brake.tripped":
        target = (f"{t['campaign']}: {data['campaign_id']}" if data.get("campaign_id")
                  else f"{t['strategy']}: {data.get('strategy_id', '')}")
        return t["brake"], [target, f"{t['rule']}: {data.get('rule', '')}",
                            f"{t['signal']}: {data.get('signal', '')}", f"{t['value']}: {data.get('value', '')}"]
    return None


def body(fmt: str, event_type: str, data: Mapping[str, Any], language: str) -> dict[str, Any] | None:
    """The robot's message for this event, or None when a robot is not told of it."""
    made = _lines(event_type, data, language if language in LANGUAGES else "en")
    if made is None:
        return None
    title, rows = made
    if fmt == "wecom_robot":
        return {"msgtype": "markdown", "markdown": {"content": f"**{title}**\n" + "\n".join(f"> {r}" for r in rows)}}
    if fmt == "dingtalk":
        return {"msgtype": "markdown", "markdown": {"title": title, "text": f"### {title}\n" + "\n".join(
            f"- {r}" for r in rows)}}
    return {"text": f"*{title}*\n" + "\n".join(rows)}  # slack


def dingtalk_url(url: str, secret: str, timestamp_ms: int) -> str:
    """DingTalk's signed URL: ``timestamp`` and ``sign`` = base64(HMAC-SHA256(secret, "timestamp\\nsecret"))."""
    if not secret:
        return url
    mac = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return f"{url}{'&' if '?' in url else '?'}timestamp={timestamp_ms}&sign={quote(base64.b64encode(mac).decode())}"
