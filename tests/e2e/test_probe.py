"""The hostile probe's ten findings against the pages, the desk, the live streams and the keys, each replayed.

Every test runs a real server (wired as ``guard serve`` wires it, in this process, on real ports, on
a real Redis) and a real client (httpx, a raw socket, gRPC); each failed on the code the probe found.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import grpc
import httpx
import pytest
import redis.asyncio as aioredis
import structlog

from guard.domain import tokens
from guard.v1 import guard_pb2 as pb
from guard.v1 import guard_pb2_grpc as pb_grpc
from tests.helpers import aio_channel, negative_task, new_key, revoke, task_of
from tests.pages import chunked, csrf_in, form_head, raw_exchange, sign_in, sse_events, status_of


def base(app: Any) -> str:
    return f"http://127.0.0.1:{app.http_port}"


# -- 1. the form limit counts the bytes received, chunked or not -------------------------------------

async def test_a_chunked_body_past_the_form_limit_is_refused_before_it_is_read_whole(app):
    """A 100 KB chunked one-click POST was answered 200 (70 KB with a Content-Length: 413), and a chunked
    sign-in of megabytes was parsed whole before its 403. Both are 413 now, from the bytes counted as they
    arrive, and the server stops reading: the client cannot send the rest."""
    link = await app.tenants.links.create("default", "u1", 0, "en")
    path = link.unsubscribe_url.split(str(app.http_port), 1)[1]
    pad = [b"List-Unsubscribe=One-Click&pad="] + [b"x" * 1024] * 100
    answer, _ = await asyncio.to_thread(raw_exchange, app.http_port, form_head(path), chunked(pad))
    assert status_of(answer) == 413, answer[:200]
    assert (await app.preferences.get_preferences("u1")).channels.get("email", True)  # nothing closed

    fields = [f"f{i}=".encode() + b"y" * 1_000_000 + b"&" for i in range(50)]
    answer, sent_all = await asyncio.to_thread(raw_exchange, app.http_port, form_head("/desk/login"), chunked(fields))
    assert status_of(answer) == 413 and not sent_all, answer[:200]

    big = b"List-Unsubscribe=One-Click&pad=" + b"x" * 70_000
    answer, _ = await asyncio.to_thread(raw_exchange, app.http_port, form_head(path, length=len(big)), [big])
    assert status_of(answer) == 413  # a declared length past the limit is refused as before


# -- 2. failures from one address never refuse a valid key ---------------------------------------------

async def test_bad_keys_from_an_address_never_refuse_a_valid_key_and_the_desk_has_its_own_bucket(app_factory):
    """~10 bad keys a second from 127.0.0.1 made every uncached valid key RESOURCE_EXHAUSTED, and refused a
    desk sign-in. Now the key is checked first and only failures count; the desk's failures count apart."""
    app = await app_factory(auth_failures_per_minute=5)
    fresh, _ = await new_key(app, pb.SENDER, "engine")
    support, _ = await new_key(app, pb.SUPPORT, "amy")
    request = pb.CheckTouchRequest(user_id="u1", channel="push", category="promotion", dry_run=True)
    codes = []
    for _ in range(10):
        async with aio_channel(f"127.0.0.1:{app.port}", "gk_not-a-key") as bad:
            try:
                await pb_grpc.EngagementGuardStub(bad).CheckTouch(request, timeout=10)
            except grpc.aio.AioRpcError as exc:
                codes.append(exc.code())
    assert codes[:5] == [grpc.StatusCode.UNAUTHENTICATED] * 5
    assert set(codes[5:]) == {grpc.StatusCode.RESOURCE_EXHAUSTED}  # guessing is still limited

    async with aio_channel(f"127.0.0.1:{app.port}", fresh) as good:  # never seen by this process before
        answer = await pb_grpc.EngagementGuardStub(good).CheckTouch(request, timeout=10)
    assert answer.decision == pb.ALLOW
    cookie, _ = await sign_in(base(app), support)  # the desk's bucket is its own, and the key is good
    assert cookie

    async with httpx.AsyncClient(base_url=base(app), follow_redirects=False) as client:
        statuses = []
        for _ in range(7):
            login = await client.get("/desk/login")
            answer = await client.post("/desk/login", data={"csrf": csrf_in(login.text), "key": "gk_wrong"})
            statuses.append(answer.status_code)
        assert statuses[:5] == [401] * 5 and set(statuses[5:]) == {429}
        login = await client.get("/desk/login")
        answer = await client.post("/desk/login", data={"csrf": csrf_in(login.text), "key": support})
        assert answer.status_code == 303  # a valid key signs in however often the address failed


