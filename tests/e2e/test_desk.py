"""The recovery desk in a real browser (Debian's Chromium), against a real ``guard serve``."""

from __future__ import annotations

import signal
import time

import httpx
import pytest

from guard.v1 import guard_pb2 as pb
from guard.v1 import guard_pb2_grpc as pb_grpc
from tests.e2e.browser import browser, serve_for_pages, shot  # noqa: F401  (a fixture)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    proc = serve_for_pages(tmp_path_factory, "desk")
    yield proc
    proc.kill()


def _key(server, name: str, role: str = "support") -> str:
    out = server.cli("keys", "create", "--role", role, "--name", name)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1]


def _stubs(server):
    channel = server.channel()
    return channel, pb_grpc.EngagementGuardStub(channel), pb_grpc.RecoveryDeskStub(channel)


def _touch(stub, user: str, touch_id: str, campaign: str = "spring") -> pb.CheckTouchResponse:
    return stub.CheckTouch(pb.CheckTouchRequest(user_id=user, channel="push", category="promotion", campaign_id=campaign,
                                                touch_id=touch_id), timeout=10)


def _negative(stub, user: str, reply_id: str, campaign: str = "spring") -> str:
    answer = stub.RecordReply(pb.RecordReplyRequest(user_id=user, channel="sms", text="别再发了，烦死了，再发就投诉",
                                                    reply_id=reply_id, campaign_id=campaign), timeout=20)
    assert answer.action == pb.HOLD and answer.task_id, answer
    return answer.task_id


def _sign_in(browser, server, key: str, lang: str = "en"):  # noqa: F811
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    page = context.new_page()
    page.goto(f"{server.http}/desk?lang={lang}")
    assert page.url.split("?")[0].endswith("/desk/login")  # not signed in: to the sign-in page
    page.fill("#key", key)
    page.click("#signin-button")
    page.wait_for_selector("#queue")
    return context, page


def test_an_agent_sees_a_task_arrive_live_claims_it_resolves_it_and_marketing_flows_again(server, browser):  # noqa: F811
    key = _key(server, "alice")
    context, page = _sign_in(browser, server, key)
    cookie = next(c for c in context.cookies() if c["name"] == "guard_desk")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["expires"] > time.time()
    assert key not in cookie["value"]
    assert page.locator("#agent").inner_text() == "alice"
    shot(page, "desk-queue-empty-en")
    page.evaluate("window.notReloaded = true")

    channel, stub, desk = _stubs(server)
    assert _touch(stub, "u1", "m0").decision == pb.ALLOW
    task_id = _negative(stub, "u1", "r1")
    page.wait_for_selector(f"#task-{task_id}", timeout=15_000)  # arrived by server-sent event
    assert page.evaluate("window.notReloaded === true")
    row = page.locator(f"#task-{task_id}").inner_text()
    assert "u1" in row and "left" in row
    shot(page, "desk-queue-live-en")

    held = _touch(stub, "u1", "m1", campaign="summer")
    assert held.decision == pb.BLOCK and list(held.reasons) == [pb.NEGATIVE_SENTIMENT]
    page.click(f"#task-{task_id} a")
    page.wait_for_selector("#claim-button")
    assert "别再发了" in page.locator("#replies").inner_text()
    assert "spring" in page.locator("#touches").inner_text()
    assert "Marketing held until" in page.locator("#hold").inner_text()
    shot(page, "desk-task-open-en")
    page.click("#claim-button")
    page.wait_for_selector("#resolve-button")
    assert page.locator("#status").get_attribute("data-status") == "CLAIMED"
    assert page.locator("#status").inner_text() == "Claimed" and page.locator("#assignee").inner_text() == "alice"
    page.select_option("#outcome", "RECOVERED")
    page.fill("#note", "called, apologised, fewer messages")
    page.check("#lift-hold")
    shot(page, "desk-task-claimed-en")
    page.click("#resolve-button")
    page.wait_for_selector("#resolved")
    assert page.locator("#status").get_attribute("data-status") == "RESOLVED"

    assert _touch(stub, "u1", "m2", campaign="summer").decision == pb.ALLOW  # the hold is lifted: marketing flows again
    resolved = desk.ListRecoveryTasks(pb.ListRecoveryTasksRequest(status=pb.RESOLVED), timeout=10).tasks
    mine = next(t for t in resolved if t.task_id == task_id)
    assert mine.assignee == "alice" and mine.note == "called, apologised, fewer messages" and mine.outcome == pb.RECOVERED

    page.goto(f"{server.http}/desk/tasks/{task_id}?lang=zh")
    assert page.locator("h1").inner_text().startswith("任务") and "此任务已结案" in page.locator("#resolved").inner_text()
    shot(page, "desk-task-resolved-zh")
    page.click("a[hreflang=en]")
    assert "This task is resolved" in page.locator("#resolved").inner_text()
    page.goto(f"{server.http}/desk?lang=zh")
    assert page.locator("h1").inner_text() == "任务队列"
    shot(page, "desk-queue-zh")
    channel.close()
    context.close()


