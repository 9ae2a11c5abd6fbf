"""The page's HTTP routes (Starlette): the page and its assets, the live stream, the read-only
views, login, and commands through the service's own command path."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from machines.commands import parse_control_json
from machines.loads import CommandError
from pvopt.adapters.web import views
from pvopt.adapters.web.auth import COOKIE, SESSION_S, Guard
from pvopt.adapters.web.hub import Hub
from pvopt.adapters.web.port import Site
from pvopt.config import Config
from state.store import StateStore

STATIC = Path(__file__).parent / "static"
MAX_BODY = 4096  # a command is a few dozen bytes
PING_S = 15.0  # keeps proxies and phones from closing an idle stream
HEADERS = {
    # everything from this origin: nothing is fetched from outside the house
    "content-security-policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}

StoreOpener = Callable[[], StateStore | None]


def refuse(status: int, error: str) -> JSONResponse:
    return JSONResponse({"ok": False, "error": error}, status_code=status)


class Guarded:
    """Security headers on every response; the loopback Host check before any route."""

    def __init__(self, app: ASGIApp, guard: Guard):
        self.app, self.guard = app, guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        why = self.guard.host_refused(Request(scope))
        if why is not None:
            await refuse(403, why)(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for key, value in HEADERS.items():
                    headers.setdefault(key, value)
                if scope["path"].startswith("/api/"):
                    headers.setdefault("cache-control", "no-store")
            await send(message)

        await self.app(scope, receive, with_headers)


async def read_body(request: Request) -> bytes | None:
    """The raw body when it is at most MAX_BODY bytes, else None (never reads more)."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            return None
    return body


def build_app(
    cfg: Config,
    site: Site,
    hub: Hub,
    guard: Guard,
    open_store: StoreOpener,
    clock: Callable[[], float] = time.time,
) -> ASGIApp:
    """The ASGI app; `open_store` gives a read-only store (or None before the first write)."""
    tz = cfg.site.tz
    names = [s.name for s in cfg.specs()]
    schedules = cfg.schedule_list()

    def reader(
        handler: Callable[[Request], Awaitable[Response]],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def wrapped(request: Request) -> Response:
            if not guard.may_read(request):
                return refuse(401, "log in to see the house")
            return await handler(request)

        return wrapped

    def actor(
        handler: Callable[[Request, bytes], Awaitable[Response]],
        *,
        login: bool = False,
    ) -> Callable[[Request], Awaitable[Response]]:
        """Every state-changing request: same-site, custom header, JSON, small; then (except
        the login itself) authenticated."""

        async def wrapped(request: Request) -> Response:
            why = guard.cross_site(request)
            if why is not None:
                return refuse(403, why)
            if not login and not guard.authenticated(request):
                return refuse(401, "wrong or missing password: log in first")
            body = await read_body(request)
            if not isinstance(body, bytes):
                return refuse(413, f"body over {MAX_BODY} bytes")
            return await handler(request, body)

        return wrapped

    async def index(_request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"cache-control": "no-cache"})

    async def session(request: Request) -> Response:
        return JSONResponse(
            {
                "password_required": guard.required,
                "logged_in": guard.authenticated(request),
                "can_read": guard.may_read(request),
                "loads": names,
            }
        )

    async def login(request: Request, body: bytes) -> Response:
        if not guard.required:
            return JSONResponse({"ok": True})
        if guard.throttled():
            return refuse(429, "too many wrong passwords: wait a minute")
        try:
            password = json.loads(body).get("password")
        except (ValueError, AttributeError):
            password = None
        if not isinstance(password, str):
            return refuse(400, "password missing")
        token = guard.login(password)
        if token is None:
            await asyncio.sleep(guard.failure_delay_s)  # the event loop keeps serving meanwhile
            return refuse(401, "wrong password")
        response = JSONResponse({"ok": True})
        response.set_cookie(
            COOKIE,
            token,
            max_age=int(SESSION_S),
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )
        return response

    async def logout(request: Request, _body: bytes) -> Response:
        guard.logout(request)
        response = JSONResponse({"ok": True})
        response.delete_cookie(COOKIE, path="/")
        return response

    async def status(_request: Request) -> Response:
        if hub.latest is None:
            return refuse(503, "the service has not ticked yet")
        return Response(hub.latest, media_type="application/json")

    async def events(_request: Request) -> Response:
        queue = hub.subscribe()
        if queue is None:
            return refuse(503, "too many live pages open")

        async def stream() -> AsyncIterator[str]:
            try:
                if hub.latest is not None:
                    yield f"data: {hub.latest}\n\n"
                while True:
                    try:
                        text = await asyncio.wait_for(queue.get(), PING_S)
                    except TimeoutError:
                        yield ": ping\n\n"
                        continue
                    if text is None:
                        return
                    yield f"data: {text}\n\n"
            finally:
                hub.unsubscribe(queue)

        return StreamingResponse(
            stream(), media_type="text/event-stream", headers={"x-accel-buffering": "no"}
        )

    async def today(request: Request) -> Response:
        now = clock()
        try:
            day = date.fromisoformat(request.query_params.get("day", ""))
        except ValueError:
            day = views.local_today(now, tz)
        doc = await run_in_threadpool(lambda: views.today(open_store(), tz, names, day))
        return JSONResponse(doc)

    async def history(_request: Request) -> Response:
        now = clock()
        transitions = await run_in_threadpool(lambda: views.history(open_store(), tz))
        return JSONResponse(
            {"transitions": transitions, "schedules": views.schedules(schedules, now, tz)}
        )

    async def command(_request: Request, body: bytes) -> Response:
        try:
            cmd = parse_control_json(body)
        except CommandError as exc:
            return refuse(400, str(exc))
        # the service's lock (or queue) may wait for a tick: off the event loop
        outcome = await run_in_threadpool(site.submit, cmd, "web")
        if not outcome.ok:
            return refuse(409, outcome.message)
        return JSONResponse({"ok": True, "message": outcome.message})

    routes = [
        Route("/", index),
        Route("/api/session", session),
        Route("/api/login", actor(login, login=True), methods=["POST"]),
        Route("/api/logout", actor(logout, login=True), methods=["POST"]),
        Route("/api/status", reader(status)),
        Route("/api/events", reader(events)),
        Route("/api/today", reader(today)),
        Route("/api/history", reader(history)),
        Route("/api/command", actor(command), methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    return Guarded(Starlette(routes=routes), guard)
