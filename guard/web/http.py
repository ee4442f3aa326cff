"""The pages' HTTP listener: uvicorn, started inside guard's own event loop beside the gRPC server.

uvicorn's ``serve`` would install its own SIGTERM handler and could end the process before gRPC
drains; guard calls its ``startup`` and ``shutdown`` instead, on a socket it binds itself, so the
one signal handler guard installs drains both servers. With ``--workers N`` every worker binds the
same address with SO_REUSEPORT, as the gRPC server does, and the kernel spreads connections.
"""

from __future__ import annotations

import socket

import uvicorn

from guard import logs
from guard.validate import ascii_digits
from guard.web.limits import ASGIApp, header_timeout_protocol

log = logs.get("guard.web")


def host_port(value: str, name: str = "GUARD_HTTP_LISTEN") -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not ascii_digits(port) or int(port) > 65535:
        raise ValueError(f"{name}: host:port is expected, got {value[:64]!r}")
    return host.strip("[]"), int(port)


def bind(listen: str, reuse_port: bool) -> socket.socket:
    host, port = host_port(listen)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(512)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"GUARD_HTTP_LISTEN {listen}: {exc.strerror}") from None
    return sock


class HttpServer:
    def __init__(self, app: ASGIApp, listen: str, *, reuse_port: bool = False, grace_s: float = 10.0,
                 header_timeout_s: float = 10.0) -> None:
        self.app = app
        self.header_timeout_s = header_timeout_s
        self.listen = listen
        self.reuse_port = reuse_port
        self.grace_s = grace_s
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._sock: socket.socket | None = None

    async def start(self) -> None:
        self._sock = bind(self.listen, self.reuse_port)
        self.port = int(self._sock.getsockname()[1])
        config = uvicorn.Config(self.app, http=header_timeout_protocol(self.header_timeout_s), lifespan="off",
                                log_config=None, access_log=False, server_header=False,
                                date_header=False, proxy_headers=False,
                                timeout_graceful_shutdown=max(1, int(self.grace_s)))
        config.load()
        self._server = uvicorn.Server(config)
        self._server.lifespan = config.lifespan_class(config)  # what its serve() would make (lifespan off: a no-op)
        await self._server.startup(sockets=[self._sock])
        log.info("http_listening", listen=self.listen, port=self.port)

    async def stop(self) -> None:
        """Stop accepting, let requests in flight finish (server-sent event streams end when told to stop)."""
        if self._server is not None:
            await self._server.shutdown(sockets=[self._sock] if self._sock else None)
            self._server = None
