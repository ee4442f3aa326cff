"""What every email provider's receiver promises, the same test for each (SendGrid, Amazon SES through SNS, Mailgun,
Postmark), on the app wired as ``guard serve`` wires it: a delivery and an open keep the user active; a complaint
closes email, ledgered with the provider, and opens one task; the same webhook posted three times changes nothing
twice; a forged request is refused and changes nothing (Redis compared before and after)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from guard.domain.types import Reason
from tests.e2e.test_receivers_ses import TOPIC, FakeSns
from tests.helpers import snapshot, touch

Post = tuple[str, bytes, dict[str, str]]  # (path after /hooks/default/, body, headers)
KINDS = {"delivered": 0, "open": 1, "complaint": 2}


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


class SendGrid:
    name = "sendgrid"

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.secrets = {"public_key": base64.b64encode(self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()}

    def post(self, kind: str, user: str, touch_id: str, *, forged: bool = False) -> Post:
        event = {"delivered": "delivered", "open": "open", "complaint": "spamreport"}[kind]
        body = json.dumps([{"email": f"{user}@example.com", "timestamp": int(time.time()), "event": event,
                            "sg_event_id": f"{user}-{kind}", "touch_id": touch_id, "user_id": user}]).encode()
        stamp = str(int(time.time()))
        signed = stamp.encode() + (body.replace(b"spamreport", b"delivered") if forged else body)
        signature = base64.b64encode(self.key.sign(signed, ec.ECDSA(hashes.SHA256()))).decode()
        return "sendgrid", body, {"content-type": "application/json", "x-twilio-email-event-webhook-signature": signature,
                                  "x-twilio-email-event-webhook-timestamp": stamp}


class Ses:
    name = "ses"

    def __init__(self, server: FakeSns) -> None:
        self.sns = server
        self.secrets = {"topic_arns": TOPIC}

    def post(self, kind: str, user: str, touch_id: str, *, forged: bool = False) -> Post:
        mail = {"timestamp": _now_iso(), "messageId": f"ses-{touch_id}", "destination": [f"{user}@example.com"],
                "tags": {"touch_id": [touch_id], "user_id": [user]}}
        event: dict[str, Any] = {"eventType": {"delivered": "Delivery", "open": "Open", "complaint": "Complaint"}[kind],
                                 "mail": mail}
        if kind == "complaint":
            event["complaint"] = {"complainedRecipients": [{"emailAddress": f"{user}@example.com"}]}
        message = self.sns.message("Notification", event, MessageId=f"sns-{user}-{kind}")
        if forged:  # signed for one user, posted for another
            message["Message"] = message["Message"].replace(f'"{user}', '"eve')
        return "ses", json.dumps(message).encode(), {"content-type": "text/plain"}


class Mailgun:
    name = "mailgun"

    def __init__(self) -> None:
        self.secrets = {"signing_key": "key-contract-0001"}
        self.tokens: dict[tuple[str, str], str] = {}

    def post(self, kind: str, user: str, touch_id: str, *, forged: bool = False) -> Post:
        token = self.tokens.setdefault((user, kind), secrets.token_hex(25))  # a retry carries its signature again
        stamp = str(int(time.time()))
        signature = hmac.new(self.secrets["signing_key"].encode(), f"{stamp}{token}".encode(), hashlib.sha256).hexdigest()
        if forged:
            signature = signature[::-1]
        event = {"delivered": "delivered", "open": "opened", "complaint": "complained"}[kind]
        body = {"signature": {"timestamp": stamp, "token": token, "signature": signature},
                "event-data": {"id": f"{user}-{kind}", "timestamp": time.time(), "event": event,
                               "recipient": f"{user}@example.com", "user-variables": {"touch_id": touch_id, "user_id": user}}}
        return "mailgun", json.dumps(body).encode(), {"content-type": "application/json"}


class Postmark:
    name = "postmark"

    def __init__(self) -> None:
        self.secrets = {"basic_auth": "guard:contract"}

    def post(self, kind: str, user: str, touch_id: str, *, forged: bool = False) -> Post:
        record, at = {"delivered": ("Delivery", "DeliveredAt"), "open": ("Open", "ReceivedAt"),
                      "complaint": ("SpamComplaint", "BouncedAt")}[kind]
        body = {"RecordType": record, "MessageID": f"pm-{touch_id}", "ID": KINDS[kind], "Recipient": f"{user}@example.com",
                "Email": f"{user}@example.com", at: _now_iso(), "Metadata": {"touch_id": touch_id, "user_id": user}}
        auth = base64.b64encode(b"guard:" + (b"guess" if forged else b"contract")).decode()
        return "postmark", json.dumps(body).encode(), {"content-type": "application/json", "authorization": f"Basic {auth}"}


PROVIDERS: dict[str, Callable[[FakeSns], Any]] = {"sendgrid": lambda _: SendGrid(), "ses": Ses,
                                                  "mailgun": lambda _: Mailgun(), "postmark": lambda _: Postmark()}


@pytest.fixture
def fake_sns(tmp_path: Path) -> Iterator[FakeSns]:
    server = FakeSns(tmp_path)
    yield server
    server.server.shutdown()


@pytest.mark.parametrize("name", sorted(PROVIDERS))
async def test_every_email_provider_keeps_the_receivers_promises(app_factory, fake_sns, name):
    app = await app_factory(sns_hosts=fake_sns.host, sns_ca=fake_sns.ca_path)
    provider = PROVIDERS[name](fake_sns)
    for secret, value in provider.secrets.items():
        await app.web.hooks.set_secret("default", provider.name, secret, value)
    for user, touch_id in (("amy", "a1"), ("ben", "b1")):
        assert (await app.service.check(touch(user=user, channel="email", touch_id=touch_id))).recorded

    async def send(http: httpx.AsyncClient, post: Post) -> httpx.Response:
        path, body, headers = post
        return await http.post(f"{app.web.public_url}/hooks/default/{path}", content=body, headers=headers)

    async with httpx.AsyncClient() as http:
        for kind in ("delivered", "open"):
            answer = await send(http, provider.post(kind, "amy", "a1"))
            assert answer.status_code == 200, answer.text
        amy = await app.default.engagement.state("amy")
        assert amy.tier == "active" and amy.last_interaction_ms > 0  # the open was an interaction
        assert (await send(http, provider.post("complaint", "ben", "b1"))).status_code == 200
        assert (await app.preferences.get_preferences("ben")).channels == {"email": False}
        ledger, _ = await app.preferences.consent_events("ben", 5)
        assert ledger[0].source == "complaint" and ledger[0].evidence["provider"] == provider.name
        tasks, _ = await app.desk.list_tasks("", 50, "")
        assert [t.user_id for t in tasks] == ["ben"]
        before = await snapshot(app)
        for _ in range(2):  # the complaint's webhook twice more: nothing changes
            assert (await send(http, provider.post("complaint", "ben", "b1"))).status_code == 200
        assert await snapshot(app) == before
        forged = await send(http, provider.post("complaint", "amy", "a1", forged=True))
        assert forged.status_code in (401, 403)
        assert await snapshot(app) == before
    promo = await app.service.check(touch(user="ben", channel="email", touch_id="b2"))
    assert Reason.CHANNEL_OPTED_OUT in promo.reasons
