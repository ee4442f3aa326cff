"""A lean gRPC load client: pre-serialized requests, raw bytes in and out, N calls in flight for T seconds.

The same client drives the bare echo server and guard, so their ratio measures guard, not the client.
Prints one JSON object: calls, errors by status, calls per second and latency percentiles (ms).

    python bench/load.py --target 127.0.0.1:50051 --kind spread --in-flight 64 --seconds 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from guard.v1 import guard_pb2 as pb

PATHS = {
    "check": "/guard.v1.EngagementGuard/CheckTouch",
    "batch": "/guard.v1.EngagementGuard/CheckTouches",
    "reply": "/guard.v1.EngagementGuard/RecordReply",
}
REPLIES = ["别再发了，烦死了", "谢谢，已收到", "When does the sale end?", "Stop spamming me", "好的，谢谢", "太贵了，不要了",
           "Love it, thanks!", "这个尺码有货吗", "delivery was late again, awful", "收到"]


def requests(kind: str, count: int, run: str, users: int = 20_000, batch: int = 100) -> tuple[str, list[bytes]]:
    """``count`` distinct serialized requests of one kind (``run`` keeps ids fresh across runs)."""
    out: list[bytes] = []
    if kind in ("spread", "hot", "pending"):
        for i in range(count):
            # spread: fresh users each run, so most touches are allowed and recorded; hot: one user, mostly capped
            user = {"spread": f"{run}u{i % users}", "hot": "hot", "pending": f"p{i}"}[kind]
            out.append(pb.CheckTouchRequest(user_id=user, channel="push", category="promotion",
                                            campaign_id=f"{run}c{i}", touch_id=f"{run}t{i}").SerializeToString())
        return PATHS["check"], out
    if kind == "batch":
        for j in range(count):
            checks = [pb.CheckTouchRequest(user_id=f"{run}u{(j * batch + k) % users}", channel="push", category="promotion",
                                           campaign_id=f"{run}c{j}-{k}", touch_id=f"{run}t{j}-{k}") for k in range(batch)]
            out.append(pb.CheckTouchesRequest(checks=checks).SerializeToString())
        return PATHS["batch"], out
    if kind == "reply":
        for i in range(count):
            out.append(pb.RecordReplyRequest(user_id=f"r{i % users}", channel="sms", text=REPLIES[i % len(REPLIES)],
                                             reply_id=f"{run}r{i}").SerializeToString())
        return PATHS["reply"], out
    raise SystemExit(f"unknown kind {kind!r}")


async def drive(target: str, path: str, bodies: list[bytes], in_flight: int, seconds: float,
                key: str = "") -> dict[str, object]:
    import grpc

    metadata = (("authorization", f"Bearer {key}"),) if key else None

    latencies: list[float] = []
    codes: Counter[str] = Counter()
    next_index = 0
    async with grpc.aio.insecure_channel(target) as channel:
        call = channel.unary_unary(path, request_serializer=None, response_deserializer=None)
        await call(bodies[-1], timeout=30, metadata=metadata)  # connect and warm up outside the clock
        stop_at = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal next_index
            while time.perf_counter() < stop_at and next_index < len(bodies) - 1:
                body = bodies[next_index]
                next_index += 1
                started = time.perf_counter()
                try:
                    await call(body, timeout=30, metadata=metadata)
                    codes["OK"] += 1
                except grpc.aio.AioRpcError as exc:
                    codes[exc.code().name] += 1
                latencies.append(time.perf_counter() - started)

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(in_flight)))
        elapsed = time.perf_counter() - began
    latencies.sort()

    def pct(p: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000, 3) if latencies else 0.0

    return {"calls": len(latencies), "codes": dict(codes), "per_s": round(len(latencies) / elapsed, 1),
            "p50_ms": pct(0.50), "p99_ms": pct(0.99), "seconds": round(elapsed, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--target", required=True)
    parser.add_argument("--kind", default="spread", choices=["spread", "hot", "pending", "batch", "reply"])
    parser.add_argument("--in-flight", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--max-calls", type=int, default=400_000)
    parser.add_argument("--run", default=str(int(time.time())))
    parser.add_argument("--key", default="", help="the API key sent with every call")
    args = parser.parse_args()
    path, bodies = requests(args.kind, args.max_calls, args.run, batch=args.batch)
    result = asyncio.run(drive(args.target, path, bodies, args.in_flight, args.seconds, args.key))
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
