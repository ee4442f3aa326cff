"""The preference center: a user's own page behind a signed link, and RFC 8058 one-click unsubscribe.

The page writes through ``PreferenceService.update_preferences`` like any other client, with source
``preference_center`` and actor ``self``, and only the fields the user actually changed (so the
consent ledger records choices, not a form's echo of defaults). The form carries the version it
was rendered from: a save against preferences that changed meanwhile is refused and the page
shows them as they are now.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from guard import logs
from guard.domain import clock, tokens
from guard.domain.types import Preferences
from guard.errors import Conflict, InvalidArgument
from guard.policy import ChannelPolicy, Policy
from guard.usecases.links import Subject
from guard.usecases.preferences import PreferencesPatch
from guard.usecases.tenants import Services
from guard.validate import whole_number
from guard.web import i18n
from guard.web.toolkit import Web, locale_for, plain, read_form

log = logs.get("guard.web.prefs")

SOURCE, ACTOR = "preference_center", "self"
ONE_CLICK_SOURCE, ONE_CLICK_ACTOR = "list_unsubscribe", "one_click"
PAUSES = {"pause_week": 7, "pause_month": 30}  # days
TIME_ZONES = ("Asia/Shanghai", "Asia/Hong_Kong", "Asia/Taipei", "Asia/Singapore", "Asia/Tokyo", "Asia/Kolkata",
              "Europe/London", "Europe/Berlin", "America/New_York", "America/Chicago", "America/Los_Angeles", "UTC")
_STATUS = {"malformed": 400, "forged": 403, "expired": 410}


def kept_ip(address: str, rule: str, secret: bytes) -> str:
    """A person's address as the policy's privacy.ip keeps it: none, truncated (IPv4 /24, IPv6 /48) or hashed."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return ""
    if rule == "truncated":
        return str(ipaddress.ip_network(f"{ip}/{24 if ip.version == 4 else 48}", strict=False))
    if rule == "hashed":
        return tokens.tag("consent-ip", str(ip), secret)[:16]
    return ""


_BROWSERS = (("Edg/", "Edge"), ("OPR/", "Opera"), ("Firefox/", "Firefox"), ("MicroMessenger/", "WeChat"),
             ("Chrome/", "Chrome"), ("Safari/", "Safari"))


def browser_family(user_agent: str) -> str:
    """The browser's family only (never the whole string: it narrows a person down)."""
    if not user_agent:
        return ""
    return next((family for marker, family in _BROWSERS if marker in user_agent), "other")


def wording_of(words: Mapping[str, str], pol: Policy, locale: str) -> tuple[str, str]:
    """(the version of the words a preference page shows, the words): what a person saw when they chose."""
    shown_words = {k: v for k, v in sorted(words.items()) if k.startswith(("prefs.", "unsub."))}
    labels = {f"{kind}.{name}": pol.label(kind, name, locale) for kind, names in
              (("channel", pol.channels), ("category", pol.categories)) for name in names}
    text = json.dumps({"lang": locale, "words": shown_words, "labels": labels}, ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16], text


async def evidence(web: Web, request: Request, services: Services, locale: str, page: str) -> dict[str, str]:
    """How a wish made on a page was expressed, for the consent ledger; the words are kept once by their hash."""
    version, text = wording_of(i18n.words(locale), services.policy, locale)
    await web.control.remember_wording(version, text)
    host = request.client.host if request.client else ""
    return {"page": page, "wording": version, "lang": locale,
            "ip": kept_ip(host, services.policy.privacy_ip, await web.secret()),
            "ua": browser_family(request.headers.get("user-agent", ""))}


def scope_of(prefs: Preferences, name: str, channel: ChannelPolicy) -> str:
    """How far a closed channel is closed: as stored, or (closed before scopes existed) the policy's scope_before."""
    return prefs.channel_scopes.get(name, channel.scope_before)


def _csrf(secret: bytes, token: str) -> str:
    return tokens.tag("prefs-form", token, secret)


