"""Plain data the functional core exchanges: states, load specs, meter snapshots, decisions."""

from __future__ import annotations

import enum
from dataclasses import field

from machines.value import value


class State(enum.Enum):
    """What a load is doing (docs/states.md)."""

    OFF = "off"
    ECO = "eco"
    SOLAR = "solar"
    BOOST = "boost"


class Mode(enum.Enum):
    AUTO = "auto"
    MANUAL = "manual"


class Kind(enum.Enum):
    """How a load is actuated: a dimmer takes any power, a relay all or nothing."""

    DIMMER = "dimmer"
    RELAY = "relay"


FORCED_STATES = frozenset({State.ECO, State.BOOST})


@value
class Thresholds:
    """Water temperatures (°C); order temp_min < temp_eco ≤ temp_sol_min < temp_max."""

    temp_min: float
    temp_eco: float
    temp_sol_min: float
    temp_max: float

    def is_ordered(self) -> bool:
        return -20 <= self.temp_min < self.temp_eco <= self.temp_sol_min < self.temp_max <= 110


# The least power a dimmer is run at unless its config says otherwise: a command resolves 0.1 %
# (2.4 W on a 2.4 kW heater) and most triac/SCR dimmers hold 15 W; below it, 0 (docs/config.md).
DIMMER_MIN_POWER_W = 15.0


@value
class LoadSpec:
    """What the core needs to know about one load; built from the validated config."""

    name: str
    id: int
    kind: Kind
    max_w: float  # dimmer: max_power; relay: nominal (or expected) power
    min_power_w: float = DIMMER_MIN_POWER_W
    thresholds: Thresholds | None = None
    min_energy_wh: float | None = None
    period_s: int = 86400
    min_on_s: float = 0.0
    min_off_s: float = 0.0
    enabled: bool = True
    learns_power: bool = False  # UnknownPowerEquipment: learn max_w from the meter step
    probes_per_hour: float = 4.0  # a cut thermostat's probes (machines/thermostat.py), 0: off


@value
class MeterSnapshot:
    """The latest meter reading the regulator decides on.

    `grid_w` is active power, positive = import (docs/meter.md) — for a Linky, the seed's formula;
    `sampled_at` is when the older half of the latest reading arrived (epoch s); `stale` is
    judged by the shell against `stale_after_s` on the newest power value.
    """

    grid_w: float | None
    sampled_at: float | None
    stale: bool = False
    apparent_va: float | None = None  # Linky: net S = SINSTS − SINSTI
    reactive_var: float | None = None  # Linky: Q derived from ERQT (the seed's rule)
    reactive_timed_var: float | None = None  # Linky: Q timed on ERQT steps (machines/meter.py)
    pv_w: float | None = None  # meter.pv_topic while fresh: the PV production (W)
    pv_at: float | None = None  # ... when it arrived
    # the controller's clear-sky curve (machines/sun.py, W/m²), with a PV reading and a site
    clear_sky_w: float | None = None  # at pv_at
    clear_sky_ahead_w: float | None = None  # its mean over the relay rule's horizon from now
    # a home battery beside the meter (`battery:`, docs/battery.md); None when absent or stale
    battery_w: float | None = None  # + charging, whatever the vendor's sign
    battery_soc: float | None = None  # state of charge, %


class BatteryMode(enum.Enum):
    """Who gets the surplus first when a home battery is there (docs/battery.md)."""

    BATTERY_FIRST = "battery_first"  # the battery fills, loads take what it leaves
    LOADS_FIRST = "loads_first"  # loads first, the battery what they leave
    SOC_BY = "soc_by"  # loads first as long as the battery still reaches soc_target by soc_by


@value
class BatteryPlan:
    """What `battery:` says a policy may do beside the battery; built from the validated config.
    The policy that uses it is the regulator's (machines/policy/)."""

    mode: BatteryMode
    soc_target: float  # %, what the battery should reach
    reserve_soc: float  # %, below it the battery is never drawn for pvopt's loads
    soc_by_s: int  # seconds after local midnight: soc_by's deadline for soc_target
    response_s: float  # how long the inverter takes to answer a change of the grid
    tolerance_w: float  # discharge up to this counts as "not discharging"
    forced_from_battery: bool  # eco/boost may draw from the battery
    cold_tank_from_battery: bool = False  # ... a tank below temp_min may, to temp_min
    residual_w: float = 0.0  # W left to the battery when its charge counts as surplus


@value
class DeviceReport:
    """What one message from a load's device said (docs/devices.md); None: not in it."""

    online: bool | None = None  # its availability / LWT
    on: bool | None = None  # its output, by its state report
    level_percent: float | None = None  # a dimmer's level, 0-100
    power_w: float | None = None  # its measured power

    def is_empty(self) -> bool:
        return self.online is None and self.on is None and self.power_w is None


@value
class LoadView:
    """One load as the policy sees it at a tick: its machine's verdict and its actuator."""

    spec: LoadSpec
    state: State
    mode: Mode
    reason: str  # the machine's reason for its state (satisfied, manual, meter_stale, ...)
    setpoint_w: float  # power commanded now
    forced_w: float | None = None  # power of a boost/eco, None = max
    tops_up: bool = False  # satisfied but below temp_max: may take leftover surplus
    is_temp_driven: bool = False
    switched_at: float | None = None  # relay: last on/off change (epoch s)


@value
class SkyState:
    """The sky as the PV production tells it (machines/sun.py): production per unit of clear
    sky, its slow mean and variance, as of the sample taken at `at`."""

    mean: float
    var: float
    at: float


@value
class RelayTimer:
    """Hysteresis timer of one relay: since when the budget has asked for a switch."""

    want_on_since: float | None = None
    deficit_wh: float = 0.0  # energy the relay ran short of its budget since it last had enough
    deficit_at: float | None = None


@value
class PolicyMemo:
    """State the policy carries from one tick to the next (goes in, comes out)."""

    last_command_at: float | None = None
    last_move: float = 0.0  # sign of the last change of the surplus loads' total power
    rise_gain: float = 1.0  # share of a measured surplus taken at once; halves on overshoot
    # the meter's noise: what the grid did between two decisions that the commands do not
    # explain (W, a slow-falling mean of its size); None until two decisions were made
    noise_w: float | None = None
    expected_grid_w: float | None = None  # the grid the last decision aimed at
    # Linky: Q identified from our own steps (S before and after a known change of the loads)
    s_prev_va: float | None = None  # net S of the sample the last decision was made on
    step_prev_w: float = 0.0  # what that decision changed in the loads' power
    q_id_var: float | None = None
    q_id_at: float | None = None
    sign_crossed_at: float | None = None  # near the balance, when a rise last crossed into import
    q_cross_var: float | None = None  # ... |S| there: P ≈ 0, so S ≈ Q to within the meter's quantum
    q_cross_at: float | None = None
    relay_timers: dict[str, RelayTimer] = field(default_factory=dict)
    sky: SkyState | None = None  # with a PV reading and a site: the sky's state
    learned_w: dict[str, float] = field(default_factory=dict)
    pending_learn: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    # name -> (switched_at, grid_w before the switch, commanded step W)


@value
class Decision:
    """What the policy decided at one tick: a power per load, a reason per load."""

    power_w: dict[str, float]
    reasons: dict[str, str]
    memo: PolicyMemo
    changed: bool  # any power differs from its setpoint
    # per load, why it does not draw more (machines/export.py): what export is charged to
    limits: dict[str, str] = field(default_factory=dict)
