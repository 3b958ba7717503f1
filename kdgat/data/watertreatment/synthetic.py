"""The synthetic default: a seeded plant (plant.py) written in the real BATADAL folder layout.

`synthetic_root` writes, once per parameter set, a folder laid out like
../shared/data/watertreatment_batadal, so the real reader, .inp parser and graph path run on it:

| file                                      | content                                             |
|-------------------------------------------|-----------------------------------------------------|
| c-town.inp.gz                             | the small network: 7 tanks, 11 pumps, V2 and a PRV, |
|                                           | 39 junctions, 39 pipes, C-Town's level controls     |
| BATADAL_dataset03.csv.gz                  | training, attack-free (dataset03 layout)            |
| BATADAL_dataset04.csv.gz                  | validation, original layout: `, ` separators, the   |
|                                           | middle half of each attack 1, the rest -999         |
| BATADAL_dataset04_fully_labelled.csv.gz   | the same hours, 0/1 labels (attacks 1..a)           |
| BATADAL_test_dataset_labelled.csv.gz      | test, 0.00/1.00 labels                              |
| BATADAL_test_dataset_attack_ids.csv.gz    | the same hours: index column, ISO datetimes,        |
|                                           | benign / attack<k>, k = a+1, ... (as BATADAL 8-14)  |
| attacks.json, SOURCE.md                   | the attack schedule (id, kind, target, start, hours) |

Each split has at least 3 attacks (one per kind) and one per 300 hours beyond that. The folder is
keyed by the parameters and GENERATOR_VERSION, written to a temporary folder beside it and renamed
into place, so a reader never sees a half-written folder and a finished one is reused.
"""

import gzip
import hashlib
import json
import math
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from kdgat.common.errors import DataError
from kdgat.data.watertreatment.batadal import SENSOR_COLUMNS, TANKS
from kdgat.data.watertreatment.plant import (
    CONTROLS,
    DEMAND,
    LINKS,
    MIN_TRAIN_HOURS,
    TANK_SPEC,
    Attack,
    attacked_columns,
    schedule_attacks,
    simulate,
)

GENERATOR_VERSION = 1  # bump when the output changes, so cached folders are regenerated
FILE_COLUMNS = (
    *(c for c in SENSOR_COLUMNS if c.startswith("L_")),
    *(f"{p}_PU{k}" for k in range(1, 12) for p in "FS"),
    "F_V2",
    "S_V2",
    *(c for c in SENSOR_COLUMNS if c.startswith("P_")),
)  # the order the real files write
STARTS = {"train": "2014-01-06T00", "val": "2016-07-04T00", "test": "2017-01-04T00"}
# station pipes: R1 feeds PU1-PU3 over header J201 into J202 -> T1; each zone node J2xx is fed
# by its tank, supplies the next pump station and (through a PRV) T6
PIPES = [
    ("R1", "J201"),
    *(("J201", LINKS[p][0]) for p in ("PU1", "PU2", "PU3")),
    *((LINKS[p][1], "J202") for p in ("PU1", "PU2", "PU3")),
    ("J202", "T1"),
    ("T1", "J203"),
    ("J203", "J14"),
    ("J422", "T2"),
    *(("J203", LINKS[p][0]) for p in ("PU4", "PU5")),
    *((LINKS[p][1], "J204") for p in ("PU4", "PU5")),
    ("J204", "T3"),
    ("T2", "J205"),
    *(("J205", LINKS[p][0]) for p in ("PU10", "PU11")),
    *((LINKS[p][1], "J206") for p in ("PU10", "PU11")),
    ("J206", "T7"),
    ("T3", "J207"),
    *(("J207", LINKS[p][0]) for p in ("PU6", "PU7")),
    *((LINKS[p][1], "J208") for p in ("PU6", "PU7")),
    ("J208", "T4"),
    ("T4", "J209"),
    *(("J209", LINKS[p][0]) for p in ("PU8", "PU9")),
    *((LINKS[p][1], "J210") for p in ("PU8", "PU9")),
    ("J210", "T5"),
    ("J209", "J211"),
    ("J212", "T6"),
    ("T5", "J213"),
    ("T6", "J214"),
    ("T7", "J215"),
]
ZONE_OF = {"J213": "T5", "J214": "T6", "J215": "T7", "J203": "T1", "J205": "T2", "J207": "T3", "J209": "T4"}


