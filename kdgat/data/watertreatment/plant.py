"""The simulated plant behind the synthetic default (synthetic.py writes it to disk).

A miniature C-Town: the same monitored elements and IDs (tanks T1..T7, pumps PU1..PU11, valve V2,
the 12 pressure junctions), because the reader is strict about BATADAL's 43 sensor columns, with
C-Town's level controls, on a small network (synthetic.py writes its .inp).

Physics, hour by hour: each tank's level changes by (inflow - outflow) * 3.6 / area (flows in L/s,
levels in m, clipped to [0, max level]). Pumps (and V2) move water from R1 or an upstream tank to a
downstream tank, with a flow that falls as the downstream tank fills; T6 fills by gravity from T4;
each tank's zone draws a demand with a daily pattern and noise. The PLC switches each controlled
link by its control lines (OPEN below one level, CLOSED above another, else unchanged), from the
level READING it receives. PU3 and PU9 have no controls and stay off (as in BATADAL); PU1 runs
always, the others cycle. Junction pressures follow the true levels of the tanks on either side
of their pump or valve, the station's flow and the demand pattern.

Attacks (each a contiguous run of hours with its own id):
- level_spoof: a tank's level reading (to the PLC and SCADA alike) is replaced by a constant just
  above the highest CLOSED level of its controls (or below the lowest OPEN level), so its pumps
  switch off (on) on a fake value while the true level drains (rises); pressures betray it.
- pump_forced: an actuator attack: a duty pump forced off, or a standby pump forced on, against
  its control; its status and flow readings are true.
- scada_replay: visible only in relations between sensors: SCADA receives, for one tank and the
  links it controls, the readings of the same hour one day earlier, while the plant runs normally
  (the PLC sees the truth). Every replayed value is a genuine reading of that hour of day; only
  its agreement with the other sensors (pressures, neighbouring tanks) is broken. At most 24 h.
"""

import dataclasses

import numpy as np

from kdgat.common.errors import DataError
from kdgat.data.watertreatment.batadal import JUNCTIONS, SENSOR_COLUMNS, TANKS

ATTACK_KINDS = ("level_spoof", "pump_forced", "scada_replay")
MIN_TRAIN_HOURS, MIN_ATTACK_HOURS = 48, 168
WARM_UP, REPLAY_LAG = 48, 24
# tank: (max level m, area m2, initial level m)
TANK_SPEC = {
    "T1": (6.5, 1700.0, 3.0),
    "T2": (5.9, 720.0, 2.5),
    "T3": (6.75, 540.0, 3.0),
    "T4": (4.7, 450.0, 2.5),
    "T5": (4.5, 324.0, 2.0),
    "T6": (5.5, 90.0, 5.0),
    "T7": (5.0, 270.0, 2.5),
}
# link: (suction node, discharge node, source tank or "" for reservoir R1, destination tank, L/s)
LINKS = {
    "PU1": ("J285", "J273", "", "T1", 100.0),
    "PU2": ("J280", "J269", "", "T1", 95.0),
    "PU3": ("J276", "J274", "", "T1", 100.0),
    "PU4": ("J299", "J292", "T1", "T3", 60.0),
    "PU5": ("J300", "J256", "T1", "T3", 35.0),
    "PU6": ("J289", "J415", "T3", "T4", 34.0),
    "PU7": ("J290", "J291", "T3", "T4", 50.0),
    "PU8": ("J301", "J304", "T4", "T5", 36.0),
    "PU9": ("J302", "J306", "T4", "T5", 36.0),
    "PU10": ("J307", "J317", "T2", "T7", 30.0),
    "PU11": ("J309", "J323", "T2", "T7", 30.0),
    "V2": ("J14", "J422", "T1", "T2", 80.0),
}
# link: (tank, OPEN below, CLOSED above), C-Town's [CONTROLS]
CONTROLS = {
    "PU1": ("T1", 4.0, 6.3),
    "PU2": ("T1", 1.0, 4.5),
    "V2": ("T2", 0.5, 5.5),
    "PU4": ("T3", 3.0, 5.3),
    "PU5": ("T3", 1.0, 3.5),
    "PU6": ("T4", 2.0, 3.5),
    "PU7": ("T4", 3.0, 4.5),
    "PU8": ("T5", 1.5, 4.5),
    "PU10": ("T7", 2.5, 4.8),
    "PU11": ("T7", 1.0, 3.0),
}
DEMAND = {"T1": 50.0, "T2": 30.0, "T3": 5.0, "T4": 12.0, "T5": 20.0, "T6": 5.0, "T7": 18.0}  # L/s
GRAVITY_T6 = 6.0  # L/s per m of head difference, T4 (2 m higher) -> T6
# junction: (base pressure m, tank whose level adds, links whose flow acts, friction m per L/s)
PRESSURE = {
    "J280": (3.0, "", ("PU1", "PU2", "PU3"), -0.0001),
    "J269": (25.0, "T1", ("PU1", "PU2", "PU3"), 0.05),
    "J300": (20.0, "T1", ("PU4", "PU5"), -0.05),
    "J256": (70.0, "T3", ("PU4", "PU5"), 0.3),
    "J289": (22.0, "T3", ("PU6", "PU7"), -0.05),
    "J415": (60.0, "T4", ("PU6", "PU7"), 0.4),
    "J302": (15.0, "T4", ("PU8", "PU9"), -0.05),
    "J306": (60.0, "T5", ("PU8", "PU9"), 0.3),
    "J307": (18.0, "T2", ("PU10", "PU11"), -0.05),
    "J317": (55.0, "T7", ("PU10", "PU11"), 0.4),
    "J14": (28.0, "T1", ("V2",), -0.02),
    "J422": (22.0, "T2", ("V2",), 0.05),
}
FORCED_OFF = ("PU1", "PU4", "PU7", "PU8", "PU10")  # usually running
FORCED_ON = ("PU2", "PU5", "PU6", "PU11")  # backups, usually off
LINK_IDS = tuple(LINKS)
TANK_INDEX = {t: k for k, t in enumerate(TANKS)}
COLUMN = {c: j for j, c in enumerate(SENSOR_COLUMNS)}


