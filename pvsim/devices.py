"""The virtual house's devices: what each load's device says back on MQTT, as its preset
says a real one would (docs/devices.md), so `pvopt run` reads the same reports from the house
as from real hardware.

A device whose preset reports nothing (the seed's firmware) says nothing: the house stays as
it always was for it.
"""

from __future__ import annotations

import json
import math
from typing import NamedTuple

from pvopt.devices.link import DeviceLink

POWER_STEP_W = 5.0  # a change of the measured power reported at once (Shelly's notifications)
POWER_EVERY_S = 10.0  # and at least this often even when steady (Tasmota's TelePeriod 10 s)
SHELLY_RPC = "shelly-gen2"  # the preset whose device answers each request on `<src>/rpc`


class Message(NamedTuple):
    topic: str
    payload: str
    retain: bool = False


class VirtualDevice:
    """One load's device: its availability (birth, and the Last Will the broker would publish
    when it drops off), its state after each command it obeys, its measured power."""

    def __init__(self, link: DeviceLink):
        self.link = link
        self.on = False
        self.percent = 0.0  # a dimmer's level, as its last command set it
        self.sent_w: float | None = None  # the power last reported
        self.sent_at = -math.inf

    @property
    def reports(self) -> bool:
        return bool(self.link.report_topics())

    def availability(self, online: bool) -> list[Message]:
        """Retained, like a birth message or a Last Will; coming back the device boots off
        and says so."""
        message = self.link.device_availability(online)
        out = [] if message is None else [Message(*message, retain=True)]
        if online:
            self.on, self.percent, self.sent_w = False, 0.0, None
            out += self._state(0.0, ("state",))
        return out

    def obeyed(self, payload: str, power_w: float, drawn_w: float, now: float) -> list[Message]:
        """After a command: the device's reply where its protocol has one (Shelly Gen2's RPC
        response), then its state, level and measured power."""
        was_on = self.on
        self.on = power_w > 0
        if self.link.dimmer:
            self.percent = self.link.wiring.parse_level(payload) or 0.0
        out = self._rpc_reply(payload, was_on)
        self.sent_w, self.sent_at = drawn_w, now
        return out + self._state(drawn_w, ("state", "power"))

    def measured(self, drawn_w: float, now: float) -> list[Message]:
        """Its power report, when it changed by more than `POWER_STEP_W` or is due."""
        sent = self.sent_w
        steady = sent is not None and abs(drawn_w - sent) <= POWER_STEP_W
        if steady and now - self.sent_at < POWER_EVERY_S:
            return []
        self.sent_w, self.sent_at = drawn_w, now
        return self._state(drawn_w, ("power",))

    def _state(self, drawn_w: float, kinds: tuple[str, ...]) -> list[Message]:
        return [
            Message(t, p) for t, p in self.link.device_state(self.on, self.percent, drawn_w, kinds)
        ]

    def _rpc_reply(self, payload: str, was_on: bool) -> list[Message]:
        """Shelly Gen2 answers each RPC frame on `<src>/rpc`: its id, the device as `src`, the
        caller as `dst`, and the method's result (Switch.Set: `was_on`; Light.Set: none)."""
        if self.link.preset != SHELLY_RPC:
            return []
        try:
            request = json.loads(payload)
            src, rid, method = request["src"], request["id"], request["method"]
        except (ValueError, KeyError, TypeError):
            return []
        result = {"was_on": was_on} if method == "Switch.Set" else None
        device = self.link.wiring.values["topic"]
        reply = {"id": rid, "src": device, "dst": src, "result": result}
        return [Message(f"{src}/rpc", json.dumps(reply, separators=(",", ":")))]
