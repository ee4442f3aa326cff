"""The preference center in a real browser (Debian's Chromium), against a real ``guard serve``."""

from __future__ import annotations

import json
import time

import grpc
import httpx
import pytest

from guard.v1 import guard_pb2 as pb
from guard.v1 import guard_pb2_grpc as pb_grpc
from tests.e2e.browser import browser, serve_for_pages, shot  # noqa: F401  (a fixture)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    proc = serve_for_pages(tmp_path_factory, "prefs")
    yield proc
    assert proc.stop() == 0


def _link(server, user: str, locale: str = "") -> pb.PreferenceLink:
    with server.channel() as channel:
        return pb_grpc.EngagementGuardStub(channel).CreatePreferenceLink(
            pb.CreatePreferenceLinkRequest(user_id=user, locale=locale), timeout=10)


def _check(server, user: str, channel: str, category: str = "promotion") -> pb.CheckTouchResponse:
    with server.channel() as ch:
        return pb_grpc.EngagementGuardStub(ch).CheckTouch(pb.CheckTouchRequest(
            user_id=user, channel=channel, category=category, dry_run=True), timeout=10)


def _prefs(server, user: str) -> pb.Preferences:
    with server.channel() as ch:
        return pb_grpc.EngagementGuardStub(ch).GetPreferences(pb.GetPreferencesRequest(user_id=user), timeout=10)


def _ledger(server, user: str) -> list[pb.ConsentEvent]:
    with server.channel() as ch:
        return list(pb_grpc.EngagementGuardStub(ch).ListConsentEvents(
            pb.ListConsentEventsRequest(user_id=user), timeout=10).events)


def _local(url: str, server) -> str:
    """The link as the CLI printed it, pointed at this test's listener."""
    assert url.startswith(server.http + "/"), url
    return url


def test_a_user_closes_sms_sets_quiet_hours_and_the_next_sms_promotion_is_blocked(server, browser):  # noqa: F811
    link = _link(server, "u1", "zh")
    assert link.list_unsubscribe_post == "List-Unsubscribe=One-Click"
    assert _check(server, "u1", "sms").decision == pb.ALLOW
    page = browser.new_page(viewport={"width": 1000, "height": 900})
    response = page.goto(_local(link.url, server))
    assert response.status == 200
    headers = response.headers
    assert "script-src 'self'" in headers["content-security-policy"] and "unsafe-inline" not in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY" and headers["referrer-policy"] == "no-referrer"
    assert page.locator("h1").inner_text() == "消息偏好设置"
    assert page.get_by_label("短信", exact=True).is_checked()
    assert page.get_by_label("促销优惠", exact=True).is_checked()
    shot(page, "preferences-zh")

    page.get_by_label("短信", exact=True).uncheck()
    page.get_by_label("在此时段内不接收营销消息", exact=True).check()
    page.fill("#quiet-start", "22:00")
    page.fill("#quiet-end", "07:30")
    page.select_option("#quiet-tz", "Asia/Shanghai")
    page.click("#save")
    page.wait_for_selector("#notice")
    assert page.locator("#notice").inner_text() == "您的设置已保存。"
    assert not page.get_by_label("短信", exact=True).is_checked()
    shot(page, "preferences-zh-saved")

    blocked = _check(server, "u1", "sms")
    assert blocked.decision == pb.BLOCK and pb.CHANNEL_OPTED_OUT in blocked.reasons
    assert _check(server, "u1", "push").decision in (pb.ALLOW, pb.DEFER)  # only what the user closed is closed
    prefs = _prefs(server, "u1")
    assert dict(prefs.channels) == {"sms": False}
    assert (prefs.quiet_hours.time_zone, prefs.quiet_hours.start, prefs.quiet_hours.end) == ("Asia/Shanghai", "22:00", "07:30")
    events = _ledger(server, "u1")
    assert {(e.field, e.source, e.actor) for e in events} == {
        ("channels.sms", "preference_center", "self"), ("channel_scopes.sms", "preference_center", "self"),
        ("quiet_hours", "preference_center", "self")}
    assert dict(prefs.channel_scopes) == {"sms": "marketing"}  # unticked: marketing by SMS stops, receipts still come
    # The evidence of how it was said: the page, the version of its words, the language, the address truncated (the
    # shipped privacy.ip), the browser's family; the words themselves are in the user's export.
    proof = {e.field: dict(e.evidence) for e in events}["channels.sms"]
    assert (proof["page"], proof["lang"], proof["ip"], proof["ua"]) == ("preference_center", "zh", "127.0.0.0/24",
                                                                       "Chrome")
    with server.channel() as ch:
        export = json.loads(pb_grpc.EngagementGuardStub(ch).ExportUserData(
            pb.ExportUserDataRequest(user_id="u1"), timeout=10).document)
    words = export["wordings"][proof["wording"]]
    assert words["lang"] == "zh" and words["labels"]["channel.sms"] == "短信"
    assert "关闭后不再发送资讯和优惠" in words["words"]["prefs.channel.service"]

    page.click("a[hreflang=en]")  # the visible language switch
    assert page.locator("h1").inner_text() == "Your message preferences"
    assert not page.get_by_label("Text messages (SMS)", exact=True).is_checked()
    assert page.get_by_label("Promotions and offers", exact=True).is_checked()
    shot(page, "preferences-en")
    page.close()