@dataclasses.dataclass(frozen=True)
class Attack:
    kind: str
    target: str  # tank (level_spoof, scada_replay) or pump (pump_forced)
    start: int
    length: int
    value: float  # fake level (level_spoof), forced state 0/1 (pump_forced), unused (scada_replay)
    attack_id: int


@dataclasses.dataclass
class Plant:
    """Simulated hours: readings (hours, 43) as SCADA logs them (SENSOR_COLUMNS order), the true
    levels (hours, 7), link states actually applied (hours, 12: LINK_IDS), label and attack_id."""

    readings: np.ndarray
    level: np.ndarray
    state: np.ndarray
    label: np.ndarray
    attack_id: np.ndarray


def attacked_columns(attack: Attack) -> tuple[str, ...]:
    """The sensor columns an attack writes."""
    if attack.kind == "pump_forced":
        return (f"F_{attack.target}", f"S_{attack.target}")
    links = [link for link, (tank, _, _) in CONTROLS.items() if tank == attack.target]
    if attack.kind == "level_spoof":
        return (f"L_{attack.target}",)
    return (f"L_{attack.target}", *(f"{p}_{link}" for link in links for p in "FS"))


def simulate(
    hours: int, seed: int, attacks: tuple[Attack, ...] | list[Attack] = (), stream: int = 0
) -> Plant:
    """The plant for `hours` hours. Noise depends on the seed only, so a run with and a run without
    an attack differ only where the attack acts (and, for physical attacks, downstream in time)."""
    rng = np.random.default_rng([seed, stream, 0])
    level = np.array([TANK_SPEC[t][2] for t in TANKS]) + rng.uniform(-0.3, 0.3, len(TANKS))
    day = 2 * np.pi * (np.arange(hours) + rng.integers(24)) / 24
    pattern = 1 + 0.3 * np.sin(day - 7 * np.pi / 12) + 0.1 * np.sin(2 * day)
    demand = pattern[:, None] * (1 + 0.05 * rng.standard_normal((hours, len(TANKS))))
    noise_level = 0.01 * rng.standard_normal((hours, len(TANKS)))
    noise_flow = rng.standard_normal((hours, len(LINKS)))
    noise_pressure = rng.standard_normal((hours, len(JUNCTIONS)))
    spoof = np.full((hours, len(TANKS)), np.nan)
    forced = np.full((hours, len(LINKS)), np.nan)
    label = np.zeros(hours, dtype=np.int8)
    attack_id = np.zeros(hours, dtype=np.int16)
    for a in attacks:
        span = slice(a.start, a.start + a.length)
        label[span], attack_id[span] = 1, a.attack_id
        if a.kind == "level_spoof":
            spoof[span, TANK_INDEX[a.target]] = a.value
        elif a.kind == "pump_forced":
            forced[span, LINK_IDS.index(a.target)] = a.value
    max_level = np.array([TANK_SPEC[t][0] for t in TANKS])
    area = np.array([TANK_SPEC[t][1] for t in TANKS])
    nominal = np.array([LINKS[k][4] for k in LINK_IDS])
    source = np.array([TANK_INDEX.get(LINKS[k][2], -1) for k in LINK_IDS])
    dest = np.array([TANK_INDEX[LINKS[k][3]] for k in LINK_IDS])
    from_tank = source >= 0
    controlled = np.array([LINK_IDS.index(k) for k in CONTROLS])
    control_tank = np.array([TANK_INDEX[c[0]] for c in CONTROLS.values()])
    open_below = np.array([c[1] for c in CONTROLS.values()])
    closed_above = np.array([c[2] for c in CONTROLS.values()])
    base_demand = np.array([DEMAND[t] for t in TANKS])
    t4, t6 = TANK_INDEX["T4"], TANK_INDEX["T6"]
    plc = np.zeros(len(LINKS))
    levels = np.zeros((hours, len(TANKS)))
    seens = np.zeros((hours, len(TANKS)))
    states = np.zeros((hours, len(LINKS)))
    flows = np.zeros((hours, len(LINKS)))
    for t in range(hours):  # sequential by nature: each hour's switching depends on the last
        seen = np.where(np.isnan(spoof[t]), level, spoof[t]) + noise_level[t]
        reading = seen[control_tank]
        plc[controlled] = np.where(
            reading < open_below, 1.0, np.where(reading > closed_above, 0.0, plc[controlled])
        )
        state = np.where(np.isnan(forced[t]), plc, forced[t])
        flow = (
            state * nominal * (1 - 0.15 * (level[dest] / max_level[dest] - 0.5)) * (1 + 0.01 * noise_flow[t])
        )
        gravity = GRAVITY_T6 * max(0.0, level[t4] + 2.0 - level[t6])
        net = np.bincount(dest, flow, len(TANKS)) - np.bincount(
            source[from_tank], flow[from_tank], len(TANKS)
        )
        net -= base_demand * demand[t]
        net[t6] += gravity
        net[t4] -= gravity
        levels[t], seens[t], states[t], flows[t] = level, seen, state, flow
        level = np.clip(level + net * 3.6 / area, 0.0, max_level)
    readings = _readings(seens, levels, states, flows, pattern, noise_flow, noise_pressure)
    genuine = readings.copy()
    for a in attacks:
        if a.kind == "scada_replay":
            cols = np.asarray([COLUMN[c] for c in attacked_columns(a)], dtype=np.int64)
            rows = np.arange(a.start, a.start + a.length)
            readings[np.ix_(rows, cols)] = genuine[np.ix_(rows - REPLAY_LAG, cols)]
    return Plant(readings=readings, level=levels, state=states, label=label, attack_id=attack_id)


