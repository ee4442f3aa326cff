"""guard hears the providers natively: their webhooks on the pages' listener, verified the providers' way, with the
providers' own SDKs on the other side (SendGrid's event-webhook verifier reads our test's signature as SendGrid's;
Twilio's RequestValidator signs as Twilio does; Mailgun's SecurityGuard verifies as Mailgun's docs say), applied
once through the same use cases as the API, and refused (nothing stored) when forged, stale or replayed."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import grpc
import httpx
import prometheus_client
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from mailgun.security import SecurityGuard
from sendgrid.helpers.eventwebhook import EventWebhook
from twilio.request_validator import RequestValidator
from wechatpy.crypto import _get_signature
from wechatpy.enterprise.crypto import PrpCrypto, WeChatCrypto

from guard.domain.types import Reason, Touch, TouchClass, Verdict
from guard.store.keys import UserKeys
from guard.v1 import guard_pb2 as pb
from guard.v1 import guard_pb2_grpc as pb_grpc
from tests.helpers import admin_key, aio_channel, everything_stored, guard_cli, snapshot, touch

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "webhooks"
TWILIO_TOKEN = "0123456789abcdef0123456789abcdef"
MAILGUN_KEY = "key-test-signing-0001"


def _counted(provider: str, outcome: str) -> float:
    return prometheus_client.REGISTRY.get_sample_value("guard_webhook_events_total",
                                                       {"provider": provider, "outcome": outcome}) or 0.0


def _fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def _sendgrid_keys() -> tuple[ec.EllipticCurvePrivateKey, str]:
    private = ec.generate_private_key(ec.SECP256R1())
    der = private.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, base64.b64encode(der).decode()


def _sendgrid_signed(private: ec.EllipticCurvePrivateKey, public: str, body: bytes, at_s: int) -> dict[str, str]:
    stamp = str(at_s)
    signature = base64.b64encode(private.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))).decode()
    # SendGrid's own verifier reads the signature as one SendGrid made: the test signs the way SendGrid signs.
    verifier = EventWebhook()
    assert verifier.verify_signature(body.decode(), signature, stamp, verifier.convert_public_key_to_ecdsa(public))
    return {"content-type": "application/json", "x-twilio-email-event-webhook-signature": signature,
            "x-twilio-email-event-webhook-timestamp": stamp}


async def test_sendgrid_events_are_heard_once_and_forgeries_change_nothing(app):
    private, public = _sendgrid_keys()
    code, out, err = await guard_cli(app, "hooks", "set", "sendgrid", f"public_key={public}")
    assert code == 0, err
    assert json.loads(out)["receivers"] == [{"provider": "sendgrid", "url": f"{app.web.public_url}/hooks/default/sendgrid",
                                             "secrets": ["public_key"]}]
    for user, touch_id in (("ann", "t1"), ("bob", "t2"), ("cy", "t3")):
        assert (await app.service.check(touch(user=user, channel="email", touch_id=touch_id))).recorded
    now_s = int(time.time())
    events = _fixture("sendgrid_events.json")
    for event in events:
        event["timestamp"] = now_s - 60
    body = json.dumps(events).encode()
    url = f"{app.web.public_url}/hooks/default/sendgrid"
    async with httpx.AsyncClient() as http:
        first = await http.post(url, content=body, headers=_sendgrid_signed(private, public, body, now_s))
        assert first.status_code == 200, first.text
        assert first.json() == {"applied": 4, "replayed": 0, "unmatched": 0, "ignored": 2}
        ann = await app.default.engagement.state("ann")
        assert ann.tier == "active" and ann.last_interaction_ms == (now_s - 60) * 1000
        bob = await app.preferences.get_preferences("bob")
        assert bob.channels == {"email": False}  # a spam report closes email (for marketing)
        ledger, _ = await app.preferences.consent_events("bob", 5)
        assert ledger[0].source == "complaint" and ledger[0].evidence["provider"] == "sendgrid"
        tasks = await app.desk.list_tasks("", 50, "")
        assert [t.user_id for t in tasks[0]] == ["bob"]
        assert (await app.preferences.get_preferences("cy")).channels == {"email": False}  # dropped: unsubscribed
        # A receipt to bob still goes; a promotion does not.
        receipt = await app.service.check(touch(user="bob", channel="email", category="service", touch_id="r1",
                                                touch_class=TouchClass.TRANSACTIONAL))
        promo = await app.service.check(touch(user="bob", channel="email", touch_id="p1"))
        assert receipt.verdict is Verdict.ALLOW
        assert promo.reasons == (Reason.CHANNEL_OPTED_OUT, Reason.NEGATIVE_SENTIMENT)  # closed, and held as a complaint
        before = await snapshot(app)
        for _ in range(2):  # SendGrid retries: the same webhook twice more
            again = await http.post(url, content=body, headers=_sendgrid_signed(private, public, body, now_s))
            assert again.json() == {"applied": 0, "replayed": 4, "unmatched": 0, "ignored": 2}
        assert await snapshot(app) == before
        forged_before = _counted("sendgrid", "forged")
        forged = body.replace(b'"spamreport"', b'"delivered"')
        refused = await http.post(url, content=forged, headers=_sendgrid_signed(private, public, body, now_s))
        stale_at = now_s - 600
        stale = await http.post(url, content=body, headers=_sendgrid_signed(private, public, body, stale_at))
        unsigned = await http.post(url, content=body, headers={"content-type": "application/json"})
        other_key, other_public = _sendgrid_keys()
        strangers = await http.post(url, content=body, headers=_sendgrid_signed(other_key, other_public, body, now_s))
        assert [r.status_code for r in (refused, stale, unsigned, strangers)] == [403] * 4
        assert "5 minutes" in stale.text
        assert _counted("sendgrid", "forged") == forged_before + 3 and _counted("sendgrid", "stale") >= 1
        broken = json.dumps([{"event": "open", "timestamp": now_s}]).encode()
        malformed = await http.post(url, content=broken, headers=_sendgrid_signed(private, public, broken, now_s))
        assert malformed.status_code == 400 and malformed.text.startswith("[0].sg_event_id")
        nobody = await http.post(f"{app.web.public_url}/hooks/acme/sendgrid", content=body,
                                 headers=_sendgrid_signed(private, public, body, now_s))
        assert nobody.status_code == 404  # acme set up no receiver
        assert await snapshot(app) == before


def _twilio_post(http: httpx.AsyncClient, url: str, form: dict[str, str], token: str = TWILIO_TOKEN) -> Any:
    signature = RequestValidator(token).compute_signature(url, form)
    return http.post(url, data=form, headers={"x-twilio-signature": signature})


async def test_twilio_inbound_sms_and_the_carriers_stop(app):
    await app.web.hooks.set_secret("default", "twilio", "auth_token", TWILIO_TOKEN)
    async with aio_channel(f"127.0.0.1:{app.port}", admin_key(app)) as channel:
        stub = pb_grpc.EngagementGuardStub(channel)
        for user, number in (("eve", "+86 138 0000 0000"), ("fay", "13700000000"), ("gus", "+8613900000000")):
            kept = await stub.SetContactPoints(pb.SetContactPointsRequest(user_id=user, addresses=[number]), timeout=10)
            assert kept.kept == 1
    url = f"{app.web.public_url}/hooks/default/twilio"
    async with httpx.AsyncClient() as http:
        opt_out = _fixture("twilio_inbound.json")  # 退订 from +8613800000000: eve
        answer = await _twilio_post(http, url, opt_out)
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/xml")
        assert (await app.preferences.get_preferences("eve")).channels == {"sms": False}
        angry = {**opt_out, "MessageSid": "SM2", "SmsSid": "SM2", "From": "+8613700000000", "Body": "别再发了，烦死了"}
        assert (await _twilio_post(http, url, angry)).status_code == 200
        held = await app.service.check(touch(user="fay", channel="push", touch_id="f1"))
        assert held.reasons == (Reason.NEGATIVE_SENTIMENT,)
        tasks, _ = await app.desk.list_tasks("", 50, "")
        assert [t.user_id for t in tasks] == ["fay"]
        stranger = {**opt_out, "MessageSid": "SM3", "SmsSid": "SM3", "From": "+8613600000000", "Body": "hello"}
        unmatched = await _twilio_post(http, url, stranger)
        assert unmatched.status_code == 200
        await app.web.hooks.set_contacts("default", "ola", ["+8613600000000"])  # the number becomes known: delivered
        assert await app.store.client.zcard(UserKeys("default", "ola").replies) == 1
        # gus's number replied STOP at the carrier: Twilio refuses the next send with 21610; every SMS stops.
        status_url = f"{url}?touch_id=g1&user_id=gus"
        assert (await _twilio_post(http, status_url, _fixture("twilio_status_stopped.json"))).status_code == 200
        receipt = await app.service.check(touch(user="gus", channel="sms", category="service", touch_id="g2",
                                                touch_class=TouchClass.TRANSACTIONAL))
        assert receipt.reasons == (Reason.CHANNEL_OPTED_OUT,)
        before = await snapshot(app)
        forged = await http.post(url, data={**angry, "Body": "好的"},
                                 headers={"x-twilio-signature": RequestValidator(TWILIO_TOKEN).compute_signature(url, angry)})
        wrong_token = await _twilio_post(http, url, {**angry, "MessageSid": "SM4"}, token="not-the-token")
        assert [forged.status_code, wrong_token.status_code] == [403, 403]
        retried = await _twilio_post(http, url, angry)  # Twilio's retry of the angry reply: applied once
        assert retried.status_code == 200
        assert await snapshot(app) == before
    assert b"13800000000" not in everything_stored(app.store.client)  # the index holds hashes, never numbers
    assert b"13700000000" not in everything_stored(app.store.client)


async def test_mailgun_complaints_are_heard_and_a_token_on_another_event_is_refused(app):
    await app.web.hooks.set_secret("default", "mailgun", "signing_key", MAILGUN_KEY)
    assert (await app.service.check(touch(user="dee", channel="email", touch_id="t4"))).recorded
    now_s = int(time.time())
    payload = _fixture("mailgun_complained.json")
    token = "a" * 50
    payload["signature"] = {"timestamp": str(now_s), "token": token,
                            "signature": hmac.new(MAILGUN_KEY.encode(), f"{now_s}{token}".encode(),
                                                  hashlib.sha256).hexdigest()}
    payload["event-data"]["timestamp"] = now_s - 5
    sig = payload["signature"]
    assert SecurityGuard.verify_webhook(MAILGUN_KEY, sig["token"], sig["timestamp"], sig["signature"])  # Mailgun's reading
    url = f"{app.web.public_url}/hooks/default/mailgun"
    async with httpx.AsyncClient() as http:
        first = await http.post(url, json=payload)
        assert first.status_code == 200 and first.json()["applied"] == 1, first.text
        assert (await app.preferences.get_preferences("dee")).channels == {"email": False}
        before = await snapshot(app)
        retried = await http.post(url, json=payload)  # Mailgun's retry: the same token with the same event
        assert retried.status_code == 200 and retried.json()["replayed"] == 1
        other = {**payload, "event-data": {**payload["event-data"], "id": "mg-c-2", "event": "unsubscribed"}}
        replayed = await http.post(url, json=other)  # the captured signature on another event
        assert replayed.status_code == 403 and "replayed" in replayed.text
        assert await snapshot(app) == before


async def test_contact_points_are_kept_as_hashes_and_erased_with_the_user(app, tmp_path):
    hooks = app.web.hooks
    table = tmp_path / "contacts.csv"
    table.write_text("user_id,address\nhal,hal@example.com\nhal,+8613500000000\nroy,roy@example.com\n")
    code, out, err = await guard_cli(app, "contacts", "import", str(table))
    assert code == 0 and json.loads(out) == {"users": 2, "kept": 3}, err
    assert await hooks.store.user_by_contact("default", await hooks.digest("default", "roy@example.com")) == "roy"
    broken = tmp_path / "broken.csv"
    broken.write_text("hal,hal@example.com\nonly-one-column\n")
    code, _, err = await guard_cli(app, "contacts", "import", str(broken))
    assert code != 0 and "broken.csv:2: user_id,address is expected" in err
    assert await hooks.store.user_by_contact("default", await hooks.digest("default", " HAL@Example.com")) == "hal"
    assert b"hal@example.com" not in everything_stored(app.store.client)
    await app.default.privacy.erase("hal", "dpo", "asked")
    assert await hooks.store.user_by_contact("default", await hooks.digest("default", "hal@example.com")) == ""
    assert await hooks.store.user_by_contact("default", await hooks.digest("default", "+86 135 0000 0000")) == ""


async def test_postmark_basic_auth_and_a_hard_bounce(app):
    await app.web.hooks.set_secret("default", "postmark", "basic_auth", "guard:s3cret")
    assert (await app.service.check(touch(user="ivy", channel="email", touch_id="t6"))).recorded
    url = f"{app.web.public_url}/hooks/default/postmark"
    bounce = (FIXTURES / "postmark_bounce.json").read_bytes()
    async with httpx.AsyncClient() as http:
        wrong = await http.post(url, content=bounce, auth=("guard", "guess"))
        assert wrong.status_code == 401
        heard = await http.post(url, content=bounce, auth=("guard", "s3cret"))
        assert heard.status_code == 200 and heard.json()["applied"] == 1, heard.text
    bounced = await app.service.check(touch(user="ivy", channel="email", touch_id="t6b"))
    assert bounced.reasons == (Reason.UNDELIVERABLE,)


async def test_aliyun_reports_and_replies_through_the_secret_in_the_url(app):
    await app.web.hooks.set_secret("default", "aliyun", "path_secret", "0f1e2d3c4b5a69788796a5b4c3d2e1f0")
    await app.web.hooks.set_contacts("default", "lin", ["13800000003"])
    code, out, err = await guard_cli(app, "hooks", "show")
    assert code == 0, err
    (receiver,) = json.loads(out)["receivers"]
    assert receiver["url"] == f"{app.web.public_url}/hooks/default/aliyun/0f1e2d3c4b5a69788796a5b4c3d2e1f0"
    async with httpx.AsyncClient() as http:
        guessed = await http.post(f"{app.web.public_url}/hooks/default/aliyun/guess",
                                  content=(FIXTURES / "aliyun_reports.json").read_bytes())
        assert guessed.status_code == 403
        reports = await http.post(receiver["url"], content=(FIXTURES / "aliyun_reports.json").read_bytes())
        assert reports.status_code == 200 and reports.json() == {"code": 0, "msg": "成功"}
        up = await http.post(receiver["url"], content=(FIXTURES / "aliyun_up.json").read_bytes())
        assert up.status_code == 200
    stopped = await app.service.check(touch(user="kim", channel="sms", touch_id="k1"))
    assert stopped.reasons == (Reason.UNDELIVERABLE,)
    assert (await app.preferences.get_preferences("lin")).channels == {"sms": False}  # "TD" (退订) by reply


WECOM = {"token": "guardtoken", "encoding_aes_key": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
         "corp_id": "ww0000000000000001"}


def _wecom_post(crypto: WeChatCrypto, message: str, now_s: int) -> tuple[str, str]:
    """(query, body) of a callback as WeCom posts it, encrypted and signed by wechatpy, WeCom's SDK."""
    made = ET.fromstring(crypto.encrypt_message(message, "nonce42", str(now_s)))
    encrypted, signature = made.findtext("Encrypt") or "", made.findtext("MsgSignature") or ""
    body = (f"<xml><ToUserName><![CDATA[{WECOM['corp_id']}]]></ToUserName><AgentID><![CDATA[]]></AgentID>"
            f"<Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>")
    return f"msg_signature={signature}&timestamp={now_s}&nonce=nonce42", body


