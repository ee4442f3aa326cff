"""Amazon SES through SNS, against an SNS of the test's own: a CA and certificates made here, the signing
certificate and the subscription URL served over HTTPS on loopback, allowed explicitly (GUARD_SNS_HOSTS, GUARD_SNS_CA)
as no deployment's SNS would need. Messages are signed with SNS's signature versions 1 (SHA1) and 2 (SHA256)."""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from guard.domain.types import Reason
from guard.providers import ses
from tests.helpers import snapshot, touch

TOPIC = "arn:aws:sns:us-east-1:123456789012:ses-events"


def _cert(subject: str, key: Any, issuer_key: Any, issuer: str, *, ca: bool = False, ip: str = "") -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
               .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ip:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]),
                                        critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


class FakeSns:
    """SNS's two HTTPS endpoints a receiver calls: the signing certificate, and the subscription confirmation."""

    def __init__(self, directory: Path) -> None:
        pem = serialization.Encoding.PEM
        ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        ca = _cert("test SNS CA", ca_key, ca_key, "test SNS CA", ca=True)
        server_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        (directory / "ca.pem").write_bytes(ca.public_bytes(pem))
        (directory / "server.pem").write_bytes(_cert("127.0.0.1", server_key, ca_key, "test SNS CA",
                                                     ip="127.0.0.1").public_bytes(pem))
        (directory / "server.key").write_bytes(server_key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                                        serialization.NoEncryption()))
        self.signing_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.signing_pem = _cert("sns.amazonaws.com", self.signing_key, ca_key, "test SNS CA").public_bytes(pem)
        self.ca_path = directory / "ca.pem"
        self.visits: list[str] = []
        sns = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                sns.visits.append(self.path)
                body = sns.signing_pem if self.path.startswith("/SimpleNotificationService") else b"<ok/>"
                self.send_response(200)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(directory / "server.pem", directory / "server.key")
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def message(self, kind: str, payload: dict[str, Any] | None = None, *, version: str = "2", topic: str = TOPIC,
                at: dt.datetime | None = None, **fields: str) -> dict[str, Any]:
        body = {"Type": kind, "MessageId": fields.pop("MessageId", f"m-{len(self.visits)}-{kind}-{id(payload)}"),
                "TopicArn": topic, "Message": json.dumps(payload) if payload is not None else "hello",
                "Timestamp": (at or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                "SignatureVersion": version,
                "SigningCertURL": f"https://{self.host}/SimpleNotificationService-0001.pem", **fields}
        digest = hashes.SHA256() if version == "2" else hashes.SHA1()
        body["Signature"] = base64.b64encode(self.signing_key.sign(ses.string_to_sign(body), padding.PKCS1v15(),
                                                                   digest)).decode()
        return body


@pytest.fixture
def sns(tmp_path: Path) -> Iterator[FakeSns]:
    server = FakeSns(tmp_path)
    yield server
    server.server.shutdown()


def _ses(kind: str, user: str, touch_id: str, address: str, **extra: Any) -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    mail = {"timestamp": now, "messageId": f"ses-{touch_id}", "destination": [address],
            "tags": {"touch_id": [touch_id], "user_id": [user]}}
    return {"eventType" if kind != "Delivery-old" else "notificationType": kind.split("-")[0], "mail": mail, **extra}


async def test_ses_events_through_sns_both_signature_versions(app_factory, sns):
    app = await app_factory(sns_hosts=sns.host, sns_ca=sns.ca_path)
    await app.web.hooks.set_secret("default", "ses", "topic_arns", f"{TOPIC},arn:aws:sns:eu-west-1:1:other")
    for user, touch_id in (("mia", "s1"), ("ned", "s2")):
        assert (await app.service.check(touch(user=user, channel="email", touch_id=touch_id))).recorded
    url = f"{app.web.public_url}/hooks/default/ses"
    async with httpx.AsyncClient() as http:
        subscribe = sns.message("SubscriptionConfirmation", Token="tok", SubscribeURL=f"https://{sns.host}/confirm?t=1")
        assert (await http.post(url, json=subscribe)).status_code == 200
        assert "/confirm?t=1" in sns.visits
        stranger = sns.message("SubscriptionConfirmation", topic="arn:aws:sns:us-east-1:9:someone-else", Token="t",
                               SubscribeURL=f"https://{sns.host}/confirm?t=2")
        assert (await http.post(url, json=stranger)).status_code == 403 and "/confirm?t=2" not in sns.visits
        complaint = sns.message("Notification", _ses("Complaint", "mia", "s1", "mia@example.com", complaint={
            "complainedRecipients": [{"emailAddress": "mia@example.com"}]}), version="1")
        delivered = sns.message("Notification", _ses("Delivery-old", "ned", "s2", "ned@example.com"))
        for message in (complaint, delivered, complaint):  # SNS retries the complaint: applied once
            answer = await http.post(url, json=message)
            assert answer.status_code == 200, answer.text
        assert (await app.preferences.get_preferences("mia")).channels == {"email": False}
        assert (await app.default.engagement.state("ned")).tier == "active"
        before = await snapshot(app)
        later = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        bounce = sns.message("Notification", _ses("Bounce", "ned", "s2", "ned@example.com", bounce={  # after the delivery
            "bounceType": "Permanent", "timestamp": later, "bouncedRecipients": [{"emailAddress": "ned@example.com"}]}))
        forged = {**bounce, "TopicArn": "arn:aws:sns:eu-west-1:1:other"}  # signed for another topic
        elsewhere = sns.message("Notification", _ses("Bounce", "ned", "s2", "ned@example.com"),
                                SigningCertURL="https://evil.example.com/SimpleNotificationService-1.pem")
        old = sns.message("Notification", _ses("Bounce", "ned", "s2", "ned@example.com"),
                          at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=2))
        answers = [(await http.post(url, json=m)).status_code for m in (forged, elsewhere, old)]
        assert answers == [403, 403, 403]
        assert await snapshot(app) == before
        assert (await http.post(url, json=bounce)).status_code == 200
    assert (await app.service.check(touch(user="ned", channel="email", touch_id="s3"))).reasons == (Reason.UNDELIVERABLE,)
    assert sum(v.startswith("/SimpleNotificationService") for v in sns.visits) == 1  # fetched once, then cached