class Form:
    """The page's form, read into the values of a patch: each path only when it differs from what is stored."""

    def __init__(self, services: Services, prefs: Preferences, data: FormData, now_ms: int) -> None:
        self.services, self.prefs, self.data, self.now = services, prefs, data, now_ms

    def _on(self, name: str) -> bool:
        return self.data.get(name) == "on"

    def patch(self) -> PreferencesPatch:
        """The page has two forms: the preferences (saved whole) and the pause (its buttons only)."""
        if self.data.get("form") == "pause":
            paused = self._pause(str(self.data.get("action", "")))
            return PreferencesPatch(paths=["paused_until"] if paused is not None else [], paused_until_ms=paused or 0)
        pol, prefs = self.services.policy, self.prefs
        paths: list[str] = []
        channels: dict[str, bool] = {}
        scopes: dict[str, str] = {}
        categories: dict[str, bool] = {}
        for name, ch in pol.channels.items():
            # "Stop everything here" (where the policy offers it) closes the channel for every message.
            stop_all = ch.stop_all and self._on(f"stop_all.{name}")
            wanted = self._on(f"channel.{name}") and not stop_all
            is_open = prefs.channels.get(name, ch.default_opt_in)
            scope = "all" if stop_all else ch.scope_for(SOURCE)
            if wanted != is_open or (not wanted and ch.stop_all and scope != scope_of(prefs, name, ch)):
                paths.append(f"channels.{name}")
                channels[name] = wanted
                if not wanted:
                    scopes[name] = scope
        grid: dict[str, bool] = {}
        for name, default in pol.categories.items():
            wanted = self._on(f"category.{name}")
            switched = wanted != prefs.categories.get(name, default)
            if switched:
                paths.append(f"categories.{name}")
                categories[name] = wanted
            for channel in pol.channels:  # the grid: a cell is kept only where it differs from its topic
                cell = f"{channel}.{name}"
                # A topic switched as a whole resets its row (the row on the page still showed the old state).
                kept = None if switched or self._on(f"grid.{cell}") == wanted else self._on(f"grid.{cell}")
                if kept != prefs.grid.get(cell):
                    paths.append(f"grid.{cell}")
                    if kept is not None:
                        grid[cell] = kept
        quiet: tuple[str, str, str] | None = None
        if self._on("quiet"):
            quiet = (str(self.data.get("quiet_tz", "")), str(self.data.get("quiet_start", "")),
                     str(self.data.get("quiet_end", "")))
        stored = prefs.quiet_hours
        stored_tuple = (None if stored is None else
                        (stored.time_zone, clock.format_hhmm(stored.start_minute), clock.format_hhmm(stored.end_minute)))
        if quiet != stored_tuple:
            paths.append("quiet_hours")
        weekly = whole_number(str(self.data.get("max_week", "0")).strip() or "0", "preferences.max_marketing_per_week",
                              maximum=1000)
        if weekly != prefs.max_marketing_per_week:
            paths.append("max_marketing_per_week")
        unsub = self._on("unsubscribed_all")
        if unsub != prefs.unsubscribed_all:
            paths.append("unsubscribed_all")
        return PreferencesPatch(paths=paths, channels=channels, channel_scopes=scopes, categories=categories, grid=grid,
                                unsubscribed_all=unsub, quiet_hours=quiet, max_marketing_per_week=weekly)

    def _pause(self, action: str) -> int | None:
        """The new end of the pause, for the pause buttons and Resume; None: the pause is left as it is."""
        if action in PAUSES:
            return self.now + PAUSES[action] * 86_400_000
        if action == "resume":
            return 0
        if action == "pause_date":
            raw = str(self.data.get("pause_until", ""))
            try:
                day = datetime.strptime(raw, "%Y-%m-%d").replace(tzinfo=clock.zone(self._zone()))
            except ValueError:
                raise InvalidArgument("preferences.paused_until", "choose a date to pause until") from None
            until = int(day.timestamp() * 1000)
            if until <= self.now:
                raise InvalidArgument("preferences.paused_until", "choose a date after today")
            return until
        return None

    def _zone(self) -> str:
        quiet = self.prefs.quiet_hours or self.services.policy.default_quiet
        return quiet.time_zone