async def test_wecom_handshake_and_a_deleted_staff_member(app):
    for name, value in WECOM.items():
        await app.web.hooks.set_secret("default", "wecom", name, value)
    await app.web.hooks.set_contacts("default", "vip", ["wecom:wmAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"])
    sent = await app.service.check(Touch("vip", "wecom", "promotion", "winter", "w1", TouchClass.MARKETING, False, 0,
                                         high_value=True))
    assert sent.recorded
    crypto = WeChatCrypto(WECOM["token"], WECOM["encoding_aes_key"], WECOM["corp_id"])
    now_s = int(time.time())
    url = f"{app.web.public_url}/hooks/default/wecom"
    echo = PrpCrypto(crypto.key).encrypt("5927782489442352469", WECOM["corp_id"]).decode()
    signature = _get_signature(WECOM["token"], str(now_s), "n1", echo)
    assert crypto.check_signature(signature, str(now_s), "n1", echo) == "5927782489442352469"  # WeCom's own reading
    async with httpx.AsyncClient() as http:
        saved = await http.get(url, params={"msg_signature": signature, "timestamp": now_s, "nonce": "n1", "echostr": echo})
        assert (saved.status_code, saved.text) == (200, "5927782489442352469")
        tampered = await http.get(url, params={"msg_signature": signature, "timestamp": now_s, "nonce": "n2",
                                               "echostr": echo})
        assert tampered.status_code == 403
        message = (FIXTURES / "wecom_del_follow_user.xml").read_text().replace("CREATE_TIME", str(now_s))
        query, body = _wecom_post(crypto, message, now_s)
        deleted = await http.post(f"{url}?{query}", content=body)
        assert (deleted.status_code, deleted.text.strip()) == (200, "success")
        await http.post(f"{url}?{query}", content=body)  # WeCom retries: applied once
    assert (await app.preferences.get_preferences("vip")).channels == {"wecom": False}
    ledger, _ = await app.preferences.consent_events("vip", 5)
    assert ledger[0].source == "contact_deleted" and ledger[0].evidence["provider"] == "wecom"
    await app.counters.flush()
    async with aio_channel(f"127.0.0.1:{app.port}", admin_key(app)) as channel:
        health = await pb_grpc.EngagementGuardStub(channel).GetCampaignHealth(
            pb.GetCampaignHealthRequest(campaign_id="winter", window="24h"), timeout=10)
    assert health.figures.opt_outs == 1 and health.figures.touches == 1
    tasks, _ = await app.desk.list_tasks("", 50, "")
    assert [(t.user_id, t.priority, t.kind) for t in tasks] == [("vip", "P1", "CONTACT")]
    blocked = await app.service.check(Touch("vip", "wecom", "promotion", "", "w2", TouchClass.MARKETING, False, 0))
    assert blocked.reasons == (Reason.CHANNEL_OPTED_OUT,)


