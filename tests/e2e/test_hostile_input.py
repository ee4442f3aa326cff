"""Hostile input at the gRPC boundary: the probe's cases, generated requests and raw bytes.

Every call goes through a real server (wired as ``guard serve`` wires it) on a real port, with
real Redis and the bundled model. What must hold for every input: the status is one of the
documented ones, an error names its field and is short, and an error changes nothing stored.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor as pbd
from google.protobuf import duration_pb2, field_mask_pb2, timestamp_pb2
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from guard import metrics
from guard.v1 import guard_pb2 as pb
from tests.helpers import admin_key, aio_channel, snapshot

# Statuses a well-formed call can meet on a healthy server (RESOURCE_EXHAUSTED: a message over the limit).
DOCUMENTED = {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
              grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.ABORTED}
# A desk call naming an agent other than the calling key's: the agent always comes from the key.
DOCUMENTED_FOR = {"ClaimRecoveryTask": DOCUMENTED | {grpc.StatusCode.PERMISSION_DENIED},
                  "ResolveRecoveryTask": DOCUMENTED | {grpc.StatusCode.PERMISSION_DENIED}}
EXAMPLES = int(os.environ.get("GUARD_FUZZ_EXAMPLES", "60"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

METHODS = {m.name: (svc.name, m) for svc in pb.DESCRIPTOR.services_by_name.values() for m in svc.methods}


async def call(channel: grpc.aio.Channel, method: str, request: Any) -> tuple[grpc.StatusCode, str]:
    service, desc = METHODS[method]
    path = f"/guard.v1.{service}/{method}"
    response_type = getattr(pb, desc.output_type.name)
    body = request if isinstance(request, bytes) else request.SerializeToString()
    if desc.server_streaming:
        # A valid watch waits for tasks until its client stops it; the server says it accepted the watch (its
        # initial metadata) before any task, so acceptance is observed, never inferred from a deadline.
        stream = channel.unary_stream(path, request_serializer=None, response_deserializer=response_type.FromString)
        watch = stream(body, timeout=20)
        metadata = await watch.initial_metadata()
        if metadata is not None and ("guard-watch", "open") in tuple(metadata):
            watch.cancel()
            await watches_ended()
            return grpc.StatusCode.OK, ""
        return await watch.code(), await watch.details() or ""
    try:
        unary = channel.unary_unary(path, request_serializer=None, response_deserializer=response_type.FromString)
        await unary(body, timeout=20)
    except grpc.aio.AioRpcError as exc:
        return exc.code(), exc.details() or ""
    return grpc.StatusCode.OK, ""


async def watches_ended(timeout_s: float = 10.0) -> None:
    """Wait until the server has ended every watch stream: one still reading after its client left would
    change the desk's consumer group under the next example's snapshots."""
    deadline = time.monotonic() + timeout_s
    while metrics.WATCHERS._value.get() > 0:
        assert time.monotonic() < deadline, "a watch stream outlived its client"
        await asyncio.sleep(0.01)


@pytest.fixture
async def channel(app):
    async with aio_channel(f"127.0.0.1:{app.port}", admin_key(app)) as ch:
        yield ch


def ts(seconds: int, nanos: int = 0) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)


def prefs_update(paths: list[str], **prefs: Any) -> pb.UpdatePreferencesRequest:
    return pb.UpdatePreferencesRequest(preferences=pb.Preferences(user_id="u1", **prefs), source="user", actor="self",
                                       update_mask=field_mask_pb2.FieldMask(paths=paths))


INT64_MAX = 2**63 - 1
PROBE_CASES: list[tuple[str, str, Any, str]] = [
    ("paused_until 10^12 s", "UpdatePreferences", prefs_update(["paused_until"], paused_until=ts(10**12)),
     "preferences.paused_until"),
    ("paused_until int64 max", "UpdatePreferences", prefs_update(["paused_until"], paused_until=ts(INT64_MAX)),
     "preferences.paused_until"),
    ("paused_until 50 years", "UpdatePreferences", prefs_update(["paused_until"], paused_until=ts(4_000_000_000)),
     "preferences.paused_until"),
    ("8 KB time zone", "UpdatePreferences",
     prefs_update(["quiet_hours"], quiet_hours=pb.QuietHours(time_zone="Z" * 8192, start="22:00", end="07:00")),
     "preferences.quiet_hours.time_zone"),
    ("full-width digits", "UpdatePreferences",
     prefs_update(["quiet_hours"], quiet_hours=pb.QuietHours(time_zone="Asia/Shanghai", start="２２:００", end="07:00")),
     "preferences.quiet_hours.start"),
    ("mask 'channels.'", "UpdatePreferences", prefs_update(["channels."], channels={"sms": False}), "update_mask"),
    ("too many mask paths", "UpdatePreferences", prefs_update(["channels.sms"] * 65), "update_mask"),
    ("token 0-0", "ListConsentEvents", pb.ListConsentEventsRequest(user_id="u1", page_token="0-0"), "page_token"),
    ("token past uint64", "ListConsentEvents",
     pb.ListConsentEventsRequest(user_id="u1", page_token="99999999999999999999-0"), "page_token"),
    ("token in Arabic-Indic digits", "ListConsentEvents",
     pb.ListConsentEventsRequest(user_id="u1", page_token="١٢٣-٤"), "page_token"),
    ("task token nan", "ListRecoveryTasks", pb.ListRecoveryTasksRequest(page_token="nan"), "page_token"),
    ("unknown task status", "ListRecoveryTasks", pb.ListRecoveryTasksRequest(status=7), "status"),  # type: ignore[arg-type]
    ("send_at nanos out of range", "CheckTouch",
     pb.CheckTouchRequest(user_id="u1", channel="push", category="content", touch_id="t", send_at=ts(1_800_000_000, 2 * 10**9)),
     "send_at"),
    ("received_at before 1970", "RecordReply",
     pb.RecordReplyRequest(user_id="u1", channel="sms", text="hi", reply_id="r", received_at=ts(-5)), "received_at"),
    ("empty reply text", "RecordReply", pb.RecordReplyRequest(user_id="u1", channel="sms", text="", reply_id="r"), "text"),
    ("blank reply text", "RecordReply", pb.RecordReplyRequest(user_id="u1", channel="sms", text="  \n", reply_id="r"),
     "text"),
    ("C1 control in an id", "CheckTouch",
     pb.CheckTouchRequest(user_id="u\x9b1", channel="push", category="content", touch_id="t"), "user_id"),
    ("zero-width space in an id", "GetPreferences", pb.GetPreferencesRequest(user_id="u\u200b1"), "user_id"),
    ("1 MB task id", "ClaimRecoveryTask", pb.ClaimRecoveryTaskRequest(task_id="t" * (1 << 20)), "task_id"),
    ("1 MB agent", "ResolveRecoveryTask",
     pb.ResolveRecoveryTaskRequest(task_id="t", agent="a" * (1 << 20), outcome=pb.RECOVERED), "agent"),
    ("1 MB consumer", "WatchRecoveryTasks", pb.WatchRecoveryTasksRequest(consumer="c" * (1 << 20)), "consumer"),
    ("2,001-character note", "ResolveRecoveryTask",
     pb.ResolveRecoveryTaskRequest(task_id="t", outcome=pb.RECOVERED, note="n" * 2001), "note"),
    ("corrupt bytes", "CheckTouch", b"\xff\xff\xff", "request"),
]


@pytest.mark.parametrize(("name", "method", "request_", "field"), PROBE_CASES, ids=[c[0] for c in PROBE_CASES])
async def test_the_probes_bad_inputs_are_invalid_argument_naming_the_field(app, channel, name, method, request_, field):
    """Each case the hostile probe found: INVALID_ARGUMENT, the field first, a short message, nothing stored changed."""
    before = await snapshot(app)
    code, details = await call(channel, method, request_)
    assert code == grpc.StatusCode.INVALID_ARGUMENT, (name, code, details[:200])
    assert details.startswith(field + ":"), (name, details[:200])
    assert len(details) < 400, name
    assert await snapshot(app) == before


async def test_fields_outside_the_mask_are_ignored_not_refused(app, channel):
    """AIP-134: only the masked path is read; a bad time zone elsewhere in the message does not matter."""
    request = prefs_update(["unsubscribed_all"], unsubscribed_all=True, max_marketing_per_week=-4,
                           quiet_hours=pb.QuietHours(time_zone="Mars/Base", start="99:99", end="x"),
                           channels={"fax": True}, paused_until=ts(INT64_MAX))
    assert (await call(channel, "UpdatePreferences", request))[0] == grpc.StatusCode.OK
    prefs = await app.preferences.get_preferences("u1")
    assert prefs.unsubscribed_all and prefs.quiet_hours is None and prefs.paused_until_ms == 0


async def test_a_reused_reply_id_with_other_words_is_refused(app, channel):
    """A retried reply_id is a replay only when it carries the same reply; 'STOP' under a used id changes nothing."""
    first = pb.RecordReplyRequest(user_id="u1", channel="sms", text="谢谢，收到了", reply_id="r1")
    assert (await call(channel, "RecordReply", first))[0] == grpc.StatusCode.OK
    assert (await call(channel, "RecordReply", first))[0] == grpc.StatusCode.OK  # the same reply again: a replay
    before = await snapshot(app)
    for changed in (dict(text="STOP"), dict(channel="email")):
        code, details = await call(channel, "RecordReply", pb.RecordReplyRequest(
            **{"user_id": "u1", "channel": "sms", "text": "谢谢，收到了", "reply_id": "r1", **changed}))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("reply_id:")
    assert await snapshot(app) == before
    assert (await app.preferences.get_preferences("u1")).channels == {}


async def test_a_message_over_the_limit_is_resource_exhausted(app, channel):
    """The server's message limit is set on purpose: a 5 MB request is refused before it is read."""
    big = pb.CheckTouchesRequest(checks=[pb.CheckTouchRequest(user_id="u" * 120, channel="push", category="content",
                                                              touch_id=f"{i:0120d}", campaign_id="c" * 120)
                                         for i in range(14_000)])
    assert big.ByteSize() > 4 << 20
    before = await snapshot(app)
    code, _ = await call(channel, "CheckTouches", big)
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert await snapshot(app) == before