def _readings(
    seen: np.ndarray,
    level: np.ndarray,
    state: np.ndarray,
    flow: np.ndarray,
    pattern: np.ndarray,
    noise_flow: np.ndarray,
    noise_pressure: np.ndarray,
) -> np.ndarray:
    """(hours, 43) readings: levels as the PLC sees them, true flows and states, pressures from the
    true levels and flows."""
    readings = np.zeros((len(seen), len(SENSOR_COLUMNS)))
    readings[:, [COLUMN[f"L_{t}"] for t in TANKS]] = seen
    readings[:, [COLUMN[f"F_{k}"] for k in LINK_IDS]] = np.maximum(0.0, flow + 0.3 * noise_flow * state)
    readings[:, [COLUMN[f"S_{k}"] for k in LINK_IDS]] = state
    for k, junction in enumerate(JUNCTIONS):
        base, tank, links, friction = PRESSURE[junction]
        head = level[:, TANK_INDEX[tank]] if tank else 0.0
        q = flow[:, [LINK_IDS.index(link) for link in links]].sum(axis=1)
        sigma = 0.05 if tank else 0.003
        demand = 1.5 * (pattern - 1) if tank else 0.0  # zone demand lowers pressure; R1's head is fixed
        value = base + head + friction * q - demand + sigma * noise_pressure[:, k]
        readings[:, COLUMN[f"P_{junction}"]] = value
    return readings


def schedule_attacks(hours: int, seed: int, first_id: int, stream: int = 0) -> list[Attack]:
    """max(3, hours // 300) attacks, one per equal slot after a 48-hour warm-up, every kind at least
    once, ids first_id, first_id + 1, ..."""
    if hours < MIN_ATTACK_HOURS:
        raise DataError(
            f"a synthetic file with attacks needs at least {MIN_ATTACK_HOURS} hours, got {hours}; raise "
            f"the synthetic validation/test hours."
        )
    rng = np.random.default_rng([seed, stream, 1])
    count = max(3, hours // 300)
    slot = (hours - WARM_UP - 12) // count
    kinds = list(rng.permutation(ATTACK_KINDS)) + list(rng.choice(ATTACK_KINDS, count - 3))
    spoofable = sorted({tank for tank, _, _ in CONTROLS.values()})
    attacks = []
    for i, kind in enumerate(kinds):
        longest = min(REPLAY_LAG if kind == "scada_replay" else 60, slot - 12)
        length = int(rng.integers(12, longest + 1))
        start = WARM_UP + i * slot + int(rng.integers(0, slot - length - 12 + 1))
        if kind == "pump_forced":  # a duty pump forced off, or a standby pump forced on
            value = float(rng.integers(2))
            target = str(rng.choice(FORCED_ON if value else FORCED_OFF))
        elif kind == "scada_replay":
            target, value = str(rng.choice(spoofable)), 0.0
        else:
            target = str(rng.choice(spoofable))
            tank_controls = [(on, off) for tank, on, off in CONTROLS.values() if tank == target]
            high = max(off for _, off in tank_controls) + 0.1
            low = max(0.05, min(on for on, _ in tank_controls) - 0.1)
            value = high if rng.integers(2) else low
        attacks.append(Attack(str(kind), target, start, length, value, first_id + i))
    return attacks