def _receipt(server, user: str) -> pb.CheckTouchResponse:
    with server.channel() as ch:
        return pb_grpc.EngagementGuardStub(ch).CheckTouch(pb.CheckTouchRequest(
            user_id=user, channel="email", category="service", touch_class=pb.TRANSACTIONAL, dry_run=True), timeout=10)


def test_stop_everything_here_is_a_choice_of_its_own_and_unticking_it_brings_receipts_back(server, browser):  # noqa: F811
    link = _link(server, "u20", "en")
    page = browser.new_page(viewport={"width": 1000, "height": 900})
    page.goto(_local(link.url, server))
    page.get_by_label("Email", exact=True).uncheck()  # closing the channel: marketing stops, receipts still come
    page.click("#save")
    page.wait_for_selector("#notice")
    assert _check(server, "u20", "email").decision == pb.BLOCK and _receipt(server, "u20").decision == pb.ALLOW
    stop_all = page.locator("#stop-all-email")
    assert not stop_all.is_checked()
    stop_all.check()  # "Stop everything here": receipts stop too
    page.click("#save")
    page.wait_for_selector("#notice")
    assert page.locator("#stop-all-email").is_checked()
    shot(page, "preferences-en-stop-all")
    receipt = _receipt(server, "u20")
    assert receipt.decision == pb.BLOCK and list(receipt.reasons) == [pb.CHANNEL_OPTED_OUT]
    assert dict(_prefs(server, "u20").channel_scopes) == {"email": "all"}
    page.locator("#stop-all-email").uncheck()
    page.click("#save")
    page.wait_for_selector("#notice")
    assert _receipt(server, "u20").decision == pb.ALLOW and _check(server, "u20", "email").decision == pb.BLOCK
    fields = [(e.field, e.new_value) for e in reversed(_ledger(server, "u20"))]
    assert fields == [("channels.email", "false"), ("channel_scopes.email", '"marketing"'),
                      ("channel_scopes.email", '"all"'), ("channel_scopes.email", '"marketing"')]
    page.close()


def test_a_link_naming_its_topic_and_campaign_unsubscribes_from_that_topic_and_counts_for_that_campaign(server):
    """A promotion email's link names its topic and campaign: one-click closes promotions by email only (articles
    by email and receipts still come), and the opt-out counts in that campaign's figures, once."""
    with server.channel() as ch:
        stub = pb_grpc.EngagementGuardStub(ch)
        link = stub.CreatePreferenceLink(pb.CreatePreferenceLinkRequest(user_id="u40", topic="promotion",
                                                                        campaign_id="autumn-sale"), timeout=10)
        with pytest.raises(grpc.RpcError) as err:
            stub.CreatePreferenceLink(pb.CreatePreferenceLinkRequest(user_id="u40", topic="gossip"), timeout=10)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and err.value.details().startswith("topic")
    for _ in range(2):  # a mail client may post twice
        answer = httpx.post(link.list_unsubscribe_url, data={"List-Unsubscribe": "One-Click"}, follow_redirects=False)
        assert answer.status_code == 200
    prefs = _prefs(server, "u40")
    assert dict(prefs.grid) == {"email.promotion": False} and dict(prefs.channels) == {}
    assert pb.CATEGORY_OPTED_OUT in _check(server, "u40", "email").reasons
    assert pb.CATEGORY_OPTED_OUT not in _check(server, "u40", "email", "content").reasons
    assert _receipt(server, "u40").decision == pb.ALLOW
    assert [(e.field, e.source) for e in _ledger(server, "u40")] == [("grid.email.promotion", "list_unsubscribe")]
    deadline = time.monotonic() + 10
    while (figures := _figures(server, "autumn-sale")).list_unsubscribes < 1:  # written every 100 ms
        assert time.monotonic() < deadline, "the opt-out never reached the campaign's figures"
        time.sleep(0.1)
    assert figures.list_unsubscribes == 1  # the second post changed nothing, so it counted nothing