def _view(services: Services, prefs: Preferences, locale: str, now_ms: int) -> dict[str, Any]:
    pol = services.policy
    quiet = prefs.quiet_hours
    shown_quiet = quiet or pol.default_quiet
    zones = list(TIME_ZONES) if shown_quiet.time_zone in TIME_ZONES else [shown_quiet.time_zone, *TIME_ZONES]
    paused_until = ""
    if prefs.paused_until_ms > now_ms:
        local = datetime.fromtimestamp(prefs.paused_until_ms / 1000, clock.zone(shown_quiet.time_zone))
        paused_until = local.strftime("%Y-%m-%d %H:%M")
    tomorrow = datetime.fromtimestamp(now_ms / 1000, UTC) + timedelta(days=1)
    return {
        "channels": [{"name": n, "label": pol.label("channel", n, locale), "stop_all": ch.stop_all,
                      "closes_all": ch.scope_for(SOURCE) == "all", "on": prefs.channels.get(n, ch.default_opt_in),
                      "stopped": not prefs.channels.get(n, ch.default_opt_in) and scope_of(prefs, n, ch) == "all"}
                     for n, ch in pol.channels.items()],
        "categories": [{"name": n, "label": pol.label("category", n, locale), "on": prefs.categories.get(n, d)}
                       for n, d in pol.categories.items()],
        # Topics as rows, channels as columns: a cell is open where the grid says so, else where its topic is.
        "grid": [{"name": n, "label": pol.label("category", n, locale),
                  "cells": [{"channel": c, "label": pol.label("channel", c, locale),
                             "on": prefs.grid.get(f"{c}.{n}", prefs.categories.get(n, d))} for c in pol.channels]}
                 for n, d in pol.categories.items()],
        "grid_channels": [pol.label("channel", c, locale) for c in pol.channels],
        "quiet_on": quiet is not None, "quiet_tz": shown_quiet.time_zone, "zones": zones,
        "quiet_start": clock.format_hhmm(shown_quiet.start_minute), "quiet_end": clock.format_hhmm(shown_quiet.end_minute),
        "max_week": prefs.max_marketing_per_week, "unsubscribed_all": prefs.unsubscribed_all,
        "paused_until": paused_until, "min_date": tomorrow.strftime("%Y-%m-%d"), "version": prefs.version,
    }


