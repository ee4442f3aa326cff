"""CheckTouch over HTTP/JSON (``POST /v1/CheckTouch``) beside CheckTouch over gRPC, on one ``guard serve``, in
alternating rounds; calls per second, HTTP's over gRPC's (target ≥ 0.5).

Both clients run in this process with their requests built before the clock starts (gRPC's pre-serialized,
HTTP's whole requests over keep-alive connections), fresh users and touch ids each round, the same in flight.

    python bench/json_api.py --rounds 5 --calls 3000 --in-flight 16
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

from bench.load import drive, requests  # noqa: E402
from bench.run import on_one_guard  # noqa: E402
from bench.webhooks import _http_request, _send_all  # noqa: E402


def _http_checks(url: str, key: str, run: str, count: int) -> list[bytes]:
    return [_http_request(url, json.dumps({"user_id": f"{run}u{i}", "channel": "push", "category": "promotion",
                                           "campaign_id": f"{run}c{i}", "touch_id": f"{run}t{i}"}).encode(),
                          {"content-type": "application/json", "authorization": f"Bearer {key}"})
            for i in range(count)]


async def measure(target: str, http_url: str, key: str, args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, list[float]] = {"grpc": [], "http": []}
    for r in range(args.rounds):
        path, bodies = requests("spread", args.calls + 1, f"g{r}x")
        grpc_run = await drive(target, path, bodies, args.in_flight, 600, key)
        out["grpc"].append(float(grpc_run["per_s"]))  # type: ignore[arg-type]
        checks = _http_checks(f"{http_url}/v1/CheckTouch", key, f"h{r}x", args.calls)
        out["http"].append(args.calls / await _send_all(f"{http_url}/v1/CheckTouch", checks, args.in_flight))
    med = {k: round(statistics.median(v), 1) for k, v in out.items()}
    return {"rounds": out, "median_per_s": med, "http_over_grpc": round(med["http"] / med["grpc"], 3),
            "in_flight": args.in_flight}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=3000, help="CheckTouch calls per round and transport")
    parser.add_argument("--in-flight", type=int, default=16)
    parser.add_argument("--json", type=Path, default=Path("bench-json-api.json"))
    args = parser.parse_args()
    on_one_guard("guard-bench-json-", lambda target, http_url, key: measure(target, http_url, key, args), args.json)


if __name__ == "__main__":
    main()
