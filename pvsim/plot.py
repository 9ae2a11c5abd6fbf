"""A day at a glance: PV, base load, each load, grid import/export and water temperature."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import matplotlib

matplotlib.use("Agg")  # files only: the Pi has no screen
import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np


def plot_series(series: dict[str, np.ndarray], tz: ZoneInfo, title: str, out: str | Path) -> None:
    """Write the simulator's recorded series as a two-panel PNG."""
    t = [datetime.fromtimestamp(x, tz) for x in series["t"]]
    fig, (ax, ax_t) = plt.subplots(
        2, 1, figsize=(13, 8), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    ax.fill_between(t, series["pv"], color="gold", alpha=0.5, label="PV")
    ax.plot(t, series["base"], color="dimgray", lw=0.7, label="base load")
    stack = np.zeros_like(series["pv"])
    for key, values in series.items():
        if key.startswith("load:"):
            ax.fill_between(t, stack, stack + values, alpha=0.6, step="post", label=key[5:])
            stack = stack + values
    grid = series["grid"]
    ax.plot(t, np.clip(grid, 0, None), color="red", lw=0.7, label="grid import")
    ax.plot(t, -np.clip(grid, None, 0), color="green", lw=0.7, label="grid export")
    if "battery" in series:  # + charging
        ax.plot(t, series["battery"], color="purple", lw=0.7, label="battery (+ charging)")
    ax.set_ylabel("W")
    ax.set_title(title)
    ax.legend(loc="upper left", ncols=4, fontsize=8)
    ax.grid(alpha=0.3)
    if not np.isnan(series["temp"]).all():
        ax_t.plot(t, series["temp"], color="firebrick", lw=1)
    ax_t.set_ylabel("water °C")
    if "battery_soc" in series:
        ax_soc = ax_t.twinx()
        ax_soc.plot(t, series["battery_soc"], color="purple", lw=1)
        ax_soc.set_ylabel("battery SoC %")
        ax_soc.set_ylim(0, 100)
    ax_t.grid(alpha=0.3)
    ax_t.xaxis.set_major_formatter(mdates.DateFormatter("%a %H:%M", tz=tz))
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def plot_day(
    intervals: list[dict[str, Any]], names: list[str], tz: ZoneInfo, title: str, out: str | Path
) -> None:
    """One day from the store's intervals: power per load, import, export; below, the share
    of the surplus kept at home and the water temperature."""
    fig, (ax, ax_s) = plt.subplots(
        2, 1, figsize=(13, 8), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    if not intervals:
        ax.text(0.5, 0.5, "no intervals for this day", ha="center", transform=ax.transAxes)
    else:
        t = [datetime.fromtimestamp(d["end"] - d["interval_s"], tz) for d in intervals]
        per_h = np.array([3600.0 / d["interval_s"] for d in intervals])
        stack = np.zeros(len(intervals))
        for name in names:
            power = np.array([d["loads"].get(name, {}).get("power_w", 0.0) for d in intervals])
            ax.fill_between(t, stack, stack + power, alpha=0.6, step="post", label=name)
            stack = stack + power
        imp = np.array([d["grid"]["import_wh"] for d in intervals]) * per_h
        exp = np.array([d["grid"]["export_wh"] for d in intervals]) * per_h
        div = np.array([d["grid"]["diverted_wh"] for d in intervals])
        ax.step(t, imp, where="post", color="red", lw=0.8, label="import")
        ax.step(t, exp, where="post", color="green", lw=0.8, label="export")
        if any("pv_wh" in d["grid"] for d in intervals):
            pv = np.array([d["grid"].get("pv_wh", np.nan) for d in intervals]) * per_h
            ax.step(t, pv, where="post", color="goldenrod", lw=0.8, label="PV")
        surplus = div + exp / per_h
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(surplus > 0.01, div / surplus * 100.0, np.nan)
        ax_s.step(t, share, where="post", color="darkorange", lw=1, label="surplus kept %")
        ax_s.set_ylim(0, 105)
        temps = [
            next((e["temperature_c"] for e in d["loads"].values() if "temperature_c" in e), None)
            for d in intervals
        ]
        if any(x is not None for x in temps):
            ax_t = ax_s.twinx()
            ax_t.plot(t, [np.nan if x is None else x for x in temps], color="firebrick", lw=1)
            ax_t.set_ylabel("water °C", color="firebrick")
    ax.set_ylabel("W (interval means)")
    ax.set_title(title)
    ax.legend(loc="upper left", ncols=4, fontsize=8)
    ax.grid(alpha=0.3)
    ax_s.set_ylabel("surplus kept %")
    ax_s.grid(alpha=0.3)
    ax_s.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M", tz=tz))
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
