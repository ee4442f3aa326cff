"""guard tells the world: a negative reply's ``task.opened`` reaches an endpoint started by the test, verified with
the ``standardwebhooks`` library as a receiver would; a receiver that is down gets the event after it comes back,
once per id; a rotated secret signs beside the new one; a private address is refused unless allowed."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from standardwebhooks.webhooks import Webhook

from guard.store.brakes import Brake, BrakeStore
from tests.helpers import guard_cli, negative_task


class Receiver:
    """An endpoint of the test's own: records what it got; ``down`` makes it answer 503."""

    def __init__(self) -> None:
        self.got: list[tuple[dict[str, str], bytes]] = []
        self.paths: list[str] = []
        self.down = False
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                if receiver.down:
                    self.send_response(503)
                else:
                    receiver.got.append(({k.lower(): v for k, v in self.headers.items()}, body))
                    receiver.paths.append(self.path)
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/guard-events"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()


async def test_a_task_opened_reaches_the_endpoint_signed_and_survives_it_being_down(app_factory, receiver):
    app = await app_factory(webhooks_allow_private=True, webhook_seconds=3600)  # the test drives the deliveries
    code, out, err = await guard_cli(app, "webhooks", "add", receiver.url, "--events", "task.opened", "task.resolved")
    assert code == 0, err
    added = json.loads(out)
    secret, endpoint_id = added["secret"], added["endpoint"]["endpoint_id"]
    assert secret.startswith("whsec_")
    service = app.outbound.of("default")

    receiver.down = True
    task_id = await negative_task(app, "u1", "r1")
    assert await service.deliver() == 0  # down: nothing delivered, retried later
    ((_, state),) = await service.list()
    assert state.attempts == 1 and state.next_ms > app.service.now() and "503" in state.last_error
    receiver.down = False
    assert await service.deliver() == 0  # not yet due
    assert await service.deliver(now_ms=state.next_ms) == 1  # back up: it arrives
    assert await service.deliver(now_ms=state.next_ms + 10_000_000) == 0  # once
    (headers, body), = receiver.got
    verified = Webhook(secret).verify(body, headers)  # as a receiver would, with the library
    assert verified["type"] == "task.opened" and verified["data"]["task_id"] == task_id
    assert verified["data"]["user_id"] == "u1" and "text" not in json.dumps(verified)  # no reply text
    assert headers["webhook-id"] == verified["id"] and verified["id"].startswith("msg_default_")

    code, out, err = await guard_cli(app, "webhooks", "rotate-secret", endpoint_id)
    assert code == 0, err
    new_secret = json.loads(out)["secret"]
    await app.desk.resolve(task_id, "agent", "k", "RECOVERED", "called back", lift_hold=False)
    assert await service.deliver(now_ms=app.service.now()) == 1
    headers, body = receiver.got[-1]
    for s in (secret, new_secret):  # both sign while the rotation overlaps
        assert Webhook(s).verify(body, headers)["type"] == "task.resolved"
    code, out, _ = await guard_cli(app, "webhooks", "test", endpoint_id)
    assert json.loads(out)["status"] == 204
    code, out, _ = await guard_cli(app, "webhooks", "list")
    (listed,) = json.loads(out)["endpoints"]
    assert int(listed["delivered"]) == 2 and listed["events"] == ["task.opened", "task.resolved"]


async def test_a_private_address_is_refused_unless_allowed(app):
    code, _, err = await guard_cli(app, "webhooks", "add", "http://127.0.0.1:9/x", "--events", "task.opened")
    assert code != 0 and "url: https only" in err
    code, _, err = await guard_cli(app, "webhooks", "add", "https://127.0.0.1:9/x", "--events", "task.opened")
    assert code == 0, err  # an https URL is taken; its delivery is refused when it resolves to a private address
    status, error = await app.outbound.sender.post("https://127.0.0.1:9/x", b"{}", {})
    assert status == 0 and "private address" in error
    code, _, err = await guard_cli(app, "webhooks", "add", "https://example.com/x", "--events", "user.tickled")
    assert code != 0 and "events: " in err


