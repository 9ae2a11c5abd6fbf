"""The regulator: given the meter, the loads and the time, a power per load (docs/regulation.md).

Pure and deterministic: same inputs, same decision. Two policies share the framing (forced
loads, shedding on a stale meter) and differ in how they spread the surplus:

* `default` aims straight at the measured imbalance: the power the surplus-driven loads may draw
  is what they draw now plus the surplus less a margin, spread in priority order. Relays switch
  on hysteresis timers and respect min on/off times; loads that cannot be cut make the others
  yield; a decision waits for a meter sample taken after the last command had settled.
* `legacy` is the seed's `evaluate()`: quarter steps of the imbalance, flaws included.

Policies are registered by name (`register_policy`); `PolicyParams.name` picks one.
"""

from machines.policy import default, legacy  # noqa: F401  (each registers its policy)
from machines.policy.default import (
    Aim,
    Imbalance,
    Margin,
    aim_below_balance,
    choose_margin,
    damp_rise,
    explain_relay,
    hold_while_settling,
    measure_imbalance,
    remember,
    settled,
    spread_over_dimmer,
)
from machines.policy.framing import (
    CHANGE_EPS_W,
    POLICIES,
    Frame,
    Policy,
    Spread,
    UnknownPolicy,
    decide,
    get_policy,
    register_policy,
)
from machines.policy.params import (
    DampingParams,
    LegacyParams,
    LinkyParams,
    MarginParams,
    PolicyParams,
    RelayParams,
    flat_names,
)
from machines.policy.relays import RelayPlan, decide_relays

__all__ = [
    "CHANGE_EPS_W",
    "POLICIES",
    "Aim",
    "DampingParams",
    "Frame",
    "Imbalance",
    "LegacyParams",
    "LinkyParams",
    "Margin",
    "MarginParams",
    "Policy",
    "PolicyParams",
    "RelayParams",
    "RelayPlan",
    "Spread",
    "UnknownPolicy",
    "aim_below_balance",
    "choose_margin",
    "damp_rise",
    "decide",
    "decide_relays",
    "explain_relay",
    "flat_names",
    "get_policy",
    "hold_while_settling",
    "measure_imbalance",
    "register_policy",
    "remember",
    "settled",
    "spread_over_dimmer",
]
