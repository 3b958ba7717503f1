"""The BATADAL competition score (Taormina et al., "Battle of the Attack Detection Algorithms",
J. Water Resour. Plann. Manage. 144(8), 2018, doi:10.1061/(ASCE)WR.1943-5452.0000969).

The paper ranks detectors by two scores over the hourly decisions of the test set:
- S_TTD = 1 - (1 / n) * sum_i TTD_i / dt_i: TTD_i is the time from the start of attack i to its
  first detected hour inside the attack, dt_i the attack's duration; an attack never detected
  counts TTD_i = dt_i (ratio 1, the worst). Alarms before an attack or after its end do not count
  here (they are false or true alarms for S_CM).
- S_CM = (TPR + TNR) / 2 over hours (the classification score).
- S = gamma S_TTD + (1 - gamma) S_CM, gamma = 0.5 in the competition.
So flagging every hour scores S_TTD 1, S_CM 0.5, S 0.75, and flagging nothing 0.25.

Sources relied on (the paper's own text was not at hand): the metric table and code of
fkie-cad/ipal_evaluate (BATADAL-TTD, BATADAL-CLF, BATADAL; it cites equations 3 and 6 of the
author copy, par.nsf.gov/servlets/purl/10104860), the hand calculation of S_TTD for attacks 8-14
in mnguyen0226/a3tgcn_cps, and the competition summary at waterfutures.github.io
(WaterBenchmarkHub, BATADAL). The formulas are paraphrased, no text is copied.

dt_i: `duration="hours"` (default) takes the attack's length in hours (its count of labelled
hours, as this project's issue defines it); `duration="span"` takes last minus first attack hour
(length - 1), as both implementations above do (a3tgcn_cps uses dt = 69 for the 70-hour attack
8). The two differ by at most 1/length per attack (1.4% for attack 8). With "span", a one-hour
attack scores ratio 0 when detected and 1 when not, as ipal_evaluate does.

Unlabelled hours (label -1) are left out of S_CM. Each attack id must be one contiguous run of
hours (the reader guarantees it for real files): the same id in two places is refused, since its
time to detection would be ambiguous.
"""

import numpy as np


def batadal_score(
    label: np.ndarray,
    decision: np.ndarray,
    attack_id: np.ndarray,
    gamma: float = 0.5,
    duration: str = "hours",
) -> dict:
    """S, S_TTD, S_CM, TPR, TNR, attacks, attacks_detected and per-attack details (per_attack: one
    dict per attack in time order: attack_id, start (hour index), length, detected, delay_hours)."""
    label = np.asarray(label).astype(np.int64, copy=False)
    decision = np.asarray(decision)
    attack_id = np.asarray(attack_id).astype(np.int64, copy=False)
    if not (label.shape == decision.shape == attack_id.shape) or label.ndim != 1:
        raise ValueError(
            f"label, decision and attack_id must be 1-d of one length: {label.shape}, "
            f"{decision.shape}, {attack_id.shape}"
        )
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma must be in [0, 1], got {gamma}")
    if duration not in ("hours", "span"):
        raise ValueError(f"duration must be 'hours' or 'span', got {duration!r}")
    if not np.isin(label, (-1, 0, 1)).all():
        raise ValueError("label must be 1 (attack), 0 (benign) or -1 (unlabelled)")
    if not np.isin(decision, (0, 1)).all():
        raise ValueError("decision must be 0/1 (or bool) per hour")
    if (attack_id < 0).any() or ((attack_id > 0) != (label == 1)).any():
        raise ValueError("attack_id must be > 0 exactly on the hours labelled 1")
    flagged = decision.astype(bool)
    attack, benign = label == 1, label == 0
    tpr = float(flagged[attack].mean()) if attack.any() else float("nan")
    tnr = float((~flagged[benign]).mean()) if benign.any() else float("nan")
    per_attack = []
    ratios = []
    ids, first = np.unique(attack_id[attack_id > 0], return_index=True)
    for k in ids[np.argsort(first)].tolist():
        rows = np.flatnonzero(attack_id == k)
        start, length = int(rows[0]), len(rows)
        if rows[-1] - start + 1 != length:
            gap = int(rows[np.flatnonzero(np.diff(rows) > 1)[0] + 1])
            raise ValueError(
                f"attack {k} is not one contiguous run of hours: it starts at hour {start} "
                f"and again at hour {gap}; give each run its own id"
            )
        hits = np.flatnonzero(flagged[rows])
        detected = len(hits) > 0
        delay = int(hits[0]) if detected else None
        dt = length if duration == "hours" else length - 1
        if dt == 0:
            ratios.append(0.0 if detected else 1.0)
        else:
            ratios.append((delay if delay is not None else dt) / dt)
        per_attack.append(
            {
                "attack_id": int(k),
                "start": start,
                "length": length,
                "detected": detected,
                "delay_hours": delay,
            }
        )
    s_ttd = 1.0 - float(np.mean(ratios)) if ratios else float("nan")
    s_cm = (tpr + tnr) / 2.0
    return {
        "S": gamma * s_ttd + (1.0 - gamma) * s_cm,
        "S_TTD": s_ttd,
        "S_CM": s_cm,
        "TPR": tpr,
        "TNR": tnr,
        "attacks": len(per_attack),
        "attacks_detected": sum(a["detected"] for a in per_attack),
        "per_attack": per_attack,
    }


def trailing_mean(source: list[str], hour: np.ndarray, scores: np.ndarray, hours: int) -> np.ndarray:
    """Each score replaced by the mean score of its log's decided hours in (hour - hours, hour].

    Hours are row positions in their log; hours missing from `hour` (unlabelled ones, which have
    no window) are simply absent from the mean. Order of the inputs is kept."""
    scores = np.asarray(scores, dtype=np.float64)
    hour = np.asarray(hour, dtype=np.int64)
    if hours <= 1 or len(scores) == 0:
        return scores
    out = np.empty_like(scores)
    names = np.asarray(source, dtype=object)
    for name in dict.fromkeys(source):
        where = np.flatnonzero(names == name)
        order = where[np.argsort(hour[where], kind="stable")]
        at, value = hour[order], scores[order]
        total = np.concatenate([[0.0], np.cumsum(value)])
        first = np.searchsorted(at, at - hours, side="right")  # first hour inside the span
        last = np.arange(1, len(at) + 1)
        out[order] = (total[last] - total[first]) / (last - first)
    return out
