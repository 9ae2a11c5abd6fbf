"""uvicorn in a thread of its own, with its own event loop: the page can be slow, busy or
broken and the regulator's tick never waits for it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvicorn

from pvopt.adapters.web import views
from pvopt.adapters.web.app import build_app
from pvopt.adapters.web.auth import Guard
from pvopt.adapters.web.hub import Hub
from pvopt.adapters.web.port import Site
from pvopt.config import Config
from state.store import SqliteStore, StateStore, StoreError

log = logging.getLogger(__name__)

START_WAIT_S = 5.0
STOP_WAIT_S = 5.0


class WebServer:
    """`start()`, `push(status)` from any thread, `stop()`."""

    def __init__(self, cfg: Config, site: Site, clock: Callable[[], float] = time.time):
        assert cfg.web is not None
        self.web = cfg.web
        self.state_path = cfg.state.path
        self.hub = Hub()
        self.guard = Guard(cfg.web)
        self._store: StateStore | None = None
        self._store_lock = threading.Lock()
        app = build_app(cfg, site, self.hub, self.guard, self.open_store, clock)
        self.server = uvicorn.Server(
            uvicorn.Config(
                app,
                host=self.web.host,
                port=self.web.port,
                loop="asyncio",
                http="h11",
                ws="none",
                lifespan="off",
                access_log=False,
                log_level="warning",
                limit_concurrency=100,  # then 503: a flood costs the page, not the house
                timeout_keep_alive=5,
                timeout_graceful_shutdown=2,
                server_header=False,
            )
        )
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread = threading.Thread(target=self._run, name="pvopt-web", daemon=True)

    @property
    def url(self) -> str:
        host = f"[{self.web.host}]" if ":" in self.web.host else self.web.host
        return f"http://{host}:{self.web.port}/"

    def start(self) -> None:
        """Listen; a port in use is logged and the service runs on without its page."""
        self.thread.start()
        deadline = time.monotonic() + START_WAIT_S
        while not self.server.started and self.thread.is_alive():
            if time.monotonic() > deadline:
                break
            time.sleep(0.02)
        if self.server.started:
            log.info("web page on %s", self.url)
        else:
            log.error("web page: cannot listen on %s; running without it", self.web.listen)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except (SystemExit, Exception):  # uvicorn exits on a bind error: keep the service
            log.exception("web page stopped")

    async def _serve(self) -> None:
        self.loop = asyncio.get_running_loop()
        await self.server.serve()

    def push(self, doc: dict[str, Any]) -> None:
        """Hand the status to the page's loop: O(1) for the caller, never blocks."""
        loop = self.loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(self._publish, doc)

    def _publish(self, doc: dict[str, Any]) -> None:
        # worded and serialised once, in the page's thread
        self.hub.publish(json.dumps(views.page_status(doc)))

    def stop(self) -> None:
        """End the live streams, stop listening, wait a little."""
        loop = self.loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self.hub.publish, None)
        self.server.should_exit = True
        self.thread.join(STOP_WAIT_S)
        with self._store_lock:
            if self._store is not None:
                self._store.close()
                self._store = None

    def open_store(self) -> StateStore | None:
        """A reader of the service's SQLite store (WAL: reads never block its writes), opened
        once it exists."""
        with self._store_lock:
            if self._store is None and Path(self.state_path).exists():
                try:
                    self._store = SqliteStore(self.state_path, read_only=True)
                except StoreError as exc:
                    log.warning("web page: %s", exc)
            return self._store