async def test_a_touchs_recipient_becomes_a_contact_point(app):
    await app.web.hooks.set_secret("default", "twilio", "auth_token", TWILIO_TOKEN)
    async with aio_channel(f"127.0.0.1:{app.port}", admin_key(app)) as channel:
        stub = pb_grpc.EngagementGuardStub(channel)
        check = pb.CheckTouchRequest(user_id="quinn", channel="sms", category="service", touch_id="q1",
                                     touch_class=pb.TRANSACTIONAL, recipient="+86 133 0000 0000")
        assert (await stub.CheckTouch(check, timeout=10)).recorded
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.CheckTouch(pb.CheckTouchRequest(user_id="quinn", channel="sms", category="service",
                                                       touch_id="q2", touch_class=pb.TRANSACTIONAL, recipient="x"),
                                  timeout=10)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert refused.value.details().startswith("recipient: ")
    async with httpx.AsyncClient() as http:
        inbound = {**_fixture("twilio_inbound.json"), "From": "+8613300000000", "Body": "退订"}
        assert (await _twilio_post(http, f"{app.web.public_url}/hooks/default/twilio", inbound)).status_code == 200
    assert (await app.preferences.get_preferences("quinn")).channels == {"sms": False}
    assert not await app.store.client.exists(UserKeys("default", "quinn").touch("q2"))


async def test_a_body_over_the_limit_is_refused_unread_and_counted(app_factory):
    app = await app_factory(max_webhook_bytes=4096)
    await app.web.hooks.set_secret("default", "mailgun", "signing_key", MAILGUN_KEY)
    before_count, before = _counted("mailgun", "too_large"), await snapshot(app)
    async with httpx.AsyncClient() as http:
        answer = await http.post(f"{app.web.public_url}/hooks/default/mailgun", content=b"[" + b" " * 5000 + b"]")
    assert answer.status_code == 413 and _counted("mailgun", "too_large") == before_count + 1
    assert await snapshot(app) == before