def test_a_task_claimed_by_another_agent_meanwhile_says_so_plainly(server, browser):  # noqa: F811
    context, page = _sign_in(browser, server, _key(server, "amy"))
    channel, stub, _ = _stubs(server)
    task_id = _negative(stub, "u2", "r2")
    page.goto(f"{server.http}/desk/tasks/{task_id}?lang=en")
    page.wait_for_selector("#claim-button")
    with server.channel(_key(server, "bob")) as bob:  # another agent: another key
        pb_grpc.RecoveryDeskStub(bob).ClaimRecoveryTask(pb.ClaimRecoveryTaskRequest(task_id=task_id), timeout=10)
    page.click("#claim-button")
    page.wait_for_selector("#notice")
    assert "claimed by bob" in page.locator("#notice").inner_text()
    assert "bob" in page.locator("#claimed-by").inner_text() and page.locator("#resolve-button").count() == 0
    shot(page, "desk-task-claimed-by-another-en")
    page.goto(f"{server.http}/desk?filter=mine&lang=en")
    assert page.locator(f"#task-{task_id}").count() == 0  # bob's, not amy's
    page.goto(f"{server.http}/desk?filter=all&lang=en")
    assert "bob" in page.locator(f"#task-{task_id}").inner_text()
    channel.close()
    context.close()


def test_line_breaks_in_a_reply_arrive_as_one_live_row_in_the_browser(server, browser):  # noqa: F811
    """A reply holding CR, LF and CRLF (the probe's forged ``event:``/``data:``/``id:`` lines) reaches the live
    queue as one row with its words as text: no forged row, no broken one."""
    context, page = _sign_in(browser, server, _key(server, "fay"))
    rows_before = page.locator("#queue-body tr[id^=task-]").count()
    channel, stub, _ = _stubs(server)
    text = '烦死了\r\revent: task\rdata: <tr id="task-forged"><td>x</td></tr>\rid: 7\r\n\n投诉'
    answer = stub.RecordReply(pb.RecordReplyRequest(user_id="u-sse", channel="sms", text=text, reply_id="r-sse"),
                              timeout=20)
    assert answer.task_id
    page.wait_for_selector(f"#task-{answer.task_id}", timeout=15_000)
    assert page.locator("#task-forged").count() == 0
    assert page.locator("#queue-body tr[id^=task-]").count() == rows_before + 1
    assert "event: task" in page.locator(f"#task-{answer.task_id}").inner_text()  # shown as the words they are
    shot(page, "desk-queue-line-breaks-en")
    channel.close()
    context.close()