# -- generated requests ------------------------------------------------------------------------

# Good values first, so most generated calls get past validation and reach the store and the model.
GOOD: dict[str, list[str]] = {
    "user_id": ["u1", "u2", "用户"], "channel": ["push", "sms", "email"], "category": ["promotion", "content"],
    "locale": ["", "en", "zh", "zh-CN"],
    "campaign_id": ["", "spring"], "touch_id": ["t1", "t2"], "in_reply_to_touch_id": ["", "t1"],
    "text": ["STOP", "退订", "别再发了，烦死了", "thanks!", "START"], "reply_id": ["r1", "r2", "r3"],
    "source": ["user", "support"], "actor": ["self", ""], "time_zone": ["Asia/Shanghai", "America/New_York"],
    "start": ["22:00", "07:00"], "end": ["07:00", "22:00"], "page_token": [""], "task_id": ["task-1"],
    "agent": ["amy", "bob"], "consumer": ["c1"], "note": ["", "called"],
    "paths": ["*", "channels", "channels.sms", "categories.promotion", "quiet_hours", "paused_until",
              "max_marketing_per_week", "unsubscribed_all"],
}
BAD: dict[str, list[str]] = {
    "user_id": ["", "a b", "x" * 129, "u\x9b", "{u}"], "channel": ["fax", ""], "category": ["spam", ""],
    "locale": ["fr", "zh_\x00", "-"],
    "campaign_id": ["a b"], "touch_id": ["", "t\n"], "in_reply_to_touch_id": ["no pe"], "text": ["", "x" * 2001],
    "reply_id": ["", "r 3"], "source": ["", "a b", "s" * 65], "actor": ["a\x00b"],
    "time_zone": ["Mars/Base", "", "../etc/passwd", "Z" * 100], "start": ["24:00", "２２:００", "7:00", ""],
    "end": ["x"], "page_token": ["0-0", "1-1", "nan", "١-١", "5:task-1", "99999999999999999999-0"],
    "task_id": ["", "t" * 200, "task-{x}"], "agent": ["", "a b"], "consumer": ["", "c 2"], "note": ["n" * 2001],
    "paths": ["channels.", "colour", "channels.fax"],
}
_INT_RANGES = {pbd.FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1), pbd.FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1)}
NOW_S = int(time.time())


