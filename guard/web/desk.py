"""The recovery desk: the support team's queue, task pages and campaign health, at ``/desk``.

Agents sign in with an API key holding the ``support`` (or ``admin``) role; the key is checked by the
same authenticator as every gRPC call (with a failure limit of the desk's own) and exchanged for a
session kept on the server (in the control records, expiring with the sign-in) and a signed,
HttpOnly, SameSite=Strict cookie naming it. The key itself is never stored in the cookie. Signing
out deletes the session, so a saved cookie is worth nothing afterwards. Each request checks the
session and that its key is still unrevoked and of the session's tenant (cached for a few seconds
and forgotten whenever the control revision moves), so revoking a key signs its agent out. Every
action is the key's: claims and resolutions carry its name and its id.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from guard import logs
from guard.domain import clock, tokens
from guard.errors import (
    InvalidArgument,
    NotFound,
    PermissionDenied,
    PreconditionFailed,
    StoreUnavailable,
    TooManyFailures,
    Unauthenticated,
)
from guard.usecases.desk import OUTCOMES, PRIORITY_RANK, RecoveryTask
from guard.web import i18n
from guard.web.live import StreamCaps, TaskFeed, sse
from guard.web.toolkit import Web, locale_for, plain, read_form

log = logs.get("guard.web.desk")

COOKIE = "guard_desk"
LOGIN_COOKIE = "guard_desk_login"
PURPOSE = "desk-session"
SECRET_ID = "w"
KEY_CHECK_S = 5.0
FILTERS = ("all", "mine", "unclaimed")
MAX_QUEUE = 500
HEARTBEAT_S = 15.0


@dataclass(frozen=True)
class Session:
    session_id: str
    key_id: str
    tenant: str
    agent: str
    token: str

    def holds(self, task: RecoveryTask) -> bool:
        """Whether this agent (this key) has the task: a task from before keys were recorded is compared by name."""
        return task.assignee_key == self.key_id if task.assignee_key else task.assignee == self.agent


def due_text(due_ms: int, now_ms: int, t: dict[str, str]) -> tuple[str, bool]:
    """The time left on the SLA (or by how long it is overdue) in hours and minutes, in the page's language."""
    left = due_ms - now_ms
    minutes = abs(left) // 60_000
    span = t["desk.span"].format(hours=minutes // 60, minutes=minutes % 60)
    return (t["desk.overdue"].format(span=span), True) if left < 0 else (t["desk.left"].format(span=span), False)


def change_text(raw: str, t: dict[str, str]) -> str:
    """A consent ledger value (JSON) as people read it: on/off, a quiet-hours span, a time, or the value."""
    import json

    try:
        value = json.loads(raw) if raw else None
    except ValueError:
        return raw
    if value is None:
        return t["value.none"]
    if isinstance(value, bool):
        return t["value.on"] if value else t["value.off"]
    if isinstance(value, dict) and {"tz", "start", "end"} <= set(value):
        return f"{clock.format_hhmm(int(value['start']))}–{clock.format_hhmm(int(value['end']))} {value['tz']}"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {change_text(json.dumps(v), t)}" for k, v in value.items())
    return str(value)


def spark(values: list[float], width: int = 140, height: int = 32) -> str:
    """An SVG polyline's points for a 0–100 series (the 7-day fatigue chart); drawn without script or style."""
    if not values:
        return ""
    step = width / max(1, len(values) - 1)
    return " ".join(f"{i * step:.1f},{height - 2 - (min(100.0, max(0.0, v)) / 100) * (height - 4):.1f}"
                    for i, v in enumerate(values))


class KeyChecks:
    """Whether a signed-in key is still unrevoked and of the session's tenant, asked of the store at most every
    few seconds. Cached by (key, tenant): a cookie naming a known key with another tenant is checked afresh."""

    def __init__(self) -> None:
        self._ok: dict[tuple[str, str], float] = {}

    def fresh(self, key_id: str, tenant: str) -> bool:
        return self._ok.get((key_id, tenant), 0.0) > time.monotonic()

    def note(self, key_id: str, tenant: str) -> None:
        if len(self._ok) > 10_000:
            self._ok.clear()
        self._ok[(key_id, tenant)] = time.monotonic() + KEY_CHECK_S

    def forget(self) -> None:
        self._ok.clear()


def routes(web: Web) -> list[Route]:
    checks = KeyChecks()
    web.tenants.on_change.append(checks.forget)
    caps = StreamCaps(web.streams_per_session, web.streams_per_key)
    feeds: dict[str, TaskFeed] = {}

    async def session_of(request: Request) -> Session | None:
        """The signed-in agent: a cookie we signed, naming a session still open on the server, whose key is still
        unrevoked and of that tenant."""
        raw = request.cookies.get(COOKIE, "")
        if not raw:
            return None
        try:
            fields, _ = tokens.verify(PURPOSE, raw, {SECRET_ID: await web.secret()}, int(time.time() * 1000))
        except tokens.BadToken:
            return None
        if len(fields) != 4:
            return None  # a cookie from before sessions were kept on the server: sign in again
        session_id, key_id, tenant, agent = fields
        if await web.control.desk_session(session_id) != (key_id, tenant, agent):
            return None
        return Session(session_id, key_id, tenant, agent, raw) if await key_ok(key_id, tenant) else None

    async def key_ok(key_id: str, tenant: str) -> bool:
        """The session's key is still unrevoked and of this tenant (asked of the store at most every few seconds)."""
        if not checks.fresh(key_id, tenant):
            record = await web.control.key(key_id)
            if record is None or record.revoked_ms or record.tenant != tenant:
                return False
            checks.note(key_id, tenant)
        return True

    async def csrf_of(session: Session) -> str:
        return tokens.tag("desk-form", session.token, await web.secret())

    async def checked(request: Request) -> tuple[Session, dict[str, Any]] | Response:
        """The signed-in agent and, for a POST, its form after the CSRF check; else where to go instead."""
        session = await session_of(request)
        if session is None:
            return RedirectResponse("/desk/login", status_code=303)
        form: dict[str, Any] = {}
        if request.method == "POST":
            data = await read_form(request)
            if not tokens.same(str(data.get("csrf", "")), await csrf_of(session)):
                return web.render(request, "message.html", locale_for(request), 403, title="desk.title",
                                  text="csrf.failed")
            form = {k: v for k, v in data.items() if isinstance(v, str)}
        return session, form

    async def page(request: Request, name: str, session: Session | None, status: int = 200, **values: Any) -> Response:
        return web.render(request, name, locale_for(request), status, agent=session.agent if session else "",
                          csrf=await csrf_of(session) if session else "", **values)

    # -- signing in and out -------------------------------------------------------------------

    async def login_form(request: Request, error: str = "", status: int = 200) -> Response:
        await web.secret()
        nonce = secrets.token_urlsafe(16)
        response = await page(request, "desk_login.html", None, status, error=error, login_csrf=nonce)
        response.set_cookie(LOGIN_COOKIE, nonce, max_age=1800, path="/desk", httponly=True, samesite="strict",
                            secure=web.secure_cookies)
        return response

    async def login_page(request: Request) -> Response:
        return await login_form(request)

    async def login(request: Request) -> Response:
        data = await read_form(request)
        nonce = request.cookies.get(LOGIN_COOKIE, "")
        if not nonce or not tokens.same(str(data.get("csrf", "")), nonce):
            return await login_form(request, "csrf.failed", 403)
        key = str(data.get("key", "")).strip()
        host = request.client.host if request.client else "unknown"
        try:
            grant = await web.auth.authorize([("authorization", f"Bearer {key}")], lambda: f"ipv4:{host}:0",
                                             "ListRecoveryTasks", door="desk")
        except (Unauthenticated, PermissionDenied):
            return await login_form(request, "desk.signin.failed", 401)
        except TooManyFailures:
            return await login_form(request, "desk.signin.failed", 429)
        session_id = secrets.token_urlsafe(18)
        lasts_ms = int(web.session_hours * 3_600_000)
        await web.control.open_desk_session(session_id, grant.key_id, grant.tenant, grant.agent, lasts_ms)
        token = tokens.sign(PURPOSE, [session_id, grant.key_id, grant.tenant, grant.agent],
                            int(time.time() * 1000) + lasts_ms, SECRET_ID, await web.secret())
        response = RedirectResponse(f"/desk?lang={locale_for(request)}", status_code=303)
        response.set_cookie(COOKIE, token, max_age=lasts_ms // 1000, path="/desk", httponly=True,
                            samesite="strict", secure=web.secure_cookies)
        response.delete_cookie(LOGIN_COOKIE, path="/desk")
        log.info("desk_signed_in", key=grant.key_id, tenant=grant.tenant, agent=grant.agent)
        return response

    async def logout(request: Request) -> Response:
        got = await checked(request)
        response = RedirectResponse("/desk/login", status_code=303)
        response.delete_cookie(COOKIE, path="/desk")
        if not isinstance(got, Response):
            await web.control.end_desk_session(got[0].session_id)  # the cookie, wherever it was saved, is dead
            log.info("desk_signed_out", key=got[0].key_id, agent=got[0].agent)
        return response

    # -- the queue ----------------------------------------------------------------------------

    def row(task: RecoveryTask, now_ms: int, t: dict[str, str]) -> dict[str, Any]:
        sla, overdue = due_text(task.due_ms, now_ms, t)
        return {"task": task, "sla": sla, "overdue": overdue,
                "rank": f"{PRIORITY_RANK.get(task.priority, 9)}-{task.due_ms:015d}-{task.task_id}"}

    async def queue(request: Request) -> Response:
        got = await checked(request)
        if isinstance(got, Response):
            return got
        session, _ = got
        services = web.tenants.get(session.tenant)
        which = request.query_params.get("filter", "all")
        which = which if which in FILTERS else "all"
        tasks = await services.desk.open_tasks(MAX_QUEUE)
        if which == "mine":
            tasks = [task for task in tasks if task.status == "CLAIMED" and session.holds(task)]
        elif which == "unclaimed":
            tasks = [task for task in tasks if task.status == "OPEN"]
        now, t = services.desk.now(), _words(request)
        return await page(request, "desk_queue.html", session, rows=[row(task, now, t) for task in tasks], filter=which,
                    filters=FILTERS)

    async def events(request: Request) -> Response:
        """Server-sent events: each new open task as a rendered queue row, from the tenant's one feed."""
        got = await checked(request)
        if isinstance(got, Response):
            return plain("sign in first", 401)
        session, _ = got
        if not caps.take(session.session_id, session.key_id):
            return plain("too many live queues are open for this sign-in or key; close one", 429)
        services = web.tenants.get(session.tenant)
        feed = feeds.get(session.tenant)
        if feed is None:
            feed = feeds[session.tenant] = TaskFeed(services.desk.desk_stream_end, services.desk.new_tasks)
        locale, t = locale_for(request), _words(request)
        template = web.templates.get_template("desk_row.html")
        queue = feed.listen()

        async def stream() -> AsyncIterator[str]:
            yield "retry: 3000\n\n"
            quiet_since = checked_at = time.monotonic()
            while not web.stopping.is_set():
                try:
                    tasks = await asyncio.wait_for(queue.get(), 1.0)
                except TimeoutError:
                    tasks = []
                if time.monotonic() - checked_at >= 1.0:  # signed out or revoked: the stream ends with the session
                    checked_at = time.monotonic()
                    try:
                        if not await still_signed_in(session):
                            return
                    except StoreUnavailable:
                        pass
                now = services.desk.now()
                for task in tasks:
                    yield sse("task", template.render(r=row(task, now, t), t=t, locale=locale))
                    quiet_since = time.monotonic()
                if time.monotonic() - quiet_since > HEARTBEAT_S:
                    yield ": still here\n\n"
                    quiet_since = time.monotonic()

        def closed() -> None:
            feed.leave(queue)
            caps.give_back(session.session_id, session.key_id)

        return LiveStream(stream(), closed)

    async def still_signed_in(session: Session) -> bool:
        found = await web.control.desk_session(session.session_id)
        return found == (session.key_id, session.tenant, session.agent) and await key_ok(session.key_id, session.tenant)

    # -- a task ---------------------------------------------------------------------------------

    async def task_page(request: Request, session: Session, message: str = "", status: int = 200) -> Response:
        services = web.tenants.get(session.tenant)
        try:
            task = await services.desk.get_task(request.path_params["task_id"])
        except (NotFound, InvalidArgument):  # no such task, or no id a task could have: the desk's own page
            return await page(request, "message.html", session, 404, title="desk.title", text="desk.not_found")
        state = None
        if task.user_id:
            state = await services.service.user_state(task.user_id)
        now, t = services.desk.now(), _words(request)
        policy = services.policy
        return await page(request, "desk_task.html", session, status, r=row(task, now, t), task=task, state=state,
                    mine=session.holds(task), message=message, outcomes=OUTCOMES, when=_when, now=now,
                    change=lambda raw: change_text(raw, t),
                    channel_label=lambda n: policy.label("channel", n, locale_for(request)) if n in policy.channels else n,
                    category_label=lambda n: policy.label("category", n, locale_for(request)),
                    channels=policy.channels, categories=policy.categories)

    async def task_view(request: Request) -> Response:
        got = await checked(request)
        if isinstance(got, Response):
            return got
        return await task_page(request, got[0])

    async def act(request: Request) -> Response:
        got = await checked(request)
        if isinstance(got, Response):
            return got
        session, form = got
        services = web.tenants.get(session.tenant)
        task_id, action = request.path_params["task_id"], request.path_params["action"]
        if action not in ("claim", "resolve"):
            return plain("no such action", 404)
        try:
            if action == "claim":
                await services.desk.claim(task_id, session.agent, session.key_id)
            else:
                await services.desk.resolve(task_id, session.agent, session.key_id, form.get("outcome", ""),
                                                form.get("note", ""), form.get("lift_hold") == "on")
        except PreconditionFailed as exc:  # the task page, saying who has it: the agent's next step is there
            return await task_page(request, session, str(exc), 409)
        except (InvalidArgument, NotFound) as exc:  # a form to correct on the same page; a task gone: its 404 page
            return await task_page(request, session, str(exc), 400)
        log.info("desk_action", action=action, task_id=task_id, agent=session.agent)
        return RedirectResponse(f"/desk/tasks/{task_id}?lang={locale_for(request)}", status_code=303)

    # -- campaign health --------------------------------------------------------------------------

    async def health(request: Request) -> Response:
        got = await checked(request)
        if isinstance(got, Response):
            return got
        session, _ = got
        services = web.tenants.get(session.tenant)
        experience = await services.health.experience("7d")
        ranked, _ = await services.health.ranked(False, "7d", 100, "")
        rows = [{"health": h, "points": spark(await services.health.trail("campaign", h.name))} for h in ranked]
        return await page(request, "desk_health.html", session, experience=experience, rows=rows)

    return [
        Route("/desk/login", login_page, methods=["GET"]), Route("/desk/login", login, methods=["POST"]),
        Route("/desk/logout", logout, methods=["POST"]),
        Route("/desk", queue, methods=["GET"]), Route("/desk/events", events, methods=["GET"]),
        Route("/desk/health", health, methods=["GET"]),
        Route("/desk/tasks/{task_id}", task_view, methods=["GET"]),
        Route("/desk/tasks/{task_id}/{action:str}", act, methods=["POST"]),
    ]


class LiveStream(StreamingResponse):
    """A server-sent event stream that says when it ends, however it ends (done, stopped, the client gone)."""

    def __init__(self, content: AsyncIterator[str], on_close: Callable[[], None]) -> None:
        super().__init__(content, media_type="text/event-stream", headers={"x-accel-buffering": "no"})
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._on_close()


def _words(request: Request) -> dict[str, str]:
    return i18n.words(locale_for(request))


def _when(ms: int, zone: str = "UTC") -> str:
    return datetime.fromtimestamp(ms / 1000, clock.zone(zone)).strftime("%Y-%m-%d %H:%M %Z") if ms else ""
