"""`state:` — the SQLite file a restart resumes from."""

from __future__ import annotations

from pydantic import Field

from pvopt.kinds import Strict, Text


class StateConfig(Strict):
    path: Text = "pvopt.db"
    checkpoint_s: float = Field(60.0, gt=0, le=3600)
    history_days: int = Field(400, ge=1)
