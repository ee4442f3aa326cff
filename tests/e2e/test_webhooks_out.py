"""guard tells the world: a negative reply's ``task.opened`` reaches an endpoint started by the test, verified with
the ``standardwebhooks`` library as a receiver would; a receiver that is down gets the event after it comes back,
once per id; a rotated secret signs beside the new one; a private address is refused unless allowed."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from tests.helpers import guard_cli, negative_task


class Receiver:
    """An endpoint of the test's own: records what it got; ``down`` makes it answer 503."""

    def __init__(self) -> None:
        self.got: list[tuple[dict[str, str], bytes]] = []
        self.down = False
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                if receiver.down:
                    self.send_response(503)
                else:
                    receiver.got.append(({k.lower(): v for k, v in self.headers.items()}, body))
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
