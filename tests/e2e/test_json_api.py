"""guard's API over HTTP/JSON (``POST /v1/<Method>``) on the app wired as ``guard serve`` wires it: curl can call it,
every unary method answers as its gRPC twin does, and bad JSON is a 400 naming the field."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf import json_format
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator, ValidationError

from guard.transport.json_api import HTTP_BY_STATUS, SERVICES
from guard.v1 import guard_pb2 as pb
from guard.v1 import guard_pb2_grpc as pb_grpc
from tests.helpers import admin_key, aio_channel, new_key

UNARY = [(service, m) for service in SERVICES for m in pb.DESCRIPTOR.services_by_name[service].methods
         if not m.client_streaming and not m.server_streaming]


async def _curl(app: Any, method: str, body: dict[str, Any], key: str) -> tuple[int, dict[str, Any]]:
    proc = await asyncio.create_subprocess_exec(
        "curl", "-s", "-X", "POST", "-H", f"Authorization: Bearer {key}", "-H", "Content-Type: application/json",
        "-d", json.dumps(body), "-w", "\n%{http_code}", f"{app.web.public_url}/v1/{method}",
        stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    text, _, status = out.decode().rpartition("\n")
    return int(status), json.loads(text)


async def test_curl_checks_a_touch_changes_preferences_and_lists_tasks(app):
    key = admin_key(app)
    status, answer = await _curl(app, "CheckTouch", {"user_id": "u1", "channel": "push", "category": "promotion",
                                                     "touch_id": "t1"}, key)
    assert status == 200 and answer["decision"] == "ALLOW" and answer["recorded"] is True
    status, answer = await _curl(app, "UpdatePreferences", {
        "preferences": {"user_id": "u1", "channels": {"push": False}}, "update_mask": "channels.push",
        "source": "user", "actor": "u1"}, key)
    assert status == 200 and answer["channels"] == {"push": False}
    status, answer = await _curl(app, "CheckTouch", {"user_id": "u1", "channel": "push", "category": "promotion",
                                                     "touch_id": "t2"}, key)
    assert status == 200 and answer["decision"] == "BLOCK" and answer["reasons"] == ["CHANNEL_OPTED_OUT"]
    status, answer = await _curl(app, "ListRecoveryTasks", {}, key)
    assert status == 200 and answer.get("tasks", []) == []


async def test_bad_json_keys_and_roles_are_refused_the_grpc_way(app):
    url = f"{app.web.public_url}/v1"
    sender, _ = await new_key(app, pb.SENDER, "campaign engine")
    async with httpx.AsyncClient() as http:
        auth = {"authorization": f"Bearer {admin_key(app)}"}
        wrong_type = await http.post(f"{url}/CheckTouch", json={"user_id": 5}, headers=auth)
        unknown = await http.post(f"{url}/CheckTouch", json={"user": "u1"}, headers=auth)
        not_json = await http.post(f"{url}/CheckTouch", content=b"{", headers=auth)
        invalid = await http.post(f"{url}/CheckTouch", json={"user_id": "u1", "channel": "fax", "category": "promotion",
                                                              "touch_id": "t"}, headers=auth)
        no_key = await http.post(f"{url}/CheckTouch", json={})
        wrong_role = await http.post(f"{url}/ListRecoveryTasks", json={}, headers={"authorization": f"Bearer {sender}"})
        nowhere = await http.post(f"{url}/NoSuchMethod", json={}, headers=auth)
    assert [r.status_code for r in (wrong_type, unknown, not_json, invalid, no_key, wrong_role, nowhere)] == [
        400, 400, 400, 400, 401, 403, 404]
    assert wrong_type.json()["message"].startswith("user_id: ") and unknown.json()["message"].startswith("user: ")
    assert invalid.json() == {"code": 3, "status": "INVALID_ARGUMENT", "details": [],
                              "message": invalid.json()["message"]} and invalid.json()["message"].startswith("channel: ")


_values = st.one_of(st.sampled_from(["", "u1", "push", "promotion", "t1", "sms", "x" * 300, "ü\u200b"]),
                    st.integers(-3, 3), st.booleans())


@st.composite
def requests(draw: Any) -> tuple[str, str, dict[str, Any]]:
    """A method, and a JSON body of top-level scalar fields drawn from values valid and not."""
    service, method = draw(st.sampled_from(UNARY))
    fields = [f for f in method.input_type.fields if f.type != f.TYPE_MESSAGE and not f.is_repeated]
    body: dict[str, Any] = {}
    for f in draw(st.lists(st.sampled_from(fields), unique=True, max_size=4)) if fields else []:
        value = draw(_values)
        if f.type == f.TYPE_STRING:
            body[f.name] = str(value)
        elif f.type == f.TYPE_BOOL:
            body[f.name] = bool(value)
        elif f.type == f.TYPE_ENUM:
            body[f.name] = value if isinstance(value, int) and not isinstance(value, bool) else 0
        elif f.type in (f.TYPE_INT32, f.TYPE_INT64, f.TYPE_UINT32, f.TYPE_DOUBLE, f.TYPE_FLOAT):
            body[f.name] = value if isinstance(value, int) and not isinstance(value, bool) else 1
    return service, method.name, body


@settings(max_examples=80, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(call=requests())
async def test_every_method_answers_as_its_grpc_twin(app, call):
    """The same request both ways: the same error (the status mapped to HTTP, the same message), or success both
    ways (a second success may differ from the first, as a replay does)."""
    service, method, body = call
    message = getattr(pb, pb.DESCRIPTOR.services_by_name[service].methods_by_name[method].input_type.name)()
    json_format.ParseDict(body, message)
    async with aio_channel(f"127.0.0.1:{app.port}", admin_key(app)) as channel:
        stub = getattr(pb_grpc, f"{service}Stub")(channel)
        try:
            await getattr(stub, method)(message, timeout=20)
            grpc_answer: tuple[int, str] = (200, "")
        except grpc.aio.AioRpcError as exc:
            grpc_answer = (HTTP_BY_STATUS[exc.code()], exc.details() or "")
    async with httpx.AsyncClient(timeout=20) as http:
        answer = await http.post(f"{app.web.public_url}/v1/{method}", json=body,
                                 headers={"authorization": f"Bearer {admin_key(app)}"})
    assert (answer.status_code, "" if answer.status_code == 200 else answer.json()["message"]) == grpc_answer, \
        (method, body)


async def test_real_answers_match_the_openapi_document_made_from_the_proto(app):
    """Every answer (and an error) validates against ``/v1/openapi.json``, which names every unary method; its
    schemas refuse a property the .proto does not have, so an answer and the document cannot disagree unseen."""
    key = admin_key(app)
    async with httpx.AsyncClient(timeout=30) as http:
        spec = (await http.get(f"{app.web.public_url}/v1/openapi.json")).json()
        assert spec["openapi"] == "3.1.0"
        assert set(spec["paths"]) == {f"/v1/{m.name}" for _, m in UNARY}

        async def call(method: str, body: dict[str, Any]) -> tuple[int, Any]:
            answer = await http.post(f"{app.web.public_url}/v1/{method}", json=body,
                                     headers={"authorization": f"Bearer {key}"})
            return answer.status_code, answer.json()

        checked: list[tuple[str, dict[str, Any]]] = [
            ("CheckTouch", {"user_id": "v1", "channel": "sms", "category": "promotion", "touch_id": "t1"}),
            ("UpdatePreferences", {"preferences": {"user_id": "v1", "channels": {"email": False},
                                                   "grid": {"push.promotion": False}},
                                   "update_mask": "channels.email,grid.push.promotion", "source": "user", "actor": "v1"}),
            ("RecordReply", {"user_id": "v1", "channel": "sms", "text": "别再发了，烦死了", "reply_id": "r1"}),
            ("RecordEngagement", {"touch_id": "t1", "user_id": "v1", "event": "OPENED"}),
            ("GetUserState", {"user_id": "v1"}),
            ("ListConsentEvents", {"user_id": "v1"}),
            ("ListRecoveryTasks", {}),
            ("GetExperienceHealth", {"window": "24h"}),
            ("CheckTouch", {"user_id": "v1", "channel": "fax"}),  # an error: the Error schema
        ]
        for method, body in checked:
            status, answer = await call(method, body)
            name = spec["paths"][f"/v1/{method}"]["post"]["responses"]["200" if status == 200 else "default"]
            schema = {**name["content"]["application/json"]["schema"], "components": spec["components"]}
            Draft202012Validator(schema).validate(answer)
    tasks = (await _curl(app, "ListRecoveryTasks", {}, key))[1]["tasks"]
    assert tasks and tasks[0]["user_id"] == "v1"  # the task's schema was exercised above
    broken = {**spec["components"]["schemas"]["CheckTouchResponse"], "components": spec["components"]}
    with pytest.raises(ValidationError):  # a field the .proto lacks is caught
        Draft202012Validator(broken).validate({"decision": "ALLOW", "verdict": "ALLOW"})