def network_inp() -> str:
    """The synthetic plant's EPANET 2 input file."""
    junctions = sorted({n for edge in PIPES for n in edge if n.startswith("J")} | {"J211", "J212"})
    out = ["[TITLE]", "kdgat synthetic plant: a miniature C-Town (kdgat/data/watertreatment)", ""]
    out += ["[JUNCTIONS]", ";ID\tElev\tDemand\tPattern"]
    for j in junctions:
        demand = DEMAND[ZONE_OF[j]] if j in ZONE_OF else 0.0
        out.append(f" {j}\t50\t{demand:g}\t{'DAY' if j in ZONE_OF else ''}\t;")
    out += ["", "[RESERVOIRS]", ";ID\tHead", " R1\t59\t;", "", "[TANKS]"]
    out.append(";ID\tElevation\tInitLevel\tMinLevel\tMaxLevel\tDiameter\tMinVol")
    for t in TANKS:
        top, area, start = TANK_SPEC[t]
        out.append(f" {t}\t100\t{start:g}\t0\t{top:g}\t{math.sqrt(4 * area / math.pi):.2f}\t0\t;")
    out += ["", "[PIPES]", ";ID\tNode1\tNode2\tLength\tDiameter\tRoughness\tMinorLoss\tStatus"]
    for k, (a, b) in enumerate(PIPES, start=1):
        out.append(f" P{k}\t{a}\t{b}\t100\t300\t100\t0\tOpen\t;")
    out += ["", "[PUMPS]", ";ID\tNode1\tNode2\tParameters"]
    out += [f" {p}\t{n1}\t{n2}\tHEAD C1\t;" for p, (n1, n2, *_) in LINKS.items() if p.startswith("PU")]
    out += ["", "[VALVES]", ";ID\tNode1\tNode2\tDiameter\tType\tSetting\tMinorLoss"]
    out += [
        f" V2\t{LINKS['V2'][0]}\t{LINKS['V2'][1]}\t254\tTCV\t0\t0\t;",
        " V1\tJ211\tJ212\t150\tPRV\t40\t0\t;",
    ]
    out += ["", "[CURVES]", " C1\t100\t50", "", "[PATTERNS]", " DAY\t0.8\t1.0\t1.3\t1.0", "", "[CONTROLS]"]
    for link, (tank, on_below, off_above) in CONTROLS.items():
        out.append(f"LINK {link} OPEN IF NODE {tank} BELOW {on_below:g}")
        out.append(f"LINK {link} CLOSED IF NODE {tank} ABOVE {off_above:g}")
    out += ["", "[TIMES]", " Duration\t24:00", " Hydraulic Timestep\t1:00", "", "[END]", ""]
    return "\n".join(out)


def _row_format(style: str, separator: str) -> str:
    """printf format of one row's readings (FILE_COLUMNS): 'long' 6 decimals, 'fixed' 2 decimals,
    'short' 2 decimals without trailing zeros (`4.1`, `70`, as the fully labelled files write);
    status columns as integers except in 'fixed' (`1.00`)."""
    spec = {"long": "%.6f", "fixed": "%.2f", "short": "%.10g"}[style]
    cells = ["%d" if c.startswith("S_") and style != "fixed" else spec for c in FILE_COLUMNS]
    return separator.join(cells)


def _csv(
    values: np.ndarray,
    times: list[str],
    flags: list[str],
    style: str,
    separator: str = ",",
    index: bool = False,
) -> bytes:
    """A BATADAL CSV: DATETIME, the FILE_COLUMNS, ATT_FLAG; `index` adds the unnamed index column."""
    order = [SENSOR_COLUMNS.index(c) for c in FILE_COLUMNS]
    rows = (np.round(values[:, order], 6 if style == "long" else 2) + 0.0).tolist()  # + 0.0: no -0
    fmt = _row_format(style, separator)
    header = ("," if index else "") + ",".join(["DATETIME", *FILE_COLUMNS, "ATT_FLAG"])
    lines = [header]
    for r, (when, row, flag) in enumerate(zip(times, rows, flags, strict=True)):
        fields = f"{when}{separator}{fmt % tuple(row)}{separator}{flag}"
        lines.append(f"{r},{fields}" if index else fields)
    return gzip.compress(("\n".join(lines) + "\n").encode(), compresslevel=6, mtime=0)


