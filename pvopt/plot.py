"""A day at a glance: PV, base load, each load, grid import/export and water temperature."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
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
    ax.set_ylabel("W")
    ax.set_title(title)
    ax.legend(loc="upper left", ncols=4, fontsize=8)
    ax.grid(alpha=0.3)
    if not np.isnan(series["temp"]).all():
        ax_t.plot(t, series["temp"], color="firebrick", lw=1)
    ax_t.set_ylabel("water °C")
    ax_t.grid(alpha=0.3)
    ax_t.xaxis.set_major_formatter(mdates.DateFormatter("%a %H:%M", tz=tz))
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