def _figures(server, campaign: str) -> pb.HealthFigures:
    with server.channel() as ch:
        return pb_grpc.EngagementGuardStub(ch).GetCampaignHealth(
            pb.GetCampaignHealthRequest(campaign_id=campaign, window="24h"), timeout=10).figures


def test_an_opt_in_on_email_waits_for_the_person_to_confirm_through_the_link(server, browser):  # noqa: F811
    link = _link(server, "u50", "en")
    page = browser.new_page()
    page.goto(_local(link.url, server))
    page.get_by_label("Email", exact=True).uncheck()
    page.click("#save")
    page.wait_for_selector("#notice")
    page.get_by_label("Email", exact=True).check()  # back in: email asks for a confirmation (confirm_opt_in)
    page.click("#save")
    page.wait_for_selector("#notice")
    waiting = _check(server, "u50", "email")
    assert waiting.decision == pb.BLOCK and list(waiting.reasons) == [pb.CONSENT_PENDING]
    assert list(_prefs(server, "u50").pending_confirmation) == ["email"]
    with server.channel() as ch:
        confirm = pb_grpc.EngagementGuardStub(ch).CreateConfirmationLink(
            pb.CreateConfirmationLinkRequest(user_id="u50", channel="email", locale="zh"), timeout=10)
        with pytest.raises(grpc.RpcError) as err:
            pb_grpc.EngagementGuardStub(ch).CreateConfirmationLink(
                pb.CreateConfirmationLinkRequest(user_id="u50", channel="fax"), timeout=10)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and err.value.details().startswith("channel")
    page.goto(_local(confirm.url, server))  # a GET (a scanner, a preview) only asks
    assert page.locator("h1").inner_text() == "确认您的选择"
    assert _check(server, "u50", "email").decision == pb.BLOCK
    shot(page, "confirm-zh")
    forged = httpx.post(confirm.url.split("?")[0], data={"csrf": "nope"})
    assert forged.status_code == 403 and _check(server, "u50", "email").decision == pb.BLOCK
    page.click("#confirm")
    assert "谢谢" in page.locator("#confirmed").inner_text()
    assert pb.CONSENT_PENDING not in _check(server, "u50", "email").reasons
    assert list(_prefs(server, "u50").pending_confirmation) == []
    newest = _ledger(server, "u50")[0]
    assert (newest.field, newest.source, newest.evidence["page"], newest.evidence["lang"]) == (
        "pending.email", "confirmation", "confirmation", "zh")
    page.close()