# -- 3. a revoked key's task stream ends within the poll ------------------------------------------------

async def test_a_revoked_key_loses_its_task_stream_within_the_control_poll(app_factory):
    """A support key's WatchRecoveryTasks kept delivering new tasks for 22 s after the key was revoked. Revoked
    through another process, the stream ends UNAUTHENTICATED within the poll and delivers nothing more."""
    watched = await app_factory()
    other = await app_factory()
    secret, key_id = await new_key(watched, pb.SUPPORT, "watcher")
    async with aio_channel(f"127.0.0.1:{watched.port}", secret) as channel:
        stream = pb_grpc.RecoveryDeskStub(channel).WatchRecoveryTasks(
            pb.WatchRecoveryTasksRequest(consumer="w1"), timeout=30)
        first = await negative_task(watched, "u1", "r1")
        delivered = await stream.read()
        assert delivered.task_id == first
        await revoke(other, key_id)  # the watching process learns it only from its poll (every second)
        started = time.monotonic()
        await asyncio.sleep(2.0)
        later = await negative_task(watched, "u2", "r2")  # a task after the poll must never reach the revoked key
        seen: list[str] = []
        with pytest.raises(grpc.aio.AioRpcError) as ended:
            while True:
                message = await stream.read()
                assert message is not grpc.aio.EOF
                seen.append(message.task_id)
        assert ended.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert time.monotonic() - started < 5  # the poll is 1 s; the client's deadline was 30 s
        assert later not in seen


# -- 4. line breaks in a reply cannot forge server-sent events ------------------------------------------

async def test_carriage_returns_in_a_reply_cannot_forge_server_sent_events(app):
    """A reply holding ``\\r`` produced extra events and ``id``/``retry`` fields on /desk/events. Every line break
    of the data is encoded now: the raw stream, parsed as the specification says, holds one task event."""
    support, _ = await new_key(app, pb.SUPPORT, "amy")
    cookie, _ = await sign_in(base(app), support)
    text = '烦死了\r\revent: task\rdata: <tr id="task-forged">\rid: 7\rretry: 1\r\r\n投诉'
    raw = ""
    async with httpx.AsyncClient(base_url=base(app), timeout=20) as client, client.stream(
            "GET", "/desk/events", cookies={"guard_desk": cookie}) as stream:
        chunks = stream.aiter_text()
        raw += await chunks.__anext__()  # the stream is open: what comes next is the new task
        task_id = await negative_task(app, "u1", "r1", text)
        deadline = time.monotonic() + 15
        while f"task-{task_id}" not in raw:
            assert time.monotonic() < deadline, "the task never came"
            raw += await asyncio.wait_for(chunks.__anext__(), 15)
    events = sse_events(raw)
    assert [e.get("event") for e in events] == [None, "task"]
    assert events[0]["fields"] == ["retry"] and events[1]["fields"] == ["event"]  # no forged id or retry
    assert f'id="task-{task_id}"' in events[1]["data"] and "task-forged" in events[1]["data"]  # only as the row's text
    assert events[1]["data"].count("<tr") == 1


# -- 5. signing out ends the session on the server ------------------------------------------------------

async def test_signing_out_ends_the_session_on_the_server(app):
    """A saved desk cookie kept working after sign-out, a claim with the old form token included."""
    support, _ = await new_key(app, pb.SUPPORT, "amy")
    cookie, csrf = await sign_in(base(app), support)
    task_id = await negative_task(app, "u1", "r1")
    async with httpx.AsyncClient(base_url=base(app), follow_redirects=False) as client:
        out = await client.post("/desk/logout", data={"csrf": csrf}, cookies={"guard_desk": cookie})
        assert out.status_code == 303
        again = await client.get("/desk", cookies={"guard_desk": cookie})
        assert again.status_code == 303 and again.headers["location"] == "/desk/login"
        claim = await client.post(f"/desk/tasks/{task_id}/claim", data={"csrf": csrf}, cookies={"guard_desk": cookie})
        assert claim.status_code == 303 and claim.headers["location"] == "/desk/login"
        events = await client.get("/desk/events", cookies={"guard_desk": cookie})
        assert events.status_code == 401
    assert (await task_of(app, task_id)).status == pb.OPEN


# -- 6. the acting agent comes from the key ---------------------------------------------------------------

