"""Small builders shared by the tests."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis

from guard.domain.types import Touch, TouchClass
from guard.v1 import guard_pb2 as pb
from guard.v1 import guard_pb2_grpc as pb_grpc


def ms(year: int, month: int, day: int, hour: int = 0, minute: int = 0, tz: str = "UTC") -> int:
    return int(datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(tz)).timestamp() * 1000)


class FakeClock:
    """An injected clock: tests move time explicitly."""

    def __init__(self, now_ms: int) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms

    def advance(self, delta_ms: int) -> None:
        self.now_ms += delta_ms


class ShiftedClock:
    """The real clock moved forward on demand: time flows as usual (calls stay ordered), and ``advance`` stands in
    for a sleep the test would otherwise wait out."""

    def __init__(self) -> None:
        self.offset_ms = 0

    def __call__(self) -> int:
        return time.time_ns() // 1_000_000 + self.offset_ms

    def advance(self, delta_ms: int) -> None:
        self.offset_ms += delta_ms


def touch(user: str = "u1", channel: str = "push", category: str = "promotion", campaign: str = "",
          touch_id: str = "t1", touch_class: TouchClass = TouchClass.MARKETING, dry_run: bool = False,
          at_ms: int = 0) -> Touch:
    return Touch(user, channel, category, campaign, touch_id, touch_class, dry_run, at_ms)


def policy_file(directory: Path, **changes: Any) -> Path:
    """The shipped policy with top-level sections changed (merged one level deep), written to a file.

    Tests say what differs (quiet hours off, a quick redelivery) instead of editing YAML text.
    """
    from importlib import resources

    import yaml

    data = yaml.safe_load(resources.files("guard").joinpath("default_policy.yaml").read_text(encoding="utf-8"))
    # The model is given 30 s, not the shipped 2 s, to answer: on a loaded 2-core test machine a reply can take
    # longer, and a test that expects a scored reply must not get an unscored one by chance (the product's own
    # wait is exercised where the model is made to fail or is saturated, never by timing luck).
    data.setdefault("replies", {})["score_wait"] = "30s"
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    path = directory / "policy.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


QUIET_HOURS_OFF = {"time_zone": "UTC", "start": "00:00", "end": "00:00"}


class Switchable:
    """The real model, which a test can make fail (and mend) at will: a scorer (``switchable(texts)``) and a
    model (``switchable.score(texts)``) alike."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.broken = False
        self.answer: Any = None  # set: every text gets this score at once (where the model is not under test)

    def __call__(self, texts: Any) -> Any:
        if self.broken:
            raise RuntimeError("model made to fail")
        if self.answer is not None:
            return [self.answer for _ in texts]
        return self.model.score(texts)

    score = __call__


def admin_key(app: Any) -> str:
    """The admin key an in-process app wrote on its first start."""
    return str((app.settings.data_dir / "admin.key").read_text(encoding="ascii").strip())


class _AioKey:
    """Adds the key to every call of an aio channel (``aio_channel``)."""

    def __init__(self, key: str) -> None:
        self.metadata = (("authorization", f"Bearer {key}"),)

    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(details._replace(metadata=tuple(details.metadata or ()) + self.metadata), request)

    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(details._replace(metadata=tuple(details.metadata or ()) + self.metadata), request)