def _string(name: str, hostile: bool) -> st.SearchStrategy[str]:
    good: st.SearchStrategy[str] = st.sampled_from(GOOD.get(name, [""]))
    if name in ("reply_id", "touch_id"):  # mostly fresh ids: a reused id with other content is refused by design
        good = st.one_of(good, st.integers(0, 10**9).map(lambda n: f"{name[0]}{n}"))
    if not hostile:
        return good
    return st.one_of(good, st.sampled_from(BAD.get(name, ["?"])), st.text(max_size=40))


def _value(field: pbd.FieldDescriptor, depth: int, hostile: bool) -> st.SearchStrategy[Any]:
    if field.type == pbd.FieldDescriptor.TYPE_STRING:
        return _string(field.name, hostile)
    if field.type == pbd.FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if field.type in _INT_RANGES:
        low, high = _INT_RANGES[field.type]
        return st.one_of(st.integers(0, 10), st.integers(-3, 1100), st.integers(low, high)) if hostile else st.integers(0, 10)
    if field.type == pbd.FieldDescriptor.TYPE_ENUM:
        return st.integers(-2, 12) if hostile else st.sampled_from([v.number for v in field.enum_type.values])
    if field.type == pbd.FieldDescriptor.TYPE_DOUBLE:
        return st.floats(allow_nan=True)
    return _message(field.message_type, depth + 1, hostile)


def message_strategy(desc: pbd.Descriptor) -> st.SearchStrategy[Any]:
    """Requests of this type: most well-formed (so they reach the store and the model), the rest hostile."""
    return st.one_of(_message(desc, 0, False), _message(desc, 0, True))