async def test_a_tripped_brake_reaches_a_wecom_robot_in_chinese_and_a_signed_dingtalk_robot(app_factory, receiver):
    app = await app_factory(webhooks_allow_private=True, webhook_seconds=3600)
    code, _, err = await guard_cli(app, "webhooks", "add", receiver.url + "/wecom", "--format", "wecom_robot",
                                   "--language", "zh", "--events", "brake.tripped", "task.opened")
    assert code == 0, err
    code, _, err = await guard_cli(app, "webhooks", "add", receiver.url + "/ding?access_token=t", "--format", "dingtalk",
                                   "--robot-secret", "SECabc", "--events", "brake.tripped")
    assert code == 0, err
    code, _, err = await guard_cli(app, "webhooks", "add", receiver.url + "/slack", "--format", "slack",
                                   "--events", "task.resolved")
    assert code != 0 and "events: " in err  # a robot is told of P1 tasks and brakes only
    await negative_task(app, "u2", "r2", text="别再发了，烦死了")  # a P2 task: no robot hears of it
    p1 = await negative_task(app, "u3", "r3")  # "投诉" (a complaint to the authorities) makes it P1
    brake = Brake("complaints_or_opt_outs", app.service.now(), 0, False, "complaint_rate", 0.012)
    assert await BrakeStore(app.store.conn, "default").trip("c:spring", brake, app.service.now())
    assert await app.outbound.of("default").deliver() == 3  # the P1 task and the brake to WeCom, the brake to DingTalk
    got = [(path, json.loads(body)) for path, (_, body) in zip(receiver.paths, receiver.got, strict=True)]
    task, wecom = (m for path, m in got if path == "/guard-events/wecom")
    assert task["markdown"]["content"].startswith(f"**P1 服务修复任务 {p1}**") and "> 用户: u3" in task["markdown"]["content"]
    by_path = dict(got)
    assert wecom["msgtype"] == "markdown" and wecom["markdown"]["content"].startswith("**活动已被疲劳刹车暂停**")
    assert "> 活动: spring" in wecom["markdown"]["content"] and "complaint_rate" in wecom["markdown"]["content"]
    (ding_path,) = [p for p in by_path if p.startswith("/guard-events/ding")]
    query = parse_qs(urlsplit(ding_path).query)
    stamp, sign = query["timestamp"][0], query["sign"][0]
    expected = base64.b64encode(hmac.new(b"SECabc", f"{stamp}\nSECabc".encode(), hashlib.sha256).digest()).decode()
    assert sign == expected and query["access_token"] == ["t"]  # as DingTalk's docs verify it
    assert by_path[ding_path]["markdown"]["title"] == "Campaign braked for fatigue"


async def test_a_delivery_given_up_on_is_kept_and_replayed_with_its_id(app_factory, receiver):
    app = await app_factory(webhooks_allow_private=True, webhook_seconds=3600)
    code, out, err = await guard_cli(app, "webhooks", "add", receiver.url, "--events", "task.opened")
    assert code == 0, err
    endpoint_id = json.loads(out)["endpoint"]["endpoint_id"]
    service = app.outbound.of("default")
    receiver.down = True
    await negative_task(app, "u4", "r4")
    now = app.service.now()
    assert await service.deliver(now_ms=now) == 0
    assert await service.deliver(now_ms=now + 25 * 3_600_000) == 0  # a day of failures: given up, kept, moved on
    ((_, state),) = await service.list()
    assert state.failed == 1 and state.attempts == 0 and not state.disabled_ms
    receiver.down = False
    code, out, err = await guard_cli(app, "webhooks", "replay", endpoint_id)
    assert code == 0 and json.loads(out) == {"delivered": 1, "failing": 0, "gone": 0}, err
    (headers, body), = receiver.got
    assert json.loads(body)["type"] == "task.opened" and headers["webhook-id"] == json.loads(body)["id"]
    code, out, _ = await guard_cli(app, "webhooks", "replay", endpoint_id)
    assert json.loads(out) == {"delivered": 0, "failing": 0, "gone": 0}  # nothing left to replay