def aio_channel(target: str, key: str) -> Any:
    import grpc

    class Unary(_AioKey, grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]  # grpc ships no stubs
        pass

    class Stream(_AioKey, grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[misc]
        pass

    return grpc.aio.insecure_channel(target, interceptors=[Unary(key), Stream(key)])


def race_check_touch(targets: list[str], user: str, senders: int = 50, key: str = "") -> list[Any]:
    """``senders`` threads, each on a connection of its own to one of ``targets`` in turn, each sending one
    marketing CheckTouch (its own touch and campaign) for ``user`` at once; their answers."""
    import threading

    import grpc

    from guard.transport.client import connect
    from guard.v1 import guard_pb2 as pb
    from guard.v1 import guard_pb2_grpc as pb_grpc

    answers: list[Any] = []
    lock = threading.Lock()
    start = threading.Barrier(senders)  # every sender connected and ready: then all send at once

    def sender(i: int) -> None:
        with connect(targets[i % len(targets)], key, options=[("grpc.use_local_subchannel_pool", 1)]) as channel:
            grpc.channel_ready_future(channel).result(timeout=30)
            start.wait(timeout=60)
            answer = pb_grpc.EngagementGuardStub(channel).CheckTouch(pb.CheckTouchRequest(
                user_id=user, channel="push", category="promotion", touch_id=f"t{i}", campaign_id=f"c{i}"), timeout=30)
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=sender, args=(i,)) for i in range(senders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answers


NEGATIVE = "别再发了，烦死了，再发就投诉"


async def new_key(app: Any, role: Any, name: str, tenant: str = "") -> tuple[str, str]:
    """(secret, key id) of a fresh key made through the Admin service with the bootstrap key."""
    async with aio_channel(f"127.0.0.1:{app.port}", admin_key(app)) as channel:
        made = await pb_grpc.AdminStub(channel).CreateApiKey(
            pb.CreateApiKeyRequest(tenant=tenant, roles=[role], name=name), timeout=10)
    return made.secret, made.key.key_id


async def revoke(app: Any, key_id: str) -> None:
    async with aio_channel(f"127.0.0.1:{app.port}", admin_key(app)) as channel:
        await pb_grpc.AdminStub(channel).RevokeApiKey(pb.RevokeApiKeyRequest(key_id=key_id), timeout=10)


async def negative_task(app: Any, user: str, reply_id: str, text: str = NEGATIVE, key: str = "") -> str:
    async with aio_channel(f"127.0.0.1:{app.port}", key or admin_key(app)) as channel:
        answer = await pb_grpc.EngagementGuardStub(channel).RecordReply(
            pb.RecordReplyRequest(user_id=user, channel="sms", text=text, reply_id=reply_id), timeout=20)
    assert answer.action == pb.HOLD and answer.task_id, answer
    return str(answer.task_id)


async def guard_cli(app: Any, *args: str) -> tuple[int, str, str]:
    """A ``guard`` client command against an in-process app, in its own process (so the app's loop keeps serving):
    (exit code, stdout, stderr)."""
    import asyncio
    import sys

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "guard", *args, "--server", f"127.0.0.1:{app.port}",
        env={"GUARD_API_KEY": admin_key(app), "PATH": "/usr/bin:/bin"}, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    return int(proc.returncode or 0), out.decode(), err.decode()


async def task_of(app: Any, task_id: str) -> pb.RecoveryTask:
    async with aio_channel(f"127.0.0.1:{app.port}", admin_key(app)) as channel:
        listed = await pb_grpc.RecoveryDeskStub(channel).ListRecoveryTasks(pb.ListRecoveryTasksRequest(), timeout=10)
    return next(t for t in listed.tasks if t.task_id == task_id)


async def snapshot(app: Any) -> dict[bytes, bytes]:
    """Every key and its serialized value: what 'nothing stored changed' compares.

    Campaign counters written off the response path are flushed first, so an earlier call's
    increment cannot land between a failing call's two snapshots; when an API key was last used
    (written every 30 s, off the call path) is bookkeeping, not what a call stored.
    """
    await app.counters.flush()
    client = app.store.client.connection_pool  # a raw client, so values stay bytes

    raw = aioredis.Redis(connection_pool=aioredis.ConnectionPool(**{**client.connection_kwargs,
                                                                     "decode_responses": False}))
    keys = sorted([k async for k in raw.scan_iter(count=500)])
    values = [await (raw.hgetall(k) if k.startswith(b"guard:{control}:key:") else raw.dump(k)) for k in keys]
    for v in values:
        if isinstance(v, dict):
            v.pop(b"last_used_ms", None)
    await raw.aclose()
    return dict(zip(keys, values, strict=True))


def everything_stored(client: Any) -> bytes:
    """Every value in a Redis, read raw (GET, HGETALL, LRANGE, SMEMBERS, ZRANGE, XRANGE), as one blob: what "no
    word of theirs is anywhere in Redis" searches. Not DUMP: it compresses values, hiding the words in them.
    Key names are left out (a test looks at those apart)."""
    import redis as redis_lib

    given = client.connection_pool.connection_kwargs
    raw: Any = redis_lib.Redis(**{k: given[k] for k in ("host", "port", "db", "username", "password") if k in given})
    parts: list[bytes] = []

    def flat(value: Any) -> None:
        if isinstance(value, bytes):
            parts.append(value)
        elif isinstance(value, dict):
            for k, v in value.items():
                flat(k)
                flat(v)
        elif isinstance(value, (list, tuple, set)):
            for item in value:
                flat(item)
        elif value is not None:
            parts.append(str(value).encode())

    for key in raw.scan_iter(count=1000):
        kind = raw.type(key).decode()
        read = {"string": lambda k: raw.get(k), "hash": lambda k: raw.hgetall(k),
                "list": lambda k: raw.lrange(k, 0, -1), "set": lambda k: raw.smembers(k),
                "zset": lambda k: raw.zrange(k, 0, -1, withscores=True), "stream": lambda k: raw.xrange(k)}[kind]
        flat(read(key))
    raw.close()
    return b"\n".join(parts)