async def test_the_acting_agent_comes_from_the_key_never_from_the_request(app):
    """bob's key resolved amy's task by sending agent="amy" (recorded as amy), and two keys both named "amy"
    shared one identity. Now the key decides who acts, and the task records which key did."""
    amy, amy_id = await new_key(app, pb.SUPPORT, "amy")
    bob, _ = await new_key(app, pb.SUPPORT, "bob")
    other_amy, _ = await new_key(app, pb.SUPPORT, "amy")
    task_id = await negative_task(app, "u1", "r1")
    target = f"127.0.0.1:{app.port}"
    async with aio_channel(target, amy) as channel:
        claimed = await pb_grpc.RecoveryDeskStub(channel).ClaimRecoveryTask(
            pb.ClaimRecoveryTaskRequest(task_id=task_id), timeout=10)
    assert claimed.assignee == "amy" and claimed.assignee_key_id == amy_id
    resolve = pb.ResolveRecoveryTaskRequest(task_id=task_id, agent="amy", outcome=pb.RECOVERED, note="x")
    async with aio_channel(target, bob) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await pb_grpc.RecoveryDeskStub(channel).ResolveRecoveryTask(resolve, timeout=10)
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED and refused.value.details().startswith("agent:")
    async with aio_channel(target, other_amy) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as taken:
            await pb_grpc.RecoveryDeskStub(channel).ResolveRecoveryTask(resolve, timeout=10)
    assert taken.value.code() == grpc.StatusCode.FAILED_PRECONDITION  # the same name is not the same agent
    stored = await task_of(app, task_id)
    assert stored.status == pb.CLAIMED and stored.assignee_key_id == amy_id
    async with aio_channel(target, amy) as channel:
        done = await pb_grpc.RecoveryDeskStub(channel).ResolveRecoveryTask(resolve, timeout=10)
    assert done.status == pb.RESOLVED and done.assignee == "amy" and done.assignee_key_id == amy_id


# -- 7. numbers in forms are ASCII digits --------------------------------------------------------------

@pytest.mark.parametrize(("name", "field"), [("max_week", "max_marketing_per_week"), ("version", "version")])
async def test_superscript_digits_in_a_preference_form_are_a_400_naming_the_field(app, name, field):
    """``max_week=²`` or ``version=²`` was an HTTP 500: ``str.isdigit`` accepts what ``int`` refuses."""
    link = await app.tenants.links.create("default", "u1", 0, "en")
    path = link.url.split(str(app.http_port), 1)[1]
    before = await app.preferences.get_preferences("u1")
    async with httpx.AsyncClient(base_url=base(app), follow_redirects=False) as client:
        page = await client.get(path)
        form = {"csrf": csrf_in(page.text), "version": str(before.version), "max_week": "0", name: "²"}
        answer = await client.post(path, data=form)
    assert answer.status_code == 400 and field in answer.text
    assert (await app.preferences.get_preferences("u1")) == before


# -- 8. slow clients are timed out ------------------------------------------------------------------------

async def test_slow_headers_and_slow_bodies_are_timed_out_and_a_vanished_client_is_one_line(app_factory):
    """40 connections trickling headers and 10 trickling a body were all open after 90 s; each slow body then
    logged a traceback and a 500. Now both time out (GUARD_HTTP_HEADER_TIMEOUT_SECONDS,
    GUARD_HTTP_BODY_TIMEOUT_SECONDS), and a client that goes away mid-body is one log line."""
    app = await app_factory(http_header_timeout_seconds=1.0, http_body_timeout_seconds=1.0)
    head = b"GET /desk/login HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 40
    started = time.monotonic()
    answer, sent_all = await asyncio.to_thread(raw_exchange, app.http_port, b"", [bytes([b]) for b in head],
                                               pause_s=0.2)
    assert not sent_all or status_of(answer) == 408
    assert time.monotonic() - started < 5

    with structlog.testing.capture_logs() as logged:
        started = time.monotonic()
        answer, sent_all = await asyncio.to_thread(
            raw_exchange, app.http_port, form_head("/desk/login", length=100), [b"k"] * 100, pause_s=0.2)
        assert status_of(answer) == 408 and not sent_all
        assert time.monotonic() - started < 5
        await asyncio.to_thread(raw_exchange, app.http_port, form_head("/desk/login", length=100) + b"csrf=", [],
                                read_timeout_s=0.5)
        await asyncio.sleep(1.5)
    events = [e["event"] for e in logged]
    assert "http_body_timeout" in events and "http_client_disconnected" in events
    assert not [e for e in logged if e.get("log_level") in ("error", "critical") or e.get("exc_info")]


