"""The forecast services' one HTTP call: a GET with a timeout through the standard library,
every failure turned into a ForecastError that names the source."""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.parse
import urllib.request
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from machines.errors import ForecastError, ForecastRateLimited, ForecastUnavailable

MAX_BYTES = 2_000_000  # two days of hours are ~10 kB; anything this big is not a forecast


def _user_agent() -> str:
    # Forecast.Solar asks integrations to send one (doc.forecast.solar/for_developers)
    try:
        return f"pvopt/{version('pvopt')}"
    except PackageNotFoundError:
        return "pvopt"


def get_json(url: str, *, source: str, timeout_s: float) -> Any:
    """The decoded JSON answer to a GET of `url`: `ForecastUnavailable` when the server cannot
    be reached or fails (5xx), `ForecastRateLimited` on HTTP 429, `ForecastError` for any other
    refusal or an answer that is not JSON."""
    host = urllib.parse.urlsplit(url).netloc
    request = urllib.request.Request(
        url, headers={"Accept": "application/json", "User-Agent": _user_agent()}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            body = response.read(MAX_BYTES + 1)
    except urllib.error.HTTPError as exc:
        said = _reason(exc.read(MAX_BYTES))
        if exc.code == 429:
            raise ForecastRateLimited(
                f"{source}: rate limit reached (HTTP 429 from {host}){said}",
                _retry_after(exc.headers.get("Retry-After")),
            ) from None
        if exc.code >= 500:
            raise ForecastUnavailable(f"{source}: HTTP {exc.code} from {host}{said}") from None
        raise ForecastError(f"{source}: HTTP {exc.code} from {host}{said}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        why = getattr(exc, "reason", None) or exc
        raise ForecastUnavailable(f"{source}: cannot reach {host}: {why}") from None
    if len(body) > MAX_BYTES:
        raise ForecastError(f"{source}: the answer from {host} is over {MAX_BYTES} bytes")
    try:
        return json.loads(body)
    except ValueError:
        raise ForecastError(f"{source}: the answer from {host} is not JSON") from None


def _reason(body: bytes) -> str:
    """What the server said, in a few words: Open-Meteo's `reason`, Forecast.Solar's
    `message.text`; nothing when the body says nothing readable."""
    try:
        doc = json.loads(body)
    except ValueError:
        return ""
    if not isinstance(doc, dict):
        return ""
    said = doc.get("reason")
    message = doc.get("message")
    if said is None and isinstance(message, dict):
        said = message.get("text")
    return f": {str(said)[:200]}" if said else ""


def _retry_after(header: str | None) -> float | None:
    """Retry-After in seconds (its HTTP-date form is left to the regular period)."""
    try:
        return float(header) if header is not None else None
    except ValueError:
        return None
