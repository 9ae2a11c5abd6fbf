"""`pvopt devices`: the device presets pvopt speaks, and what each reads back."""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table

from pvopt.cli.common import console, fail
from pvopt.config import Config
from pvopt.devices import UnknownPreset, presets, resolve


@click.command()
@click.argument("preset", required=False)
@click.option("--topic", default="<topic>", show_default=True, help="The device's topic.")
@click.option("--channel", default=0, show_default=True, type=click.IntRange(0, 15))
def devices(preset: str | None, topic: str, channel: int) -> None:
    """List the device presets; with PRESET, its topics and payloads for --topic/--channel."""
    registry = presets()
    if preset is None:
        table = Table("preset", "devices", "drives", "reads back", title="device presets")
        for name in registry.names():
            p = registry.get(name)
            drives = [v for v, verbs in (("relay", p.relay), ("dimmer", p.dimmer)) if verbs]
            table.add_row(name, ", ".join(p.examples), ", ".join(drives), ", ".join(p.reads_back()))
        table.add_row("custom", "any MQTT device (docs/devices.md)", "relay, dimmer", "as written")
        console.print(table)
        return
    try:
        p = registry.get(preset)
    except UnknownPreset as exc:
        fail(str(exc))
    wiring = resolve(p, topic, channel)
    table = Table("verb", "topic", "payload", title=f"{p.title} — {topic} channel {channel}")
    if p.relay is not None:
        for on in (True, False):
            table.add_row(f"relay {'on' if on else 'off'}", *wiring.switch(on))
        _reads(table, "relay", wiring.state_topic(False), wiring.power_topic(False))
    if p.dimmer is not None:
        for percent in (50.0, 0.0):
            table.add_row(f"dimmer {percent:.0f} %", *wiring.level(percent, 0.0))
        _reads(table, "dimmer", wiring.state_topic(True), wiring.power_topic(True))
    online = wiring.availability_topic()
    if online is not None:
        table.add_row("reads availability", online, "")
    console.print(table)
    if p.setup:
        console.print(f"in the device: {p.setup}", highlight=False, markup=False)


def _reads(table: Table, what: str, state: str | None, power: str | None) -> None:
    if state is not None:
        table.add_row(f"reads {what} state", state, "")
    if power is not None:
        table.add_row(f"reads {what} power", power, "")


def wiring_summary(cfg: Config) -> list[dict[str, Any]]:
    """Per load, what `config check` shows of its device: the resolved command topic, the
    payload at full power and at 0 W, and where it reports."""
    out = []
    for w in cfg.wiring():
        entry: dict[str, Any] = {
            "load": w.spec.name,
            "preset": w.codec.preset,
            "command": w.command_topic,
            "full": w.payload(w.spec.max_w),
            "off": w.payload(0.0),
        }
        if w.spec.kind.value == "dimmer":
            entry["half"] = w.payload(w.spec.max_w / 2)
        if w.topics.reports:
            entry["reads"] = list(w.topics.reports)
        out.append(entry)
    return out


COMMANDS = [devices]
