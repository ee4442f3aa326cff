"""Webhook receivers beside the API they stand in for, side by side in one run (alternating rounds).

1. SendGrid: signed POSTs of 1,000 events each to ``/hooks/default/sendgrid`` against ``RecordEngagements`` of the
   same events over gRPC; events per second, the receiver's over the API's (target ≥ 0.8).
2. Inbound SMS: Twilio inbound messages (signed, the user found by their number) at 32 in flight against
   ``RecordReply`` at 32 in flight; replies per second, the receiver's over the API's (target ≥ 0.8).

    python bench/webhooks.py                 # 5 rounds
    python bench/webhooks.py --rounds 3 --batches 4

Every round uses fresh event ids, so both sides do the whole work each time. Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

from bench.run import on_one_guard  # noqa: E402

TWILIO_TOKEN = "bench-auth-token-0123456789abcdef"
USERS = 200


def _events(prefix: str, n: int, now_s: int) -> list[dict[str, Any]]:
    return [{"email": f"u{i % USERS}@example.com", "timestamp": now_s, "event": "open" if i % 2 else "delivered",
             "sg_event_id": f"{prefix}-{i}", "touch_id": f"{prefix}-t{i // 2}", "user_id": f"u{i % USERS}"}
            for i in range(n)]


async def _sendgrid(url: str, private: Any, batches: list[bytes], in_flight: int) -> float:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    requests = []
    for body in batches:
        stamp = str(int(time.time()))
        signature = base64.b64encode(private.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))).decode()
        requests.append(_http_request(url, body, {"content-type": "application/json",
                                                  "x-twilio-email-event-webhook-signature": signature,
                                                  "x-twilio-email-event-webhook-timestamp": stamp}))
    return sum(len(json.loads(b)) for b in batches) / await _send_all(url, requests, in_flight)


async def _record_engagements(stub: Any, pb: Any, batches: list[list[dict[str, Any]]], in_flight: int) -> float:
    from google.protobuf import timestamp_pb2

    kinds = {"open": pb.EngagementEvent.OPENED, "delivered": pb.EngagementEvent.DELIVERED}
    requests = [pb.RecordEngagementsRequest(events=[
        pb.EngagementEvent(touch_id=e["touch_id"], user_id=e["user_id"], event=kinds[e["event"]], provider="sendgrid",
                           channel="email", occurred_at=timestamp_pb2.Timestamp(seconds=e["timestamp"]))
        for e in batch]) for batch in batches]

    async def worker() -> None:
        while requests:
            await stub.RecordEngagements(requests.pop(), timeout=60)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return sum(len(b) for b in batches) / (time.perf_counter() - started)


TEXTS = ["好的，收到", "谢谢提醒", "什么时候发货？", "别再发了，烦死了", "ok thanks", "这个活动还有吗"]


def _http_request(url: str, body: bytes, headers: dict[str, str]) -> bytes:
    """One HTTP/1.1 request, made before the clock starts: the client's own work stays out of the figure (gRPC's
    client is C; a Python HTTP client would spend the cores the server needs)."""
    parts = urlsplit(url)
    head = [f"POST {parts.path}{'?' + parts.query if parts.query else ''} HTTP/1.1", f"host: {parts.netloc}",
            f"content-length: {len(body)}", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def _send_all(url: str, requests: list[bytes], in_flight: int) -> float:
    """Requests over ``in_flight`` keep-alive connections; the seconds they took, every answer checked for 2xx."""
    parts = urlsplit(url)
    todo = list(requests)

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        while todo:
            writer.write(todo.pop())
            status = await reader.readline()
            if not status.split()[1].startswith(b"2"):
                raise SystemExit(f"the receiver answered {status!r}")
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(in_flight)))
    return time.perf_counter() - started


async def _inbound(url: str, prefix: str, n: int, in_flight: int) -> float:
    from twilio.request_validator import RequestValidator

    validator = RequestValidator(TWILIO_TOKEN)
    requests = []
    for i in range(n):
        form = {"MessageSid": f"SM{prefix}{i}", "From": f"+861380000{i % USERS:04d}", "To": "+14155550100",
                "Body": TEXTS[i % len(TEXTS)], "SmsStatus": "received"}
        requests.append(_http_request(url, urlencode(form).encode(), {
            "content-type": "application/x-www-form-urlencoded", "x-twilio-signature": validator.compute_signature(url, form)}))
    return n / await _send_all(url, requests, in_flight)


async def _record_reply(stub: Any, pb: Any, prefix: str, n: int, in_flight: int) -> float:
    todo = list(range(n))

    async def worker() -> None:
        while todo:
            i = todo.pop()
            await stub.RecordReply(pb.RecordReplyRequest(user_id=f"u{i % USERS}", channel="sms", text=TEXTS[i % len(TEXTS)],
                                                         reply_id=f"r{prefix}{i}"), timeout=60)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return n / (time.perf_counter() - started)


async def measure(target: str, http_url: str, key: str, args: argparse.Namespace) -> dict[str, Any]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from guard.v1 import guard_pb2 as pb
    from guard.v1 import guard_pb2_grpc as pb_grpc
    from tests.helpers import aio_channel

    private = ec.generate_private_key(ec.SECP256R1())
    public = base64.b64encode(private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()
    out: dict[str, Any] = {"sendgrid": [], "record_engagements": [], "inbound_sms": [], "record_reply": []}
    async with aio_channel(target, key) as channel:
        admin, stub = pb_grpc.AdminStub(channel), pb_grpc.EngagementGuardStub(channel)
        await admin.SetHookSecret(pb.SetHookSecretRequest(provider="sendgrid", name="public_key", value=public))
        await admin.SetHookSecret(pb.SetHookSecretRequest(provider="twilio", name="auth_token", value=TWILIO_TOKEN))
        for u in range(USERS):
            await stub.SetContactPoints(pb.SetContactPointsRequest(user_id=f"u{u}", addresses=[f"+861380000{u:04d}"]))
        now_s = int(time.time())
        for r in range(args.rounds):
            hook = [_events(f"h{r}b{b}", args.events, now_s) for b in range(args.batches)]
            api = [_events(f"a{r}b{b}", args.events, now_s) for b in range(args.batches)]
            out["sendgrid"].append(await _sendgrid(f"{http_url}/hooks/default/sendgrid", private,
                                                   [json.dumps(b).encode() for b in hook], 2))
            out["record_engagements"].append(await _record_engagements(stub, pb, api, 2))
            out["inbound_sms"].append(await _inbound(f"{http_url}/hooks/default/twilio", f"h{r}x", args.replies, 32))
            out["record_reply"].append(await _record_reply(stub, pb, f"a{r}x", args.replies, 32))
    med = {k: round(statistics.median(v), 1) for k, v in out.items()}
    return {"rounds": out, "median_per_s": med,
            "sendgrid_over_record_engagements": round(med["sendgrid"] / med["record_engagements"], 3),
            "inbound_sms_over_record_reply": round(med["inbound_sms"] / med["record_reply"], 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batches", type=int, default=4, help="SendGrid POSTs (and RecordEngagements calls) per round")
    parser.add_argument("--events", type=int, default=1000, help="events per POST")
    parser.add_argument("--replies", type=int, default=200, help="inbound messages (and RecordReply calls) per round")
    parser.add_argument("--json", type=Path, default=Path("bench-webhooks.json"))
    args = parser.parse_args()
    on_one_guard("guard-bench-hooks-", lambda target, http_url, key: measure(target, http_url, key, args), args.json)


if __name__ == "__main__":
    main()