def _message(desc: pbd.Descriptor, depth: int, hostile: bool) -> st.SearchStrategy[Any]:
    cls: Callable[..., Any]
    if desc.full_name == "google.protobuf.Timestamp":
        seconds = st.integers(NOW_S - 600, NOW_S + 600)
        nanos = st.just(0)
        if hostile:
            seconds = st.one_of(seconds, st.integers(-(2**40), 2**40), st.sampled_from([0, -1, INT64_MAX, 10**12]))
            nanos = st.one_of(nanos, st.integers(-(2**31), 2**31 - 1))
        return st.builds(lambda s, n: timestamp_pb2.Timestamp(seconds=s, nanos=n), seconds, nanos)
    if desc.full_name == "google.protobuf.Duration":
        seconds = st.integers(1, 90 * 86_400)
        nanos = st.just(0)
        if hostile:
            seconds = st.one_of(seconds, st.integers(-(2**40), 2**40), st.sampled_from([0, -1, INT64_MAX, 367 * 86_400]))
            nanos = st.one_of(nanos, st.integers(-(2**31), 2**31 - 1))
        return st.builds(lambda s, n: duration_pb2.Duration(seconds=s, nanos=n), seconds, nanos)
    if desc.full_name == "google.protobuf.FieldMask":
        return st.builds(lambda p: field_mask_pb2.FieldMask(paths=p), st.lists(_string("paths", hostile), max_size=4))
    if depth > 3:
        return st.none()
    cls = getattr(pb, desc.name)
    parts: dict[str, st.SearchStrategy[Any]] = {}
    for field in desc.fields:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            names = ["sms", "push", "email"] if field.name in ("channels", "channel_scopes") else ["promotion", "survey"]
            key = st.sampled_from(names + (["fax", "spam", ""] if hostile else []))
            values: st.SearchStrategy[Any] = st.booleans()
            if field.name == "channel_scopes":  # how far a closing reaches: what the policy offers, and what it does not
                values = st.sampled_from(["marketing", "all"] + (["", "some", "x" * 100] if hostile else []))
            parts[field.name] = st.dictionaries(key, values, max_size=3)
        elif field.is_repeated:
            parts[field.name] = st.lists(_value(field, depth, hostile), max_size=4)
        elif hostile or (field.message_type is not None and field.message_type.name in ("Timestamp", "QuietHours")):
            parts[field.name] = st.one_of(st.none(), _value(field, depth, hostile))
        elif field.has_presence and field.message_type is None:  # proto3 optional (expected_version): mostly unset
            parts[field.name] = st.one_of(st.none(), st.none(), _value(field, depth, hostile))
        else:
            parts[field.name] = _value(field, depth, hostile)

    def make(values: dict[str, Any]) -> Any:
        msg = cls()
        for name, value in values.items():
            if value is None:
                continue
            target = getattr(msg, name)
            if isinstance(value, dict):
                target.update(value)
            elif isinstance(value, list):
                if value and hasattr(value[0], "SerializeToString"):
                    target.extend(value)
                else:
                    target.extend(value)
            elif hasattr(value, "SerializeToString"):
                target.CopyFrom(value)
            else:
                setattr(msg, name, value)
        return msg

    return st.fixed_dictionaries(parts).map(make)


@pytest.mark.parametrize("method", sorted(METHODS))
@FUZZ
@given(data=st.data())
async def test_generated_requests_never_crash_or_change_state_on_error(app, channel, method, data):
    """Any request a client could build: a documented status, and on error the store as it was."""
    await app.replies.desk.store.create_task("task-1", NOW_S * 1000, "r0", {  # a task the generated ids can name
        "task_id": "task-1", "user_id": "u1", "channel": "sms", "priority": "P3", "created_at": str(NOW_S * 1000),
        "due_at": str(NOW_S * 1000), "replies": "[]"})
    request = data.draw(message_strategy(METHODS[method][1].input_type), label="request")
    before = await snapshot(app)
    code, details = await call(channel, method, request)
    event(code.name + (" " + details.split(":")[0] if code == grpc.StatusCode.INVALID_ARGUMENT else ""))
    assert code in DOCUMENTED_FOR.get(method, DOCUMENTED), (code, details[:300])
    if code != grpc.StatusCode.OK:
        assert len(details) < 600
        assert await snapshot(app) == before


@pytest.mark.parametrize("method", sorted(METHODS))
@FUZZ
@given(body=st.binary(max_size=300))
async def test_raw_bytes_never_crash_or_change_state_on_error(app, channel, method, body):
    """Whatever bytes arrive as a request body: a documented status (corrupt bytes name ``request``)."""
    before = await snapshot(app)
    code, details = await call(channel, method, body)
    event(code.name)
    assert code in DOCUMENTED_FOR.get(method, DOCUMENTED), (code, details[:300])
    if code != grpc.StatusCode.OK:
        assert await snapshot(app) == before
