"""Who may read and who may act: a password from the config, in-memory sessions in an
HttpOnly SameSite=Strict cookie, and the cross-site checks every state-changing request passes."""

from __future__ import annotations

import hmac
import secrets
import time
from collections import deque
from collections.abc import Callable

from starlette.requests import Request

from pvopt.config import WebConfig

COOKIE = "pvopt_session"
SESSION_S = 30 * 86400.0  # a phone stays logged in for a month
MAX_SESSIONS = 32  # the oldest is dropped: a guessing loop cannot fill memory
FAILURES_PER_MIN = 10  # then logins are refused for the rest of the minute
CSRF_HEADER = "x-pvopt"  # a custom header: a cross-site form cannot send it without CORS
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}


class Guard:
    """Sessions and checks; all state in memory (a restart logs everyone out, on purpose)."""

    def __init__(self, cfg: WebConfig, clock: Callable[[], float] = time.monotonic):
        self.cfg = cfg
        self.clock = clock
        self.sessions: dict[str, float] = {}  # token -> expiry
        self.failures: deque[float] = deque()
        self.failure_delay_s = 0.5  # slows a guessing loop; tests set 0 rather than wait

    @property
    def required(self) -> bool:
        return self.cfg.password is not None

    def login(self, password: str) -> str | None:
        """A new session token for the right password; None (and a counted failure) else."""
        assert self.cfg.password is not None
        expected = self.cfg.password.get_secret_value().encode()
        if not hmac.compare_digest(password.encode(), expected):
            self.failures.append(self.clock())
            return None
        now = self.clock()
        self.sessions = {t: exp for t, exp in self.sessions.items() if exp > now}
        while len(self.sessions) >= MAX_SESSIONS:
            del self.sessions[min(self.sessions, key=self.sessions.__getitem__)]
        token = secrets.token_urlsafe(32)
        self.sessions[token] = now + SESSION_S
        return token

    def throttled(self) -> bool:
        """Too many wrong passwords in the last minute."""
        now = self.clock()
        while self.failures and now - self.failures[0] > 60:
            self.failures.popleft()
        return len(self.failures) >= FAILURES_PER_MIN

    def logout(self, request: Request) -> None:
        self.sessions.pop(request.cookies.get(COOKIE, ""), None)

    def authenticated(self, request: Request) -> bool:
        """No password configured (loopback only), a live session cookie, or the password as a
        bearer token (scripts)."""
        if not self.required:
            return True
        token = request.cookies.get(COOKIE)
        if token is not None:
            expiry = self.sessions.get(token)
            if expiry is not None and expiry > self.clock():
                return True
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer ") and self.cfg.password is not None:
            given = auth[7:].strip().encode()
            return hmac.compare_digest(given, self.cfg.password.get_secret_value().encode())
        return False

    def may_read(self, request: Request) -> bool:
        return self.cfg.read_without_password or self.authenticated(request)

    def host_refused(self, request: Request) -> str | None:
        """Without a password the page is loopback only: a foreign Host header means DNS
        rebinding (a web site pointing its own name at 127.0.0.1)."""
        if self.required:
            return None
        host = request.headers.get("host", "").rpartition(":")[0] or request.headers.get("host", "")
        if host not in LOOPBACK_HOSTS:
            return f"host {host!r} refused: without a password the page answers loopback only"
        return None

    @staticmethod
    def cross_site(request: Request) -> str | None:
        """Why a state-changing request is refused as cross-site, or None when it is ours."""
        fetch_site = request.headers.get("sec-fetch-site")
        if fetch_site is not None and fetch_site not in ("same-origin", "none"):
            return f"cross-site request refused (Sec-Fetch-Site: {fetch_site})"
        origin = request.headers.get("origin")
        if origin is not None:
            own = f"{request.url.scheme}://{request.headers.get('host', '')}"
            if origin != own:
                return f"cross-site request refused (Origin {origin})"
        if request.headers.get(CSRF_HEADER) != "1":
            return f"request refused: the {CSRF_HEADER} header is missing"
        if not request.headers.get("content-type", "").startswith("application/json"):
            return "request refused: JSON only"
        return None
