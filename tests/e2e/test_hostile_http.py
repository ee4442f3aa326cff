"""Hostile input at the HTTP boundary: generated requests to every route of the pages and the desk.

The gRPC side has its twin in ``test_hostile_input.py``. Every request goes to a real server (wired as
``guard serve`` wires it, in this process) over a real socket: bodies urlencoded, multipart, JSON or raw
bytes, sent with a Content-Length or chunked, within the form limit or past it, with malformed encodings,
every field of every form drawn (with a valid form token, so the handlers' own checks are reached, or
without). What must hold: every answer is one of the documented statuses, never a 500, and a refusal
(any 4xx) leaves the store as it was.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_from_bytes

import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from guard.v1 import guard_pb2 as pb
from tests.helpers import negative_task, new_key, snapshot
from tests.pages import csrf_in, sign_in

EXAMPLES = int(os.environ.get("GUARD_FUZZ_EXAMPLES", "60"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# What the pages answer, as docs/pages.md documents; 500 is never among them.
DOCUMENTED = {200, 303, 400, 401, 403, 404, 405, 408, 409, 410, 413, 429}
FORM_LIMIT = 64 * 1024

CHANNELS = ("app", "email", "push", "sms", "wecom")
CATEGORIES = ("content", "new_arrival", "promotion", "service", "survey")
PREFERENCE_FIELDS = ("csrf", "version", "form", "action", "max_week", "quiet", "quiet_start", "quiet_end", "quiet_tz",
                     "unsubscribed_all", "pause_until", *(f"channel.{c}" for c in CHANNELS),
                     *(f"category.{c}" for c in CATEGORIES))


@dataclass(frozen=True)
class RouteCase:
    method: str
    path: str  # {token}, {task} and {action} filled per example
    fields: tuple[str, ...] = ()
    desk: bool = False  # sends the desk session's cookie


ROUTES = {
    "healthz": RouteCase("GET", "/healthz"),
    "static": RouteCase("GET", "/static/{asset}"),
    "prefs_page": RouteCase("GET", "/p/{token}"),
    "prefs_save": RouteCase("POST", "/p/{token}", PREFERENCE_FIELDS),
    "unsubscribe_page": RouteCase("GET", "/u/{token}"),
    "one_click": RouteCase("POST", "/u/{token}", ("List-Unsubscribe",)),
    "login_page": RouteCase("GET", "/desk/login"),
    "login": RouteCase("POST", "/desk/login", ("csrf", "key")),
    "logout": RouteCase("POST", "/desk/logout", ("csrf",), desk=True),
    "queue": RouteCase("GET", "/desk", desk=True),
    "events": RouteCase("GET", "/desk/events", desk=True),
    "health": RouteCase("GET", "/desk/health", desk=True),
    "task_page": RouteCase("GET", "/desk/tasks/{task}", desk=True),
    "task_action": RouteCase("POST", "/desk/tasks/{task}/{action}", ("csrf", "outcome", "note", "lift_hold"), desk=True),
}

TRICKY = ["", "on", "off", "²", "١٢", "１２", "99999999999999999999", "-1", "0", "1e3", "nan", "22:00", "２２:００", "25:61",
          "Asia/Shanghai", "Mars/Olympus", "\x00", "\r\n", "pause_week", "pause_month", "pause_date", "resume", "save",
          "preferences", "pause", "2030-01-01", "1970-01-01", "9999-99-99", "RECOVERED", "NO_ACTION", "ESCALATED",
          "One-Click", "one-click", "{x}", "a b", "<script>alert(1)</script>", "'; DROP", "%ZZ", "\ud7ff", "🙂" * 50]


@dataclass
class World:
    """What a request may need to be valid: a link, a signed-in desk session and its form token, a task."""

    base: str
    token: str
    prefs_csrf: str
    cookie: str
    desk_csrf: str
    login_csrf: str
    login_nonce: str
    task_id: str
    key: str


@pytest.fixture
async def world(app) -> World:
    base = f"http://127.0.0.1:{app.http_port}"
    support, _ = await new_key(app, pb.SUPPORT, "amy")
    task_id = await negative_task(app, "u1", "r1")
    link = await app.tenants.links.create("default", "u1", 0, "en")
    token = link.url.rsplit("/p/", 1)[1].split("?")[0]
    cookie, desk_csrf = await sign_in(base, support)
    async with httpx.AsyncClient(base_url=base) as client:
        prefs_csrf = csrf_in((await client.get(f"/p/{token}")).text)
        login = await client.get("/desk/login")
    return World(base, token, prefs_csrf, cookie, desk_csrf, csrf_in(login.text), login.cookies["guard_desk_login"],
                 task_id, support)


def values() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(TRICKY), st.text(max_size=40), st.text(min_size=500, max_size=3000))


@dataclass(frozen=True)
class Body:
    kind: str
    content_type: str | None
    data: bytes
    chunked: bool


def _multipart(fields: dict[str, str], boundary: str, broken: bool) -> bytes:
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode("utf-8",
                                                                                                      "surrogatepass")
             for name, value in fields.items()]
    return b"".join(parts) + (b"" if broken else f"--{boundary}--\r\n".encode())


@st.composite
def bodies(draw: Any, fields: tuple[str, ...]) -> Body:
    names = st.sampled_from(fields) if fields else st.text(min_size=1, max_size=12)
    chosen = draw(st.dictionaries(st.one_of(names, st.text(min_size=1, max_size=12)), values(), max_size=len(fields) + 3))
    kind = draw(st.sampled_from(["urlencoded", "urlencoded", "multipart", "json", "raw", "bad-percent", "none"]))
    content_type: str | None = "application/x-www-form-urlencoded"
    if kind == "urlencoded":
        data = "&".join(f"{quote_from_bytes(k.encode('utf-8', 'surrogatepass'))}="
                        f"{quote_from_bytes(v.encode('utf-8', 'surrogatepass'))}" for k, v in chosen.items()).encode()
    elif kind == "bad-percent":  # malformed escapes and bytes that are not UTF-8
        data = b"&".join(k.encode("utf-8", "surrogatepass") + b"=%ZZ%C3%28\xff\xfe" for k in chosen) or b"%%%"
    elif kind == "multipart":
        boundary = draw(st.sampled_from(["b0undary", "x" * 70, ""]))
        data = _multipart(chosen, boundary or "none", draw(st.booleans()))
        content_type = f"multipart/form-data; boundary={boundary}" if boundary else "multipart/form-data"
    elif kind == "json":
        import json

        data, content_type = json.dumps(chosen).encode("utf-8", "surrogatepass"), "application/json"
    elif kind == "raw":
        data = draw(st.binary(max_size=2000))
        content_type = draw(st.sampled_from([None, "text/plain", "application/x-www-form-urlencoded; charset=latin-1",
                                             "application/octet-stream", "multipart/mixed"]))
    else:
        data, content_type = b"", None
    if draw(st.integers(0, 9)) == 0:  # past the form limit
        data += b"&pad=" + b"x" * (FORM_LIMIT + draw(st.integers(1, 20_000)))
    return Body(kind, content_type, data, chunked=draw(st.booleans()))


def _fill(path: str, world: World, draw: Any) -> str:
    token = draw(st.sampled_from([world.token, world.token[:-2] + "xx", "garbage", "a.b.c", "%00", "x" * 3000]))
    task = draw(st.sampled_from([world.task_id, "task-none", "{x}", "a" * 200]))
    action = draw(st.sampled_from(["claim", "resolve", "delete", "claim%00"]))
    asset = draw(st.sampled_from(["guard.css", "desk.js", "nope.css", "..%2F..%2Fetc%2Fpasswd"]))
    query = draw(st.sampled_from(["", "?lang=zh", "?lang=xx", "?filter=mine", "?filter=%FF", "?saved=1&lang=en"]))
    return path.format(token=token, task=task, action=action, asset=asset) + query


async def _send(world: World, case: RouteCase, path: str, body: Body | None, cookie: str) -> int:
    headers: dict[str, str] = {}
    cookies: dict[str, str] = {}
    if cookie:
        cookies["guard_desk"] = cookie
    if path.startswith("/desk/login"):
        cookies["guard_desk_login"] = world.login_nonce
    content: Any = None
    if body is not None:
        if body.content_type:
            headers["content-type"] = body.content_type
        if body.chunked:
            async def chunks(data: bytes = body.data) -> Any:
                for start in range(0, len(data), 8192):
                    yield data[start:start + 8192]
            content = chunks()
        else:
            content = body.data
    async with httpx.AsyncClient(base_url=world.base, follow_redirects=False, timeout=20, cookies=cookies) as client:
        try:
            request = client.build_request(case.method, path, content=content, headers=headers)
            response = await client.send(request, stream=True)
            status = response.status_code
            await response.aclose()  # a live stream is not read to its end
        except (httpx.RemoteProtocolError, httpx.WriteError, httpx.ReadError):
            status = 413  # the server closed the connection on a body past the limit before the client finished
    return status


@pytest.mark.parametrize("route", sorted(ROUTES))
@FUZZ
@given(data=st.data())
async def test_generated_requests_to_every_route_get_a_documented_status_and_change_nothing_on_refusal(
        app, world, route, data):
    case = ROUTES[route]
    path = _fill(case.path, world, data.draw)
    body = data.draw(bodies(case.fields), label="body") if case.method == "POST" else None
    if body is not None and "csrf" in case.fields and data.draw(st.booleans(), label="valid form token"):
        token = {"/p/": world.prefs_csrf, "/desk/login": world.login_csrf}.get(
            next((p for p in ("/p/", "/desk/login") if path.startswith(p)), ""), world.desk_csrf)
        if route != "logout":  # a valid sign-out would end the session every later example uses
            head = f"csrf={token}&"
            if route == "prefs_save" and data.draw(st.booleans(), label="the stored version"):
                head += f"version={(await app.preferences.get_preferences('u1')).version}&"
            body = Body(body.kind, "application/x-www-form-urlencoded", head.encode() + body.data, body.chunked)
    cookie = data.draw(st.sampled_from([world.cookie, "", "garbage", world.cookie[:-3] + "abc"])) if case.desk else ""
    before = await snapshot(app)
    status = await _send(world, case, path, body, cookie)
    event(f"{status}" + (f" {body.kind}" if body else ""))
    assert status in DOCUMENTED, (status, path[:80], body.kind if body else None)
    if status >= 400:
        assert await snapshot(app) == before