def test_promotions_by_sms_off_by_push_on_in_the_grid(server, browser):  # noqa: F811
    """The grid: topics as rows, channels as columns (a list per topic on a phone); one cell closes one topic on one
    channel only, and the ledger records the cell."""
    link = _link(server, "u30", "zh")
    page = browser.new_page(viewport={"width": 1000, "height": 1100})
    page.goto(_local(link.url, server))
    cell = page.get_by_label("通过短信接收促销优惠", exact=True)
    assert cell.is_checked()
    shot(page, "preferences-zh-grid")
    cell.uncheck()
    page.click("#save")
    page.wait_for_selector("#notice")
    assert not page.get_by_label("通过短信接收促销优惠", exact=True).is_checked()
    assert page.get_by_label("通过应用推送接收促销优惠", exact=True).is_checked()
    sms = _check(server, "u30", "sms")
    assert sms.decision == pb.BLOCK and list(sms.reasons) == [pb.CATEGORY_OPTED_OUT]
    assert _check(server, "u30", "push").decision in (pb.ALLOW, pb.DEFER)  # quiet hours may apply, the topic does not
    assert pb.CATEGORY_OPTED_OUT not in _check(server, "u30", "push").reasons
    assert dict(_prefs(server, "u30").grid) == {"sms.promotion": False}
    assert [(e.field, e.new_value) for e in _ledger(server, "u30")] == [("grid.sms.promotion", "false")]
    page.click("a[hreflang=en]")
    assert not page.get_by_label("Promotions and offers by Text messages (SMS)", exact=True).is_checked()
    shot(page, "preferences-en-grid")
    page.close()
    phone = browser.new_page(viewport={"width": 360, "height": 1400}, locale="zh-CN")
    phone.goto(_local(link.url, server))
    assert phone.evaluate("document.documentElement.scrollWidth") <= 360
    assert phone.get_by_text("通过短信接收促销优惠", exact=True).is_visible()  # each cell says what it is
    # A list per channel: SMS's heading, then every topic by SMS, then the next channel's heading.
    tops = phone.evaluate("""Array.from(document.querySelectorAll('.grid .channel-headings th, .grid td'))
        .map(e => [e.textContent.trim(), e.getBoundingClientRect().top])""")
    y = {text: top for text, top in tops}
    sms_cells = [top for text, top in tops if text.startswith("通过短信接收")]
    assert len(sms_cells) == 5 and y["短信"] < min(sms_cells) and max(sms_cells) < y["企业微信"]  # channels in page order
    shot(phone, "preferences-zh-grid-phone")
    phone.goto(_local(link.url, server).replace("lang=zh", "lang=en"))
    shot(phone, "preferences-en-grid-phone")
    phone.close()


