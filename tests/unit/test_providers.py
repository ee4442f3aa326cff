"""Each provider's webhook read without I/O: its proof of origin checked as its own SDK checks it, its events mapped
onto guard's, and what it cannot read refused naming the field."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import given
from hypothesis import strategies as st
from mailgun.security import SecurityGuard
from twilio.request_validator import RequestValidator

from guard.providers import (
    NAMES,
    CarrierStop,
    ContactChange,
    Engagement,
    Inbound,
    Refused,
    Request,
    aliyun,
    contacts,
    mailgun,
    postmark,
    sendgrid,
    ses,
    twilio,
    wecom,
)
from guard.usecases.hooks import PROVIDERS

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "webhooks"
NOW = 1_795_000_000_000


def _request(body: bytes = b"", headers: dict[str, str] | None = None, **kw: object) -> Request:
    return Request("https://guard.example.com/hooks/acme/x", headers or {}, body, NOW, **kw)  # type: ignore[arg-type]


def test_sendgrid_events_map_onto_guards_and_passing_failures_are_ignored():
    parsed = sendgrid.parse(_request((FIXTURES / "sendgrid_events.json").read_bytes().replace(b'"timestamp": 0',
                                                                                           b'"timestamp": 1795000000')))
    assert [(e.event, e.detail, e.user_id) for e in parsed.items if isinstance(e, Engagement)] == [
        ("DELIVERED", "", "ann"), ("OPENED", "", "ann"), ("SPAM_COMPLAINT", "", "bob"), ("UNSUBSCRIBED", "", "cy")]
    assert parsed.ignored == 2  # processed, and a blocked (soft) bounce


def test_sendgrid_signatures_verify_with_the_tenants_key_only_and_only_while_fresh():
    private = ec.generate_private_key(ec.SECP256R1())
    der = private.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    key = base64.b64encode(der).decode()
    body, stamp = b'[{"event":"open"}]', str(NOW // 1000)
    signed = base64.b64encode(private.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))).decode()
    headers = {sendgrid.SIGNATURE: signed, sendgrid.TIMESTAMP: stamp}
    sendgrid.verify(_request(body, headers), {"public_key": [key]})
    older = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    sendgrid.verify(_request(body, headers), {"public_key": [base64.b64encode(older).decode(), key]})  # in its grace
    for changed, outcome in ((_request(body + b" ", headers), "forged"),
                             (_request(body, {**headers, sendgrid.TIMESTAMP: str(NOW // 1000 - 301)}), "stale"),
                             (_request(body, {**headers, sendgrid.SIGNATURE: "not base64!"}), "forged"),
                             (_request(body, {}), "forged")):
        with pytest.raises(Refused) as refused:
            sendgrid.verify(changed, {"public_key": [key]})
        assert refused.value.outcome == outcome
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()
    with pytest.raises(ValueError, match="public_key"):
        sendgrid.public_key(base64.b64encode(rsa_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode())


@pytest.mark.parametrize(("body", "field"), [(b"{", "body"), (b'{"a": 1}', "body"), (b'[{"event": ""}]', "[0].event"),
                                             (b'[{"event": "open", "timestamp": "x", "sg_event_id": "e"}]',
                                              "[0].timestamp"), (b'[7]', "[0]")])
def test_a_sendgrid_payload_guard_cannot_read_names_its_field(body, field):
    with pytest.raises(Refused) as refused:
        sendgrid.parse(_request(body))
    assert refused.value.outcome == "malformed" and str(refused.value).startswith(field + ":")


@given(st.dictionaries(st.text(st.characters(codec="utf-8"), min_size=1, max_size=8),
                       st.text(max_size=20), max_size=6), st.text(min_size=1, max_size=40))
def test_twilio_signatures_are_the_ones_twilios_own_validator_makes(params, token):
    url = "https://guard.example.com/hooks/acme/twilio?touch_id=t1&user_id=u1"
    assert twilio.signature(token, url, params) == RequestValidator(token).compute_signature(url, params)


def test_twilio_status_callbacks_inbound_messages_and_the_carriers_stop():
    url = "https://g.example/hooks/acme/twilio?touch_id=t9&user_id=u9"
    status = json.loads((FIXTURES / "twilio_status_stopped.json").read_text())
    (stop,) = twilio.parse(Request(url, {}, b"", NOW, status)).items
    assert stop == CarrierStop(f"{status['MessageSid']}:21610", "u9", status["To"], "sms", stop=True)
    delivered = twilio.parse(Request(url, {}, b"", NOW, {**status, "MessageStatus": "delivered", "ErrorCode": ""}))
    assert [(e.event, e.touch_id) for e in delivered.items if isinstance(e, Engagement)] == [("DELIVERED", "t9")]
    assert twilio.parse(Request(url, {}, b"", NOW, {**status, "MessageStatus": "sent"})).ignored == 1
    inbound = json.loads((FIXTURES / "twilio_inbound.json").read_text())
    (reply,) = twilio.parse(Request(url, {}, b"", NOW, inbound)).items
    assert isinstance(reply, Inbound) and reply.text == "退订" and reply.address == "+8613800000000"
    (start,) = twilio.parse(Request(url, {}, b"", NOW, {**inbound, "OptOutType": "START", "Body": "START"})).items
    assert isinstance(start, CarrierStop) and not start.stop
    with pytest.raises(Refused, match="MessageSid"):
        twilio.parse(Request(url, {}, b"", NOW, {"Body": "hi"}))


@given(st.text(min_size=1, max_size=30), st.text(alphabet="0123456789abcdef", min_size=10, max_size=50))
def test_mailgun_signatures_agree_with_mailguns_own_verifier(key, token):
    stamp = str(NOW // 1000)
    mac = hmac.new(key.encode(), (stamp + token).encode(), hashlib.sha256).hexdigest()
    body = json.dumps({"signature": {"timestamp": stamp, "token": token, "signature": mac},
                       "event-data": {"event": "opened"}}).encode()
    mailgun.verify(_request(body), {"signing_key": [key]})
    assert SecurityGuard.verify_webhook(key, token, stamp, mac, max_age_seconds=0)
    with pytest.raises(Refused):
        mailgun.verify(_request(body), {"signing_key": [key + "x"]})


def test_postmark_suppression_and_bounce_kinds():
    bounce = json.loads((FIXTURES / "postmark_bounce.json").read_text())
    (hard,) = postmark.parse(_request(json.dumps(bounce).encode())).items
    assert isinstance(hard, Engagement) and (hard.event, hard.detail, hard.user_id) == ("BOUNCED", "hard", "ivy")
    assert postmark.parse(_request(json.dumps({**bounce, "Type": "Transient"}).encode())).ignored == 1
    change = {"RecordType": "SubscriptionChange", "MessageID": "m", "ChangedAt": "2026-12-01T09:00:00Z",
              "SuppressSending": False, "Recipient": "x@example.com"}
    assert postmark.parse(_request(json.dumps(change).encode())).ignored == 1  # a reactivation: nothing to close
    (unsub,) = postmark.parse(_request(json.dumps({**change, "SuppressSending": True}).encode())).items
    assert isinstance(unsub, Engagement) and unsub.event == "UNSUBSCRIBED"


def test_aliyun_reports_in_beijing_time_and_the_out_id_names_user_and_touch():
    parsed = aliyun.parse(_request((FIXTURES / "aliyun_reports.json").read_bytes()))
    first, second = parsed.items
    assert isinstance(first, Engagement) and (first.user_id, first.touch_id, first.event) == ("jon", "t7", "DELIVERED")
    assert first.occurred_ms == 1_796_086_805_000  # 2026-12-01 09:00:05 +08:00
    assert isinstance(second, Engagement) and (second.event, second.detail) == ("BOUNCED", "hard")
    (up,) = aliyun.parse(_request((FIXTURES / "aliyun_up.json").read_bytes())).items
    assert isinstance(up, Inbound) and up.text == "TD"
    with pytest.raises(Refused, match=r"\[0\]\.report_time"):
        aliyun.parse(_request(b'[{"phone_number": "1", "biz_id": "b", "success": true, "report_time": "soon"}]'))


def test_contact_points_are_normalised_before_they_are_hashed():
    assert contacts.normalise("+86 138 0000 0000") == contacts.normalise("13800000000") == "tel:+8613800000000"
    assert contacts.normalise(" Alice@Example.COM ") == "mailto:alice@example.com"
    for bad in ("", "12", "not a number", "a@b", "@example.com"):
        with pytest.raises(ValueError):
            contacts.normalise(bad)
    one, other = (contacts.digest(b"k", t, "+8613800000000") for t in ("acme", "globex"))
    assert one != other and "13800000000" not in one  # per tenant, and no address in it


def test_the_light_list_of_names_is_the_receivers_list():
    assert tuple(PROVIDERS) == NAMES


KINDS = sorted((FIXTURES / "kinds").iterdir())


def _what(item: object) -> str:
    if isinstance(item, Engagement):
        return item.event
    if isinstance(item, Inbound):
        return "REPLY"
    if isinstance(item, CarrierStop):
        return "CARRIER_STOP" if item.stop else "CARRIER_START"
    assert isinstance(item, ContactChange)
    return "CONTACT_DELETED" if item.deleted else "CONTACT_ADDED"


@pytest.mark.parametrize("path", KINDS, ids=[p.name for p in KINDS])
def test_each_documented_event_kind_becomes_what_the_docs_say(path):
    """One fixture per provider event kind (written from each provider's documented shape), named
    ``<provider>.<kind>.<what guard makes of it>``; the user and touch ids the sender passed come back."""
    provider, _, expected = path.name.rsplit(".", 1)[0].split(".")
    module = {"sendgrid": sendgrid, "mailgun": mailgun, "postmark": postmark, "ses": ses, "twilio": twilio,
              "aliyun": aliyun, "wecom": wecom}[provider]
    raw = path.read_bytes()
    form = json.loads(raw) if provider == "twilio" else {}
    url = "https://g.example/hooks/acme/twilio?touch_id=t1&user_id=ann"
    (item,) = module.parse(Request(url, {}, raw.replace(b"CREATE_TIME", b"1796086800"), NOW, form)).items
    assert _what(item) == expected
    if isinstance(item, Engagement):
        assert (item.user_id, item.touch_id) == ("ann", "t1")
