"""The relay schedule a controller with foresight would choose (bench/relay_frontier.py).

No causal rule can know when the next cloud comes; this one does. Over 10-s blocks it picks the
on/off schedule of a house's one relay that maximises (export the relay takes) − λ · (import it
causes), keeping `min_on_s`, `min_off_s` and a switch budget. Replayed through the simulator, the
gap between its KPIs and the rule's says what the cloud timing is worth.
"""

from __future__ import annotations

import numpy as np

from machines.model import Kind
from pvopt.config import Config
from pvsim.physics import RECORD_EVERY_S
from pvsim.traces import Trace

BLOCK_S = RECORD_EVERY_S  # the schedule's step: that of the simulator's recorded series
FULL_WITHIN_C = 0.5  # a heater this close to its temp_max takes only its losses
_NEG = -1e18


def relay_index(cfg: Config) -> int:
    """Position of the house's only relay in priority order."""
    relays = [k for k, s in enumerate(cfg.specs()) if s.kind is Kind.RELAY]
    if len(relays) != 1:
        raise ValueError(f"the hindsight schedule needs exactly one relay, found {len(relays)}")
    return relays[0]


def relay_blocks(cfg: Config, trace: Trace, temp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per block, Wh: the export the relay takes when on, and the import it causes. The dimmers
    yield to it (as they do to a running relay in the rule); a heater counts as full while
    `temp` (its recorded temperature, one value per block) is within FULL_WITHIN_C of temp_max."""
    specs = cfg.specs()
    r = relay_index(cfg)
    n = trace.seconds // BLOCK_S
    surplus = (trace.pv_w - trace.base_w)[: n * BLOCK_S].reshape(n, BLOCK_S).mean(axis=1)
    surplus = np.maximum(surplus, 0.0)
    others = np.zeros(n)
    for k, spec in enumerate(specs):
        if k == r or spec.kind is not Kind.DIMMER:
            continue
        room = np.full(n, spec.max_w)
        if spec.thresholds is not None:
            room[temp[:n] >= spec.thresholds.temp_max - FULL_WITHIN_C] = 0.0
        others += room
    power = specs[r].max_w
    gain = np.minimum(surplus, others + power) - np.minimum(surplus, others)
    imp = np.maximum(power - surplus, 0.0)
    return gain * BLOCK_S / 3600.0, imp * BLOCK_S / 3600.0


def best_schedule(reward: np.ndarray, hold: int, max_switches: int) -> np.ndarray:
    """On/off per block maximising the summed reward of the on-blocks, where a switch comes at
    least `hold` blocks after the previous one and there are at most `max_switches`. The relay
    starts off, long off. Dynamic programme over (on, blocks since the switch, switches)."""
    if hold < 1:
        raise ValueError("hold must be at least one block")
    n, k_n, s_n = len(reward), hold + 1, max_switches + 1
    value = np.full((2, k_n, s_n), _NEG)
    value[0, hold, 0] = 0.0
    # how each block's best state was reached: a switch at k = 1, from k = hold - 1 at k = hold
    switched = np.zeros((n, 2, s_n), dtype=bool)
    ripened = np.zeros((n, 2, s_n), dtype=bool)
    for b in range(n):
        new = np.full_like(value, _NEG)
        new[:, 2:hold] = value[:, 1 : hold - 1]  # stay, still held
        ripened[b] = value[:, hold - 1] > value[:, hold]
        new[:, hold] = np.maximum(value[:, hold - 1], value[:, hold])  # stay, free
        switch = np.full((2, s_n), _NEG)
        switch[:, 1:] = value[::-1, hold, :-1]  # from the other state once free
        switched[b] = switch > new[:, 1]
        new[:, 1] = np.maximum(new[:, 1], switch)
        new[1] += reward[b]
        value = new
    on, k, s = (int(x) for x in np.unravel_index(int(np.argmax(value)), value.shape))
    schedule = np.zeros(n, dtype=bool)
    for b in range(n - 1, -1, -1):
        schedule[b] = on == 1
        if k == 1 and switched[b, on, s]:
            on, k, s = 1 - on, hold, s - 1
        elif k == hold:
            k = hold - 1 if ripened[b, on, s] else hold
        else:
            k -= 1
    return schedule
