"""The gRPC floor: a bare grpc.aio server that answers every guard method with an empty message.

Driven by the same load client as guard, it shows what the transport alone costs on this host.

    python bench/echo_server.py --listen 127.0.0.1:50052
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import grpc

METHODS = ["CheckTouch", "CheckTouches", "RecordReply"]


async def serve(listen: str) -> None:
    async def echo(request: bytes, context: Any) -> bytes:
        return b""

    handlers = {name: grpc.unary_unary_rpc_method_handler(echo) for name in METHODS}
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("guard.v1.EngagementGuard", handlers),))
    server.add_insecure_port(listen)
    await server.start()
    await server.wait_for_termination()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--listen", required=True)
    asyncio.run(serve(parser.parse_args().listen))


if __name__ == "__main__":
    main()
