"""The checks across sections, in one place: what pydantic cannot see one field at a time,
and the files the service will open."""

from __future__ import annotations

import difflib
from pathlib import Path

from machines.model import Kind
from machines.wiring import OWN_TOPICS
from pvopt.config.model import Config
from pvopt.kinds import (
    MeterTopics,
    battery_problems,
    battery_topics,
    load_kind,
    meter_preset,
    meter_source,
)

Located = list[tuple[tuple[str | int, ...], str]]  # (where, what is wrong)


def cross_section_problems(cfg: Config) -> Located:
    """Cross-entry rules pydantic cannot see one field at a time."""
    out: Located = []
    if cfg.battery is not None:
        out += [(("battery", *loc), m) for loc, m in battery_problems(cfg.battery)]
    seen_names: dict[str, int] = {}
    seen_ids: dict[int, int] = {}
    undrivable = False  # a device that cannot drive its load has no topics to compare
    for i, eq in enumerate(cfg.equipment):
        if eq.name in seen_names:
            out.append(
                (
                    ("equipment", i, "name"),
                    f"duplicate name {eq.name!r} (also equipment[{seen_names[eq.name]}])",
                )
            )
        seen_names.setdefault(eq.name, i)
        load_id = cfg.load_id(i)
        if load_id in seen_ids:
            out.append(
                (
                    ("equipment", i, "id"),
                    f"duplicate id {load_id} (also equipment[{seen_ids[load_id]}])",
                )
            )
        seen_ids.setdefault(load_id, i)
        verbs = "dimmer" if load_kind(eq.type_name()).actuation is Kind.DIMMER else "relay"
        if getattr(eq.device.model(), verbs) is None:
            undrivable = True
            out.append(
                (
                    ("equipment", i, "device", "preset"),
                    f"preset {eq.device.preset} has no {verbs}: section, and "
                    f"{eq.type_name()} is driven as a {verbs}",
                )
            )
    if cfg.mqtt.tls.key_file is not None and cfg.mqtt.tls.cert_file is None:
        out.append(
            (("mqtt", "tls", "key_file"), "key_file without cert_file: give the certificate too")
        )
    if cfg.forecast is not None:
        out += [(("forecast", key), msg) for key, msg in cfg.forecast.problems()]
    if cfg.regulation.relay_rule == "sun" and cfg.plant() is None:
        lacks = (
            "meter.pv_topic"
            if cfg.meter.pv_topic is None
            else "site.latitude and site.longitude (or the forecast's)"
        )
        out.append(
            (
                ("regulation", "relay_rule"),
                "relay_rule sun reads the sky off the PV production under the site's clear sky: "
                f"give {lacks}",
            )
        )
    if not undrivable:
        out += _topic_clashes(cfg)
    ids = {cfg.load_id(i) for i in range(len(cfg.equipment))}
    schedule_names: dict[str, int] = {}
    for i, sched in enumerate(cfg.schedules):
        if sched.name in schedule_names:
            out.append(
                (
                    ("schedules", i, "name"),
                    f"duplicate name {sched.name!r} (also schedules[{schedule_names[sched.name]}])"
                    ": the status and the planner tell schedules apart by name",
                )
            )
        schedule_names.setdefault(sched.name, i)
        if sched.load not in seen_names and not (
            str(sched.load).isdigit() and int(sched.load) in ids
        ):
            close = difflib.get_close_matches(str(sched.load), list(seen_names), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            out.append((("schedules", i, "load"), f"unknown load {sched.load!r}{hint}"))
    return out


def _topic_clashes(cfg: Config) -> Located:
    """One topic, one role: a topic read as two values, or both read and written by pvopt,
    mixes them up silently (a command would come back as a meter value)."""
    roles: list[tuple[str, tuple[str | int, ...], str]] = []  # (topic, where, what)
    m = cfg.meter
    read = meter_source(m).meter_topics()  # the topics this meter kind subscribes to
    for key in MeterTopics.model_fields:
        if getattr(m.topics, key) in read:
            roles.append((getattr(m.topics, key), ("meter", "topics", key), f"meter.topics.{key}"))
    if m.grid_topic and m.grid_topic in read:
        roles.append((m.grid_topic, ("meter", "grid_topic"), "meter.grid_topic"))
    if m.preset is not None:
        for topic in sorted(read):
            roles.append((topic, ("meter", "topic"), f"meter preset {m.preset}'s {topic}"))
    if m.pv_topic:
        roles.append((m.pv_topic, ("meter", "pv_topic"), "meter.pv_topic"))
    roles.append((m.tariff_topic, ("meter", "tariff_topic"), "meter.tariff_topic"))
    b = cfg.battery
    if b is not None and not battery_problems(b):
        bt = battery_topics(b)
        power, soc = ("power_topic", "soc_topic") if b.preset == "generic" else ("preset",) * 2
        roles.append((bt.power, ("battery", power), "the battery's power"))
        if bt.soc is not None:
            roles.append((bt.soc, ("battery", soc), "the battery's state of charge"))
    if cfg.forecast is not None and cfg.forecast.topic is not None:
        roles.append((cfg.forecast.topic, ("forecast", "topic"), "forecast.topic"))
    for i, eq in enumerate(cfg.equipment):
        topics = load_kind(eq.type_name()).topics(eq, cfg.load_id(i))
        if topics.temperature is not None:
            probe: tuple[str | int, ...] = ("equipment", i, "temperature_topic")
            roles.append((topics.temperature, probe, f"equipment[{i}]'s probe"))
        command: tuple[str | int, ...] = ("equipment", i, "command_topic")
        roles.append((topics.command, command, f"equipment[{i}]'s commands"))
        roles.append((topics.control, ("equipment", i, "id"), f"equipment[{i}]'s control"))
    out: Located = []
    first: dict[str, str] = {}
    for topic, where, what in roles:
        if topic.startswith(OWN_TOPICS):
            out.append((where, f"topic {topic!r} is under {OWN_TOPICS}, pvopt's own topics"))
        elif topic in first:
            out.append((where, f"topic {topic!r} is also {first[topic]}: one topic, one role"))
        else:
            first[topic] = what
    return out


def check_files(cfg: Config) -> Located:
    """What the service will open: TLS files that exist, can be read and hold what they
    should; a state store in a folder that exists."""
    import ssl

    out: Located = []
    tls = cfg.mqtt.tls
    readable = {}
    for key in ("ca_file", "cert_file", "key_file"):
        name = getattr(tls, key)
        if name is None:
            continue
        try:
            with open(name, "rb") as f:
                f.read(1)
            readable[key] = name
        except FileNotFoundError:
            out.append((("mqtt", "tls", key), f"{name}: no such file"))
        except IsADirectoryError:
            out.append((("mqtt", "tls", key), f"{name}: a folder, not a file"))
        except OSError as exc:
            out.append((("mqtt", "tls", key), f"{name}: cannot read: {exc.strerror or exc}"))
    if "ca_file" in readable:
        try:
            ssl.create_default_context(cafile=readable["ca_file"])
        except (ssl.SSLError, ValueError):
            out.append((("mqtt", "tls", "ca_file"), f"{tls.ca_file}: not a PEM certificate"))
    if "cert_file" in readable and (tls.key_file is None or "key_file" in readable):
        try:
            ssl.create_default_context().load_cert_chain(tls.cert_file or "", tls.key_file)
        except (ssl.SSLError, ValueError):
            key = "cert_file" if tls.key_file is None else "key_file"
            out.append(
                (("mqtt", "tls", key), "the certificate and key are not a PEM pair that matches")
            )
    store = Path(cfg.state.path)
    if store.is_dir():
        out.append((("state", "path"), f"{store} is a folder, not a file: name the store file"))
    elif not store.parent.is_dir():
        out.append((("state", "path"), f"{store.parent}: no such folder for the state store"))
    return out


def slow_meter_warning(cfg: Config) -> str | None:
    """`config check`'s one line when the meter preset reports too seldom for this house (a
    ZLinky on zigbee2mqtt: about once a minute): too slow to regulate a dimmer well, or shorter
    than `stale_after_s`; not an error, the config works."""
    preset = meter_preset(cfg.meter)
    every = None if preset is None else preset.reports_every_s
    if preset is None or every is None:
        return None
    said = []
    if any(s.kind is Kind.DIMMER for s in cfg.specs()):
        said.append(
            "too slow to regulate a dimmer well (the surplus changes between reports, so a "
            "dimmer lags it and the house imports or exports meanwhile); a meter that reports "
            "every few seconds is better for a dimmer"
        )
    if cfg.meter.stale_after_s <= every:
        said.append(
            f"meter.stale_after_s ({cfg.meter.stale_after_s:g} s) is shorter than that, so "
            f"surplus loads are shed between reports: set it above {every:.0f}"
        )
    if not said:
        return None
    return f"meter preset {preset.name} reports about once every {every:.0f} s: " + "; ".join(said)
