"""Aliyun SMS (阿里云短信) HTTP push: status reports (SmsReport) and replies (SmsUp), JSON arrays. Aliyun does not
sign; the receiver's URL carries a per-tenant secret in its path (``/hooks/<tenant>/aliyun/<secret>``), so only
whoever was given the URL can post. The answer Aliyun expects is ``{"code": 0, "msg": "成功"}``.

The sender sets each message's ``OutId`` to ``<user_id>|<touch_id>`` (or the touch id alone: the number then finds
the user through the contact points).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone

from guard.providers import Engagement, Inbound, Item, Parsed, Refused, Request, malformed

NAME = "aliyun"
SECRETS = ("path_secret",)
ANSWER = ('{"code":0,"msg":"成功"}'.encode(), "application/json")  # what the receiver answers (body, media type)
# Reports that say the number cannot receive SMS at all (not a passing failure): the channel is undeliverable.
HARD_ERRORS = frozenset({"MOBILE_NUMBER_ILLEGAL", "MOBILE_NOT_ON_SERVICE", "MOBILE_ACCOUNT_ABNORMAL"})
_CHINA = timezone(timedelta(hours=8))  # Aliyun's times are Beijing time without a zone


def verify(request: Request, secrets: Mapping[str, Sequence[str]]) -> Request:
    given = request.path_secret.encode()
    if not given or not any(hmac.compare_digest(hashlib.sha256(given).digest(), hashlib.sha256(s.encode()).digest())
                            for s in secrets["path_secret"]):
        raise Refused("forged", 403, "the secret in the URL is not this tenant's")
    return request


def _ms(text: object, field_name: str) -> int:
    try:
        return int(datetime.strptime(str(text), "%Y-%m-%d %H:%M:%S").replace(tzinfo=_CHINA).timestamp() * 1000)
    except ValueError:
        raise malformed(field_name, "a time such as 2026-12-01 09:30:00 is expected") from None


def parse(request: Request) -> Parsed:
    try:
        rows = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        raise malformed("body", "a JSON array is expected") from None
    if not isinstance(rows, list) or len(rows) > 10_000:
        raise malformed("body", "a JSON array of at most 10,000 items is expected")
    items: list[Item] = []
    ignored = 0
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or not isinstance(row.get("phone_number"), str):
            raise malformed(f"[{i}].phone_number", "is required")
        phone = row["phone_number"]
        if "content" in row:  # SmsUp: the person wrote back
            sequence = row.get("sequence_id")
            if sequence in (None, ""):
                raise malformed(f"[{i}].sequence_id", "is required")
            items.append(Inbound(f"up:{sequence}", phone, str(row["content"]), "sms",
                                 _ms(row.get("send_time"), f"[{i}].send_time")))
            continue
        biz = row.get("biz_id")
        if not isinstance(biz, str) or not biz:
            raise malformed(f"[{i}].biz_id", "is required")
        user, _, touch = str(row.get("out_id") or "").rpartition("|")
        at = _ms(row.get("report_time"), f"[{i}].report_time")
        code = str(row.get("err_code", ""))
        if row.get("success") is True:
            items.append(Engagement(f"report:{biz}:{phone}", touch, user, "DELIVERED", at, "sms", address=phone))
        elif code in HARD_ERRORS:
            items.append(Engagement(f"report:{biz}:{phone}", touch, user, "BOUNCED", at, "sms", "hard", address=phone))
        else:
            ignored += 1
    return Parsed(items, ignored)