# -- 9. live streams are bounded -------------------------------------------------------------------------

async def test_live_streams_are_capped_per_session_and_per_key_and_share_one_reader(app_factory, redis_server):
    """50 /desk/events streams on one session took Redis from 4 to 52 clients. Past the caps the answer is
    429, and however many streams are open, the process reads the desk's stream once."""
    app = await app_factory(desk_streams_per_session=2, desk_streams_per_key=3)
    support, _ = await new_key(app, pb.SUPPORT, "amy")
    first, _ = await sign_in(base(app), support)
    second, _ = await sign_in(base(app), support)
    redis = aioredis.Redis.from_url(redis_server.url)
    clients_before = (await redis.info("clients"))["connected_clients"]

    async def open_stream(client: httpx.AsyncClient, cookie: str) -> Any:
        request = client.build_request("GET", "/desk/events", cookies={"guard_desk": cookie})
        return await client.send(request, stream=True)

    async with httpx.AsyncClient(base_url=base(app), timeout=20) as client:
        opened = [await open_stream(client, first), await open_stream(client, first)]
        assert [r.status_code for r in opened] == [200, 200]
        assert (await open_stream(client, first)).status_code == 429  # the session's cap
        opened.append(await open_stream(client, second))
        assert opened[-1].status_code == 200
        assert (await open_stream(client, second)).status_code == 429  # the key's cap
        await asyncio.sleep(1.0)
        clients_open = (await redis.info("clients"))["connected_clients"]
        for response in opened:
            await response.aclose()
    await redis.aclose()
    assert clients_open - clients_before <= 1


# -- 10. the desk's key check binds the key to its tenant -----------------------------------------------

async def test_a_desk_cookie_naming_another_tenant_is_refused_while_its_key_is_cached(app, redis_server):
    """A cookie naming key K of tenant alpha but tenant beta (signed with the pages' secret) showed beta's
    queue while K sat in the 5 s check cache."""
    support, _ = await new_key(app, pb.SUPPORT, "amy")
    beta_sender, _ = await new_key(app, pb.SENDER, "beta engine", tenant="beta")
    await negative_task(app, "beta-user", "r1", key=beta_sender)
    cookie, _ = await sign_in(base(app), support)  # the key is now in the check cache
    redis: Any = aioredis.Redis.from_url(redis_server.url)
    secret = bytes.fromhex((await redis.get("guard:{control}:web:secret")).decode())
    await redis.aclose()
    fields, expires = tokens.verify("desk-session", cookie, {"w": secret}, int(time.time() * 1000))
    forged = tokens.sign("desk-session", [("beta" if f == "default" else f) for f in fields], expires, "w", secret)
    async with httpx.AsyncClient(base_url=base(app), follow_redirects=False) as client:
        answer = await client.get("/desk", cookies={"guard_desk": forged})
    assert answer.status_code == 303 and "beta-user" not in answer.text


# -- the pages' failure table -------------------------------------------------------------------------------

async def test_a_store_outage_on_a_desk_action_answers_503_not_a_bad_request(app_factory, redis_server):
    """A claim whose script Redis cannot run (writes paused) once answered 400 (``except GuardError``); the pages
    map each failure to one status in one table: a store that does not answer is 503."""
    app = await app_factory(redis_timeout=0.5)
    support, _ = await new_key(app, pb.SUPPORT, "amy")
    cookie, _ = await sign_in(base(app), support)
    task_id = await negative_task(app, "u1", "r1")
    async with httpx.AsyncClient(base_url=base(app), follow_redirects=False, timeout=20) as client:
        page = await client.get(f"/desk/tasks/{task_id}", cookies={"guard_desk": cookie})
        csrf = csrf_in(page.text)
        redis = aioredis.Redis.from_url(redis_server.url)
        await redis.execute_command("CLIENT", "PAUSE", "3000", "WRITE")  # reads answer; scripts wait
        try:
            claim = await client.post(f"/desk/tasks/{task_id}/claim", data={"csrf": csrf}, cookies={"guard_desk": cookie})
        finally:
            await redis.execute_command("CLIENT", "UNPAUSE")
            await redis.aclose()
        assert claim.status_code == 503, claim.text
        missing = await client.get("/desk/tasks/no-such-task", cookies={"guard_desk": cookie})
        assert missing.status_code == 404
