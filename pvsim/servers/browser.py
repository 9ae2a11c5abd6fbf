"""A headless Chromium driven over the DevTools protocol, just enough to screenshot a Home
Assistant page as a signed-in user (its token put in the page's localStorage, as the frontend
keeps it). No Playwright needed: Debian's chromium and websocket-client."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

from pvsim.servers.loopback import free_port

# true once `text` shows anywhere in the page, shadow roots included (HA's frontend is made of them)
_DEEP_TEXT = """(function find(node, text) {
  if (!node) return false;
  if (node.shadowRoot && find(node.shadowRoot, text)) return true;
  for (const child of node.children || []) if (find(child, text)) return true;
  return node.nodeType === 1 && node.children.length === 0
    && (node.textContent || '').includes(text);
})(document.documentElement, %s)"""


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Browser:
    """One headless tab; `close()` ends Chromium and removes its profile."""

    def __init__(self, width: int = 1280, height: int = 1500):
        import websocket  # websocket-client, a dev dependency

        binary = chromium()
        if binary is None:
            raise RuntimeError("no chromium on PATH")
        self.profile = Path(tempfile.mkdtemp(prefix="pvopt-chromium-"))
        port = free_port()
        self.proc = subprocess.Popen(
            [
                binary,
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                f"--remote-debugging-port={port}",
                f"--user-data-dir={self.profile}",
                f"--window-size={width},{height}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.n = 0
        deadline = time.monotonic() + 30
        while True:
            try:
                pages = requests.get(f"http://127.0.0.1:{port}/json/list", timeout=1).json()
                page = next(p for p in pages if p["type"] == "page")
                break
            except (requests.RequestException, StopIteration, ValueError):
                if time.monotonic() > deadline:
                    self.close()
                    raise RuntimeError("chromium did not open its DevTools port") from None
                time.sleep(0.1)
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=30)

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        self.n += 1
        self.ws.send(json.dumps({"id": self.n, "method": method, "params": params}))
        while True:
            reply = json.loads(self.ws.recv())
            if reply.get("id") == self.n:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return dict(reply.get("result", {}))

    def evaluate(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")

    def goto(self, url: str) -> None:
        self.send("Page.navigate", url=url)

    def wait_text(self, text: str, timeout_s: float = 60) -> None:
        """Poll until `text` is rendered."""
        deadline = time.monotonic() + timeout_s
        while not self.evaluate(_DEEP_TEXT % json.dumps(text)):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{text!r} never appeared")
            time.sleep(0.2)

    def screenshot(self, path: Path) -> None:
        data = self.send("Page.captureScreenshot", format="png")["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        if getattr(self, "ws", None) is not None:
            self.ws.close()
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)


def screenshot_home_assistant(
    url: str, token: str, path_in_ui: str, wait_for_text: str, out: Path
) -> None:
    """Sign in by token (the frontend's `hassTokens`), open `path_in_ui`, wait, screenshot."""
    browser = Browser()
    try:
        browser.goto(f"{url}/manifest.json")  # same origin, nothing to run: set the token
        tokens = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": 86400,
            "hassUrl": url,
            "clientId": f"{url}/",
            "expires": int(time.time() * 1000) + 86_400_000,
            "refresh_token": "",
        }
        deadline = time.monotonic() + 30
        while browser.evaluate("location.pathname") != "/manifest.json":
            if time.monotonic() > deadline:
                raise RuntimeError("Home Assistant's origin never loaded")
            time.sleep(0.1)
        browser.evaluate(f"localStorage.setItem('hassTokens', {json.dumps(json.dumps(tokens))})")
        browser.goto(f"{url}{path_in_ui}")
        try:
            browser.wait_text(wait_for_text)
        finally:
            browser.screenshot(out)  # what it shows, even when the text never came
    finally:
        browser.close()