def test_sign_in_needs_a_support_key_forms_need_their_token_and_revoking_signs_out(server, browser):  # noqa: F811
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{server.http}/desk/login?lang=en")
    page.fill("#key", _key(server, "mailer", "sender"))
    page.click("#signin-button")
    assert "no support role" in page.locator("#notice").inner_text()
    assert not [c for c in context.cookies() if c["name"] == "guard_desk"]
    shot(page, "desk-sign-in-refused-en")
    context.close()

    key = _key(server, "carol")
    context, page = _sign_in(browser, server, key)
    cookie = next(c for c in context.cookies() if c["name"] == "guard_desk")
    channel, stub, _ = _stubs(server)
    task_id = _negative(stub, "u3", "r3")
    forged = httpx.post(f"{server.http}/desk/tasks/{task_id}/claim", cookies={"guard_desk": cookie["value"]},
                        data={"csrf": "not-the-token"}, follow_redirects=False)
    assert forged.status_code == 403
    with server.channel() as admin:
        task = pb_grpc.RecoveryDeskStub(admin).ListRecoveryTasks(pb.ListRecoveryTasksRequest(status=pb.OPEN), timeout=10)
        assert task_id in [t.task_id for t in task.tasks]  # the forged form claimed nothing

    key_id = next(k["key_id"] for k in __import__("json").loads(server.cli("keys", "list").stdout)["keys"]
                  if k["name"] == "carol")
    with httpx.Client(timeout=30) as live, live.stream(
            "GET", f"{server.http}/desk/events", cookies={"guard_desk": cookie["value"]}) as stream:
        assert stream.status_code == 200
        assert server.cli("keys", "revoke", key_id).returncode == 0
        started = time.monotonic()
        assert list(stream.iter_lines())[:1] == ["retry: 3000"]  # the open live stream ends with the session
        assert time.monotonic() - started < 15
    deadline = time.monotonic() + 10
    while True:
        answer = httpx.get(f"{server.http}/desk", cookies={"guard_desk": cookie["value"]}, follow_redirects=False)
        if answer.status_code == 303:
            break
        assert time.monotonic() < deadline, "a revoked key's session still works"
        time.sleep(0.5)
    assert answer.headers["location"] == "/desk/login"
    channel.close()
    context.close()


def test_campaign_health_ranks_campaigns_with_a_seven_day_chart_in_both_languages(server, browser):  # noqa: F811
    channel, stub, _ = _stubs(server)
    for i in range(4):
        _touch(stub, f"h{i}", f"h{i}-1", campaign="autumn")
    _negative(stub, "h0", "hr0", campaign="autumn")
    context, page = _sign_in(browser, server, _key(server, "dora"))
    deadline = time.monotonic() + 15
    while True:  # figures are flushed to Redis about once a second
        page.goto(f"{server.http}/desk/health?lang=en")
        if "autumn" in (page.locator("#campaigns").inner_text() if page.locator("#campaigns").count() else ""):
            break
        assert time.monotonic() < deadline, "the campaign never showed"
        time.sleep(0.5)
    assert page.locator("#campaigns svg polyline").count() >= 1
    points = page.locator("#campaigns polyline").first.get_attribute("points")
    assert points is not None and len(points.split()) == 7
    shot(page, "desk-health-en")
    page.click("a[hreflang=zh]")
    assert page.locator("h1").inner_text() == "活动健康度"
    shot(page, "desk-health-zh")
    channel.close()
    context.close()


def test_sigterm_ends_live_streams_and_drains_both_servers(server, browser):  # noqa: F811
    context, _page = _sign_in(browser, server, _key(server, "erin"))
    cookie = next(c for c in context.cookies() if c["name"] == "guard_desk")
    lines: list[str] = []
    with httpx.Client(timeout=30) as client, client.stream(
            "GET", f"{server.http}/desk/events", cookies={"guard_desk": cookie["value"]}) as stream:
        assert stream.status_code == 200 and stream.headers["content-type"].startswith("text/event-stream")
        started = time.monotonic()
        assert server.proc is not None
        server.proc.send_signal(signal.SIGTERM)
        for line in stream.iter_lines():  # ends when the server ends the stream, not at the client's timeout
            lines.append(line)
        ended = time.monotonic() - started
    assert lines[:1] == ["retry: 3000"] and ended < 10
    assert server.proc.wait(timeout=30) == 0
    server.proc = None
    context.close()