def _times(split: str, hours: int) -> tuple[list[str], list[str]]:
    """(dd/mm/yy HH, YYYY-MM-DD HH:MM:SS) of each hour of a split."""
    stamps = np.datetime64(STARTS[split], "h") + np.arange(hours)
    iso = [s.replace("T", " ") for s in np.datetime_as_string(stamps.astype("datetime64[s]"))]
    return [f"{s[8:10]}/{s[5:7]}/{s[2:4]} {s[11:13]}" for s in iso], iso


def _write_folder(folder: Path, train_hours: int, val_hours: int, test_hours: int, seed: int) -> None:
    (folder / "c-town.inp.gz").write_bytes(gzip.compress(network_inp().encode(), mtime=0))
    train = simulate(train_hours, seed, stream=0)
    dmy, _ = _times("train", train_hours)
    (folder / "BATADAL_dataset03.csv.gz").write_bytes(_csv(train.readings, dmy, ["0"] * train_hours, "long"))

    val_attacks = schedule_attacks(val_hours, seed, first_id=1, stream=1)
    val = simulate(val_hours, seed, val_attacks, stream=1)
    dmy, _ = _times("val", val_hours)
    partial = np.full(val_hours, "-999", dtype=object)
    for a in val_attacks:  # the original dataset04 labels only part of each attack
        partial[a.start + a.length // 4 : a.start + a.length // 4 + a.length // 2] = "1"
    original = _csv(val.readings, dmy, list(partial), "fixed", separator=", ")
    (folder / "BATADAL_dataset04.csv.gz").write_bytes(original)
    full = [str(v) for v in val.label.tolist()]
    (folder / "BATADAL_dataset04_fully_labelled.csv.gz").write_bytes(_csv(val.readings, dmy, full, "short"))

    test_attacks = schedule_attacks(test_hours, seed, first_id=len(val_attacks) + 1, stream=2)
    test = simulate(test_hours, seed, test_attacks, stream=2)
    dmy, iso = _times("test", test_hours)
    flags = [f"{v}.00" for v in test.label.tolist()]
    (folder / "BATADAL_test_dataset_labelled.csv.gz").write_bytes(_csv(test.readings, dmy, flags, "fixed"))
    names = ["benign" if k == 0 else f"attack{k}" for k in test.attack_id.tolist()]
    ids = _csv(test.readings, iso, names, "short", index=True)
    (folder / "BATADAL_test_dataset_attack_ids.csv.gz").write_bytes(ids)

    schedule = {
        "validation": [_describe(a) for a in val_attacks],
        "test": [_describe(a) for a in test_attacks],
    }
    (folder / "attacks.json").write_text(json.dumps(schedule, indent=2) + "\n")
    rows = [
        f"| {s} | {a['attack_id']} | {a['kind']} | {a['target']} | {a['start']} | {a['hours']} |"
        for s, attacks in schedule.items()
        for a in attacks
    ]
    (folder / "SOURCE.md").write_text(
        "# kdgat synthetic water plant (kdgat/data/watertreatment/synthetic.py)\n\n"
        f"Generator version {GENERATOR_VERSION}, seed {seed}; hours: train {train_hours}, validation "
        f"{val_hours}, test {test_hours}. Same layout and formats as the BATADAL folder.\n\n"
        "| split | attack id | kind | target | first row | hours |\n|---|---|---|---|---|---|\n"
        + "\n".join(rows)
        + "\n"
    )


def _describe(a: Attack) -> dict:
    return {
        "attack_id": a.attack_id,
        "kind": a.kind,
        "target": a.target,
        "columns": list(attacked_columns(a)),
        "start": a.start,
        "hours": a.length,
        "value": a.value,
    }


def synthetic_root(cache_dir: Path, train_hours: int, val_hours: int, test_hours: int, seed: int) -> Path:
    """Write (once) the synthetic plant's folder under cache_dir; return its path."""
    if train_hours < MIN_TRAIN_HOURS:
        raise DataError(f"synthetic train_hours={train_hours}: at least {MIN_TRAIN_HOURS} hours are needed.")
    params = dict(version=GENERATOR_VERSION, train=train_hours, val=val_hours, test=test_hours, seed=seed)
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]
    root = Path(cache_dir) / "watertreatment_synthetic" / digest
    if root.is_dir():
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root.parent, prefix=f".{digest}."))
    try:
        tmp.chmod(0o755)  # mkdtemp makes it private; the finished folder is an ordinary one
        _write_folder(tmp, train_hours, val_hours, test_hours, seed)
        try:
            os.rename(tmp, root)
        except OSError:
            if not root.is_dir():  # not another process finishing first
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return root
