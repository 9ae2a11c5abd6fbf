"""Names vulture reports unused that are used, by a library or by name: `vulture` (its
settings in pyproject.toml) reads this file beside the code, never imports it.

Pydantic validators, click commands and pytest fixtures are skipped by decorator there
(`ignore_decorators`), so they need no line here. Each group below says why its names live.
"""

# ruff: noqa: B018, F821
# (`_` is vulture's placeholder for "any object": only the attribute's name counts)

# machines/loads.py: transitions calls `after_state_change=` by name; the tables name their
# guards, which `Table` finds as `guard_<name>`
_._log_move
_.guard_satisfied
_.guard_eco_requested
_.guard_temperature_unknown
_.guard_device_unusable
_.guard_thermostat_cut

# attributes read by the library they are set on
_.on_disconnect  # paho calls the client's on_disconnect (pvopt/adapters/mqtt.py)
_.on_subscribe  # paho calls the client's on_subscribe (pvopt/adapters/mqtt.py)
_.should_exit  # uvicorn's server loop polls it (pvopt/adapters/web/server.py)
_.caption  # rich prints a Table's caption (pvopt/tables.py, pvsim/tables.py)
_.isolation_level  # sqlite3's connection: None turns pysqlite's own BEGIN off (state/store.py)

# logging.Formatter calls formatTime(record, datefmt): the override keeps its signature
_.formatTime
_.datefmt

# the TIC protocol's control characters, kept as one table beside the ones the parser uses
_.CR
_.EOT

# a field of the planner's saved state (machines/schedules.py WindowRun): state files carry
# it and WindowRun(**saved) restores it, so it stays though no decision reads it
_.opened_at

# http.server calls its handler's do_GET and log_message by name (the forecast tests' stub)
_.do_GET
_.log_message

# machines/model.py: the battery modes a policy reads from `battery.mode` (machines/policy/)
_.LOADS_FIRST
