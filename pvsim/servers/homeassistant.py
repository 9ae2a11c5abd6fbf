"""A private Home Assistant Core on a loopback port, configured without a browser: its MQTT
integration points at a given broker, an owner with a long-lived token can use the REST and
websocket APIs. Only what pvopt needs is loaded (mqtt, api, energy and their dependencies).

Home Assistant lives in its own venv (`make ha-venv`, pinned by the `ha` extra), so the dev
venv stays quick to build; `PVOPT_HASS` may name another `hass` executable.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
import uuid
from pathlib import Path
from typing import Any

import requests

from pvsim.servers.loopback import LoopbackServer, ServerMissing, free_port

ROOT = Path(__file__).resolve().parents[2]
HASS_VERSION = "2024.3.3"  # the newest that runs on Python 3.11; keep in step with pyproject


def find_hass() -> str:
    """`$PVOPT_HASS`, else the project's `.venv-ha/bin/hass`."""
    path = os.environ.get("PVOPT_HASS") or str(ROOT / ".venv-ha" / "bin" / "hass")
    if not Path(path).exists():
        raise ServerMissing(f"Home Assistant not found at {path}: run `make ha-venv`")
    return path


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def access_token(refresh_id: str, jwt_key: str, lifetime_s: int = 86400) -> str:
    """An access token as Home Assistant signs them (HS256, issuer = the refresh token's id)."""
    now = int(time.time())
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = _b64(json.dumps({"iss": refresh_id, "iat": now, "exp": now + lifetime_s}).encode())
    signed = f"{header}.{claims}".encode()
    return f"{header}.{claims}." + _b64(hmac.new(jwt_key.encode(), signed, hashlib.sha256).digest())


def _store(key: str, data: dict[str, Any], version: int = 1, minor: int = 1) -> str:
    return json.dumps({"version": version, "minor_version": minor, "key": key, "data": data})


class HomeAssistant(LoopbackServer):
    """`start()` returns once the REST API answers; `stop()`/`start()` again is a restart with
    the same state (entity registry, recorder)."""

    name = "homeassistant"

    def __init__(self, mqtt_port: int, *, port: int | None = None, time_zone: str = "UTC"):
        self.hass = find_hass()
        super().__init__("pvopt-hass-")
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._write_config(mqtt_port, time_zone)

    def _write_config(self, mqtt_port: int, time_zone: str) -> None:
        conf = self.dir
        (conf / "configuration.yaml").write_text(
            "homeassistant:\n"
            "  name: pvopt test\n  latitude: 48.85\n  longitude: 2.35\n  elevation: 35\n"
            f"  unit_system: metric\n  time_zone: {time_zone}\n  currency: EUR\n  country: FR\n"
            f"http:\n  server_host: 127.0.0.1\n  server_port: {self.port}\n"
            "api:\n"
            "energy:\n"
            f"recorder:\n  db_url: sqlite:///{conf / 'recorder.db'}\n  commit_interval: 1\n"
            "logger:\n  default: warning\n  logs:\n    homeassistant.components.mqtt: info\n",
            encoding="utf-8",
        )
        storage = conf / ".storage"
        storage.mkdir()
        user_id, refresh_id = uuid.uuid4().hex, uuid.uuid4().hex
        self.jwt_key = secrets.token_hex(64)
        self.refresh_id = refresh_id
        now = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
        groups = [
            {"id": "system-admin", "name": "Administrators"},
            {"id": "system-users", "name": "Users"},
            {"id": "system-read-only", "name": "Read Only"},
        ]
        auth = {
            "users": [
                {
                    "id": user_id,
                    "group_ids": ["system-admin"],
                    "is_owner": True,
                    "is_active": True,
                    "name": "pvopt test",
                    "system_generated": False,
                    "local_only": False,
                }
            ],
            "groups": groups,
            "credentials": [],
            "refresh_tokens": [
                {
                    "id": refresh_id,
                    "user_id": user_id,
                    "client_id": None,
                    "client_name": "pvopt test",
                    "client_icon": None,
                    "token_type": "long_lived_access_token",
                    "created_at": now,
                    "access_token_expiration": 864000.0,
                    "token": secrets.token_hex(64),
                    "jwt_key": self.jwt_key,
                    "last_used_at": None,
                    "last_used_ip": None,
                    "expire_at": None,
                    "credential_id": None,
                    "version": HASS_VERSION,
                }
            ],
        }
        (storage / "auth").write_text(_store("auth", auth), encoding="utf-8")
        entry = {
            "entry_id": uuid.uuid4().hex,
            "version": 1,
            "minor_version": 1,
            "domain": "mqtt",
            "title": "127.0.0.1",
            "data": {"broker": "127.0.0.1", "port": mqtt_port, "discovery": True},
            "options": {},
            "pref_disable_new_entities": False,
            "pref_disable_polling": False,
            "source": "user",
            "unique_id": None,
            "disabled_by": None,
        }
        (storage / "core.config_entries").write_text(
            _store("core.config_entries", {"entries": [entry]}), encoding="utf-8"
        )
        (storage / "onboarding").write_text(
            _store("onboarding", {"done": ["user", "core_config", "analytics", "integration"]}, 4),
            encoding="utf-8",
        )

    @property
    def token(self) -> str:
        return access_token(self.refresh_id, self.jwt_key)

    def command(self) -> list[str]:
        return [self.hass, "--config", str(self.dir), "--skip-pip", "--log-no-color"]

    def ready(self) -> bool:
        try:
            return requests.get(f"{self.url}/api/", headers=self.headers(), timeout=1).ok
        except requests.RequestException:
            return False

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    # -- REST ---------------------------------------------------------------------------------
    def states(self) -> dict[str, dict[str, Any]]:
        r = requests.get(f"{self.url}/api/states", headers=self.headers(), timeout=10)
        r.raise_for_status()
        return {s["entity_id"]: s for s in r.json()}

    def call(self, domain: str, service: str, **data: Any) -> None:
        r = requests.post(
            f"{self.url}/api/services/{domain}/{service}",
            headers=self.headers(),
            json=data,
            timeout=10,
        )
        r.raise_for_status()

    def template(self, template: str) -> str:
        r = requests.post(
            f"{self.url}/api/template",
            headers=self.headers(),
            json={"template": template},
            timeout=10,
        )
        r.raise_for_status()
        return r.text

    # -- websocket ----------------------------------------------------------------------------
    def ws(self, *messages: dict[str, Any]) -> list[Any]:
        """Send websocket commands in one authenticated session; their results, in order."""
        import websocket  # websocket-client, a dev dependency

        conn = websocket.create_connection(f"ws://127.0.0.1:{self.port}/api/websocket", timeout=30)
        try:
            assert json.loads(conn.recv())["type"] == "auth_required"
            conn.send(json.dumps({"type": "auth", "access_token": self.token}))
            reply = json.loads(conn.recv())
            if reply["type"] != "auth_ok":
                raise RuntimeError(f"Home Assistant refused the token: {reply}")
            out = []
            for n, msg in enumerate(messages, start=1):
                conn.send(json.dumps({"id": n, **msg}))
                while True:
                    reply = json.loads(conn.recv())
                    if reply.get("id") == n and reply["type"] == "result":
                        break
                if not reply["success"]:
                    raise RuntimeError(f"{msg['type']}: {reply['error']}")
                out.append(reply["result"])
            return out
        finally:
            conn.close()
