"""A forecast in a file another program writes (or the simulator): the `issued_at,start,pv_w`
CSV of docs/forecast.md, read again on every fetch."""

from __future__ import annotations

from datetime import tzinfo
from pathlib import Path

from machines.errors import ForecastError, ForecastUnavailable
from machines.forecast import Forecast, parse_csv
from pvopt.config.forecast import ForecastConfig

NAME = "file"


class FileForecast:
    """`ForecastSource` reading `forecast.file`."""

    name = NAME

    def __init__(self, cfg: ForecastConfig, tz: tzinfo):
        if cfg.file is None:
            raise ForecastError(f"{NAME}: forecast.file is needed")
        self.path = Path(cfg.file)

    def fetch(self, now: float) -> Forecast:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ForecastUnavailable(f"{NAME}: {self.path}: no such file (yet)") from None
        except UnicodeDecodeError:
            raise ForecastError(f"{NAME}: {self.path}: not UTF-8 text") from None
        except OSError as exc:
            raise ForecastUnavailable(f"{NAME}: {self.path}: {exc.strerror or exc}") from None
        return parse_csv(text, NAME, where=str(self.path))