def routes(web: Web) -> list[Route]:
    async def opened(request: Request) -> tuple[str, Subject] | Response:
        """The page's locale and whom its link names; or the page refusing the link."""
        locale = locale_for(request)
        try:
            return locale, await web.tenants.links.open(request.path_params["token"])
        except tokens.BadToken as exc:
            log.info("link_refused", reason=exc.reason)
            return web.render(request, "link_refused.html", locale, _STATUS[exc.reason], reason=exc.reason)

    async def page(request: Request, locale: str, subject: Subject, *, status: int = 200, notice: str = "",
                   error: str = "") -> Response:
        services = web.tenants.get(subject.tenant)
        prefs = await services.preferences.get_preferences(subject.user_id)
        token = request.path_params["token"]
        if not notice and request.query_params.get("saved") == "1":
            notice = "saved"
        return web.render(request, "preferences.html", locale, status, csrf=_csrf(await web.secret(), token),
                          notice=notice, error=error, action=request.url.path + f"?lang={locale}",
                          **_view(services, prefs, locale, services.preferences.now()))

    async def show(request: Request) -> Response:
        got = await opened(request)
        return got if isinstance(got, Response) else await page(request, *got)

    async def save(request: Request) -> Response:
        got = await opened(request)
        if isinstance(got, Response):
            return got
        locale, subject = got
        token = request.path_params["token"]
        data = await read_form(request)
        if not tokens.same(str(data.get("csrf", "")), _csrf(await web.secret(), token)):
            return web.render(request, "message.html", locale, 403, title="link.bad.title", text="csrf.failed")
        services = web.tenants.get(subject.tenant)
        prefs = await services.preferences.get_preferences(subject.user_id)
        try:
            expected = whole_number(str(data.get("version", "")), "version", maximum=10**12)
            patch = Form(services, prefs, data, services.preferences.now()).patch()
            if expected != prefs.version:
                raise Conflict(f"preferences are at version {prefs.version}, not {expected}")
            if patch.paths:
                await services.preferences.update_preferences(
                    subject.user_id, patch, source=SOURCE, actor=ACTOR, expected_version=expected,
                    evidence=await evidence(web, request, services, locale, "preference_center"))
        except Conflict:
            return await page(request, locale, subject, status=409, notice="stale")
        except InvalidArgument as exc:
            return await page(request, locale, subject, status=400, error=str(exc))
        return RedirectResponse(request.url.path + f"?lang={locale}&saved=1", status_code=303)

    async def unsubscribe_page(request: Request) -> Response:
        got = await opened(request)
        if isinstance(got, Response):
            return got
        locale, _ = got
        token = request.path_params["token"]
        return web.render(request, "unsubscribe.html", locale, done=False, action=f"/u/{token}?lang={locale}",
                          manage=f"/p/{token}?lang={locale}")

    async def one_click(request: Request) -> Response:
        """RFC 8058: a POST whose body is ``List-Unsubscribe=One-Click`` (urlencoded or multipart), sent by a
        mail client without cookies; answered 200 with no redirect. The link's signature is the authority."""
        got = await opened(request)
        if isinstance(got, Response):
            return got
        locale, subject = got
        data = await read_form(request)
        if data.get("List-Unsubscribe") != "One-Click":
            return plain("the body must be List-Unsubscribe=One-Click (RFC 8058)", 400)
        services = web.tenants.get(subject.tenant)
        if "email" not in services.policy.channels:
            return plain("this tenant's policy has no email channel", 404)
        # The message's topic only, when the link names one (and the tenant still has it); else marketing email.
        if subject.topic and subject.topic in services.policy.categories:
            cell = f"email.{subject.topic}"
            patch = PreferencesPatch(paths=[f"grid.{cell}"], grid={cell: False})
        else:
            patch = PreferencesPatch(paths=["channels.email"], channels={"email": False})
        before = await services.preferences.get_preferences(subject.user_id)
        after = await services.preferences.update_preferences(
            subject.user_id, patch, source=ONE_CLICK_SOURCE, actor=ONE_CLICK_ACTOR, expected_version=None,
            evidence=await evidence(web, request, services, locale, "one_click"))
        if subject.campaign_id and after.version != before.version:  # counted once: a repeated click changes nothing
            services.counters.add(subject.tenant, subject.campaign_id, "list_unsubscribes")  # in its opt-out rate
        token = request.path_params["token"]
        return web.render(request, "unsubscribe.html", locale, done=True, action="", manage=f"/p/{token}?lang={locale}")

    async def confirmation(request: Request) -> Response:
        """A confirmation link: GET asks (link scanners and previews fetch addresses), a POST with its form token
        confirms the opt-in, ledgered with the evidence of how."""
        locale = locale_for(request)
        token = request.path_params["token"]
        try:
            subject, channel = await web.tenants.links.open_confirmation(token)
        except tokens.BadToken as exc:
            log.info("link_refused", reason=exc.reason)
            return web.render(request, "link_refused.html", locale, _STATUS[exc.reason], reason=exc.reason)
        services = web.tenants.get(subject.tenant)
        if channel not in services.policy.channels:
            return plain("this channel is no longer offered", 404)
        label = services.policy.label("channel", channel, locale)
        csrf = tokens.tag("confirm-form", token, await web.secret())
        if request.method == "GET":
            return web.render(request, "confirm.html", locale, done=False, channel=label, csrf=csrf,
                              action=f"/c/{token}?lang={locale}")
        data = await read_form(request)
        if not tokens.same(str(data.get("csrf", "")), csrf):
            return web.render(request, "message.html", locale, 403, title="link.bad.title", text="csrf.failed")
        await services.preferences.confirm(subject.user_id, channel,
                                           await evidence(web, request, services, locale, "confirmation"))
        return web.render(request, "confirm.html", locale, done=True, channel=label, csrf="", action="")

    return [Route("/c/{token}", confirmation, methods=["GET", "POST"]),
            Route("/p/{token}", show, methods=["GET"]), Route("/p/{token}", save, methods=["POST"]),
            Route("/u/{token}", unsubscribe_page, methods=["GET"]), Route("/u/{token}", one_click, methods=["POST"])]