def test_the_page_follows_accept_language_and_pauses_and_resumes(server, browser):  # noqa: F811
    link = _link(server, "u2")
    context = browser.new_context(locale="zh-CN", extra_http_headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"})
    page = context.new_page()
    page.goto(_local(link.url, server))
    assert page.locator("h1").inner_text() == "消息偏好设置"
    page.click("#pause-week")
    page.wait_for_selector("#paused")
    assert _check(server, "u2", "push").decision != pb.ALLOW
    assert _prefs(server, "u2").paused_until.seconds > 0
    shot(page, "preferences-zh-paused")
    page.click("#resume")
    page.wait_for_selector("#notice")
    assert page.locator("#paused").count() == 0
    assert _check(server, "u2", "push").decision == pb.ALLOW
    context.close()


def test_a_stale_form_says_so_instead_of_overwriting(server, browser):  # noqa: F811
    link = _link(server, "u3", "en")
    first, second = browser.new_page(), browser.new_page()
    first.goto(_local(link.url, server))
    second.goto(_local(link.url, server))
    first.get_by_label("Email", exact=True).uncheck()
    first.click("#save")
    first.wait_for_selector("#notice")
    second.get_by_label("Surveys", exact=True).uncheck()
    second.click("#save")
    second.wait_for_selector("#notice")
    assert "changed while this page was open" in second.locator("#notice").inner_text()
    assert not second.get_by_label("Email", exact=True).is_checked()  # the page now shows what is stored
    assert second.get_by_label("Surveys", exact=True).is_checked()  # and the stale change was not saved
    shot(second, "preferences-en-stale")
    prefs = _prefs(server, "u3")
    assert dict(prefs.channels) == {"email": False} and dict(prefs.categories) == {}
    first.close()
    second.close()


def test_a_tampered_or_expired_link_is_refused_and_changes_nothing(server, browser):  # noqa: F811
    link = _link(server, "u4", "en")
    head, _, query = link.url.partition("?")
    token = head.rsplit("/", 1)[1]
    sealed, tenant, secret_id, body = token.split(".")  # a sealed link: only the tenant is readable
    other_body = _link(server, "u5").url.split("/p/")[1].split("?")[0].split(".")[3]
    spliced = f"{sealed}.{tenant}.{secret_id}.{other_body[:-4]}{body[-4:]}"  # another link's ciphertext, this tag
    page = browser.new_page()
    for bad in (spliced, f"{sealed}.{tenant}.{secret_id}.{body[:-2]}AA", f"{sealed}.{tenant}.{secret_id}",
                f"{sealed}.beta.{secret_id}.{body}"):
        response = page.goto(f"{server.http}/p/{bad}?{query}")
        assert response.status in (400, 403)
        assert page.locator("h1").inner_text() == "This link does not work"
    shot(page, "preferences-link-refused")
    forged = httpx.post(f"{server.http}/u/{spliced}", data={"List-Unsubscribe": "One-Click"})
    assert forged.status_code == 403
    page.goto(f"{server.http}/p/{spliced}?lang=zh")
    assert page.locator("h1").inner_text() == "此链接无效"
    page.close()
    for user in ("u4", "u5"):
        assert _prefs(server, user).version == 0 and not _ledger(server, user)
    with server.channel() as channel:
        stub = pb_grpc.EngagementGuardStub(channel)
        short = stub.CreatePreferenceLink(pb.CreatePreferenceLinkRequest(user_id="u4", ttl={"seconds": 1}), timeout=10)
    import time

    time.sleep(1.2)
    expired = httpx.get(_local(short.url, server))
    assert expired.status_code == 410 and "expired" in expired.text


def test_one_click_unsubscribe_closes_email_without_a_redirect_and_a_get_only_asks(server, browser):  # noqa: F811
    link = _link(server, "u6")
    page = browser.new_page()
    response = page.goto(_local(link.list_unsubscribe_url, server) + "?lang=en")
    assert response.status == 200 and page.locator("h1").inner_text() == "Unsubscribe from marketing email"
    shot(page, "unsubscribe-confirm-en")
    assert _prefs(server, "u6").version == 0  # a GET (a link scanner, a preview) changes nothing
    page.close()

    answer = httpx.post(link.list_unsubscribe_url, content=b"List-Unsubscribe=One-Click",
                        headers={"Content-Type": "application/x-www-form-urlencoded"}, follow_redirects=False)
    assert answer.status_code == 200 and "set-cookie" not in answer.headers
    blocked = _check(server, "u6", "email")
    assert blocked.decision == pb.BLOCK and pb.CHANNEL_OPTED_OUT in blocked.reasons
    # An unsubscribe from marketing email means marketing: the order receipt still goes.
    assert _receipt(server, "u6").decision == pb.ALLOW
    assert dict(_prefs(server, "u6").channel_scopes) == {"email": "marketing"}
    assert [(e.field, e.source, e.new_value) for e in reversed(_ledger(server, "u6"))] == [
        ("channels.email", "list_unsubscribe", "false"), ("channel_scopes.email", "list_unsubscribe", '"marketing"')]
    proof = dict(_ledger(server, "u6")[0].evidence)
    assert (proof["page"], proof["ip"], proof["ua"]) == ("one_click", "127.0.0.0/24", "other")  # a mail client

    link7 = _link(server, "u7")
    multipart = httpx.post(link7.list_unsubscribe_url, files={"List-Unsubscribe": (None, "One-Click")},
                           follow_redirects=False)
    assert multipart.status_code == 200
    assert dict(_prefs(server, "u7").channels) == {"email": False}
    wrong = httpx.post(_link(server, "u8").list_unsubscribe_url, data={"List-Unsubscribe": "Maybe"})
    assert wrong.status_code == 400 and _prefs(server, "u8").version == 0

    page = browser.new_page(locale="zh-CN", extra_http_headers={"Accept-Language": "zh-CN"})
    page.goto(_local(_link(server, "u9").list_unsubscribe_url, server))
    page.click("button[type=submit]")  # the confirmation page's own button posts the same one-click body
    assert page.locator("#unsubscribed").inner_text() == "您已退订营销邮件。"
    shot(page, "unsubscribe-done-zh")
    assert dict(_prefs(server, "u9").channels) == {"email": False}
    page.close()


def test_the_page_is_usable_on_a_phone_with_a_keyboard(server, browser):  # noqa: F811
    link = _link(server, "u10", "en")
    page = browser.new_page(viewport={"width": 360, "height": 740})
    page.goto(_local(link.url, server))
    assert page.evaluate("document.documentElement.scrollWidth") <= 360  # nothing wider than the phone
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(246, 248, 250)"  # the CSS loaded
    sizes = page.evaluate("""Array.from(document.querySelectorAll('input:not([type=hidden]), button, select'))
        .map(e => { const r = e.getBoundingClientRect(); return [e.id || e.name, r.width, r.height]; })""")
    assert sizes and all(w >= 24 and h >= 24 for _, w, h in sizes), sizes
    unlabelled = page.evaluate("""Array.from(document.querySelectorAll('input:not([type=hidden]), select'))
        .filter(e => !(e.labels && e.labels.length)).map(e => e.id)""")
    assert unlabelled == []
    order = []
    for _ in range(10):
        page.keyboard.press("Tab")
        order.append(page.evaluate("document.activeElement.id || document.activeElement.textContent.trim()"))
    channels = page.evaluate("""Array.from(document.querySelectorAll('input[id^=channel-], input[id^=stop-all-]'))
        .map(e => e.id)""")  # each channel, then its "stop everything here" where the policy offers one
    assert order[1:1 + len(channels)] == channels  # after the language switch, the controls in reading order
    assert page.evaluate("getComputedStyle(document.activeElement, ':focus-visible').outlineStyle") != "none"
    shot(page, "preferences-en-phone")
    page.close()


def test_links_from_the_cli_rotation_and_retirement(server):
    made = server.cli("prefs", "link", "u11", "--locale", "zh", "--ttl", "2d")
    assert made.returncode == 0, made.stderr
    link = __import__("json").loads(made.stdout)
    assert link["url"].endswith("?lang=zh") and link["list_unsubscribe_post"] == "List-Unsubscribe=One-Click"
    assert httpx.get(link["url"]).status_code == 200
    bad = server.cli("prefs", "link", "u11", "--ttl", "soon")
    assert bad.returncode != 0 and "--ttl" in bad.stderr
    too_long = server.cli("prefs", "link", "u11", "--ttl", "400d")
    assert too_long.returncode == 2 and "ttl" in too_long.stderr
    rotated = server.cli("links", "rotate")
    assert rotated.returncode == 0, rotated.stderr
    assert len(__import__("json").loads(rotated.stdout)["accepted_ids"]) == 2
    assert httpx.get(link["url"]).status_code == 200  # older links work until they expire
    fresh = __import__("json").loads(server.cli("prefs", "link", "u11").stdout)["url"]
    assert server.cli("links", "rotate", "--retire-previous").returncode == 0
    assert httpx.get(link["url"]).status_code == 403 and httpx.get(fresh).status_code == 403
    key = server.cli("keys", "create", "--role", "support", "--name", "helper").stdout.strip().splitlines()[-1]
    refused = server.cli("prefs", "link", "u11", key=key)
    assert refused.returncode == 1 and "PERMISSION_DENIED" in refused.stderr
    with server.channel() as channel:
        stub = pb_grpc.EngagementGuardStub(channel)
        import grpc

        with pytest.raises(grpc.RpcError) as error:
            stub.CreatePreferenceLink(pb.CreatePreferenceLinkRequest(user_id="u11", locale="fr"), timeout=10)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT and error.value.details().startswith("locale")
        with pytest.raises(grpc.RpcError) as error:
            stub.CreatePreferenceLink(pb.CreatePreferenceLinkRequest(user_id=""), timeout=10)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT and error.value.details().startswith("user_id")


def test_every_page_carries_the_security_headers_and_a_form_without_its_token_changes_nothing(server):
    link = _link(server, "u12", "en")
    token = link.url.split("/p/")[1].split("?")[0]
    pages = [link.url, link.list_unsubscribe_url, f"{server.http}/p/{token}x", f"{server.http}/desk/login",
             f"{server.http}/static/guard.css"]
    for url in pages:
        answer = httpx.get(url)
        assert answer.headers["x-frame-options"] == "DENY", url
        assert answer.headers["referrer-policy"] == "no-referrer", url
        assert "frame-ancestors 'none'" in answer.headers["content-security-policy"], url
        assert "unsafe-inline" not in answer.headers["content-security-policy"], url
    html = httpx.get(link.url).text
    assert "<script" not in html and " style=" not in html  # nothing the policy would have to allow inline
    forged = httpx.post(link.url, data={"form": "preferences", "version": "0", "csrf": "guess"})
    assert forged.status_code == 403
    missing = httpx.post(link.url, data={"form": "preferences", "version": "0"})
    assert missing.status_code == 403
    assert _prefs(server, "u12").version == 0 and not _ledger(server, "u12")
    logged = " ".join(str(e) for e in server.events("http"))
    assert token not in logged and "u12" not in logged and "/p/{token}" in logged
