"""Talking to the pages as a client would: signing in to the desk, reading a form's token, raw sockets.

Shared by the end-to-end tests of the pages (in-process app or ``guard serve``); nothing here knows
guard's internals beyond what a browser sees.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterable
from typing import Any

import httpx

_CSRF = re.compile(r'name="csrf" value="([^"]*)"')


def csrf_in(html: str) -> str:
    """The CSRF token of the first form on a page."""
    match = _CSRF.search(html)
    assert match is not None, "the page has no form token"
    return match.group(1)


async def sign_in(base: str, key: str) -> tuple[str, str]:
    """Sign in to the desk with ``key``: (the session cookie, the queue page's form token)."""
    async with httpx.AsyncClient(base_url=base, follow_redirects=False, timeout=20) as client:
        login = await client.get("/desk/login")
        answer = await client.post("/desk/login", data={"csrf": csrf_in(login.text), "key": key})
        assert answer.status_code == 303, answer.text
        cookie = answer.cookies["guard_desk"]
        queue = await client.get("/desk", cookies={"guard_desk": cookie})
        assert queue.status_code == 200, queue.status_code
        return cookie, csrf_in(queue.text)


def raw_exchange(port: int, head: bytes, chunks: Iterable[bytes] = (), *, pause_s: float = 0.0,
                 read_timeout_s: float = 10.0) -> tuple[bytes, bool]:
    """Send a request's head and then its body in ``chunks`` (pausing between them) over a raw socket.

    Returns what the server answered and whether every chunk went out (False: the server closed the
    connection first, which is how a server refuses to read the rest of a body).
    """
    with socket.create_connection(("127.0.0.1", port), timeout=read_timeout_s) as sock:
        sock.sendall(head)
        sent_all = True
        for chunk in chunks:
            if pause_s:
                time.sleep(pause_s)
            try:
                sock.sendall(chunk)
            except OSError:
                sent_all = False
                break
        answer = b""
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                answer += data
                if b"\r\n\r\n" in answer and _complete(answer):
                    break
        except OSError:
            pass
        return answer, sent_all


def _complete(answer: bytes) -> bool:
    head, _, body = answer.partition(b"\r\n\r\n")
    match = re.search(rb"(?i)content-length:\s*([0-9]+)", head)
    return match is not None and len(body) >= int(match.group(1))


def status_of(answer: bytes) -> int:
    """The status code of a raw HTTP answer (0 when there was none)."""
    match = re.match(rb"HTTP/1\.[01] ([0-9]{3})", answer)
    return int(match.group(1)) if match else 0


def chunked(parts: Iterable[bytes]) -> Iterable[bytes]:
    """``parts`` in HTTP/1.1 chunked transfer coding, ending with the last chunk."""
    for part in parts:
        yield f"{len(part):x}\r\n".encode() + part + b"\r\n"
    yield b"0\r\n\r\n"


def form_head(path: str, *, length: int | None = None, cookie: str = "",
              content_type: str = "application/x-www-form-urlencoded") -> bytes:
    """A POST's head: with a Content-Length, or chunked when ``length`` is None."""
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Type: {content_type}"]
    lines.append(f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked")
    if cookie:
        lines.append(f"Cookie: guard_desk={cookie}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def sse_events(raw: str) -> list[dict[str, Any]]:
    """Server-sent events as the specification parses them: lines end at CRLF, LF or CR alike; each field
    of an event gathered (``data`` lines joined with LF); comments dropped."""
    events: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    for line in re.split(r"\r\n|\r|\n", raw):
        if not line:
            if current:
                events.append(current)
            current = {}
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            current["data"] = current["data"] + "\n" + value if "data" in current else value
        else:
            current.setdefault("fields", []).append(name)
            current[name] = value
    return events
