"""What a calibration capture never heard, as eval_*.json reports it.

Calibration marks the node identities it hears (a new car's CAN IDs) as known; one it never heard
reaches the model as UNKNOWN_ID, as an injected ID does. A capture from another driving state than
the calibration's holds such identities in every window: set_04's accessory-4 (ignition on, engine
off) has no 0x280 or 0x281, which are in every window of its engine-running captures
(docs/findings.md#the-calibration-captures-driving-state). Reporting them says why benign windows
may be flagged, and what to calibrate on instead.
"""

import collections
import dataclasses
from typing import Any

import numpy as np

from kdgat.common.names import some_of
from kdgat.data.registry import MODALITIES

Part = tuple[np.ndarray, dict[int, int], np.ndarray]
"""A capture's or a test folder's (flags, windows per identity, labels), as unheard_summary takes them."""


def unheard_summary(
    flags: np.ndarray, windows_by_id: dict[int, int], y: np.ndarray, modality: str
) -> dict[str, Any]:
    """flags: each scored window holds an identity the calibration never heard; windows_by_id:
    each such identity and how many windows it is in; y: the windows' labels (for the benign
    share only: a label never changes the flags)."""
    benign = y == 0
    return {
        "ids": {
            MODALITIES[modality].identity_name(i): n
            for i, n in sorted(windows_by_id.items(), key=lambda kv: -kv[1])
        },
        "windows": float(flags.mean()) if len(flags) else 0.0,
        "benign_windows": float(flags[benign].mean()) if benign.any() else None,
    }


def combined(parts: list[Part], modality: str) -> dict[str, Any]:
    """unheard_summary over several captures' (flags, windows_by_id, y): one at least."""
    totals: collections.Counter[int] = collections.Counter()
    for _, by_id, _ in parts:
        totals.update(by_id)
    flags = np.concatenate([f for f, _, _ in parts])
    y = np.concatenate([labels for _, _, labels in parts])
    return unheard_summary(flags, totals, y, modality)


@dataclasses.dataclass
class UnheardReport:
    each: dict[str, dict[str, Any]]
    """unheard_summary of each part, by its name (a capture of eval_*.json, a test folder of
    metrics.json)."""
    overall: dict[str, Any]
    warning: str | None


def unheard_report(parts: dict[str, Part], modality: str) -> UnheardReport:
    """What the calibration never heard in each part and over them all, and the warning."""
    for name, (flags, _, y) in parts.items():
        assert len(flags) == len(y), f"{name}: {len(flags)} unheard flags for {len(y)} windows"
    overall = combined(list(parts.values()), modality)
    each = {name: unheard_summary(*part, modality) for name, part in parts.items()}
    return UnheardReport(each, overall, unheard_warning(overall, modality))


def unheard_warning(summary: dict[str, Any], modality: str) -> str | None:
    """A warning where benign windows hold identities the calibration never heard."""
    share = summary.get("benign_windows")
    if not share:
        return None
    shown = some_of(list(summary["ids"]))
    what, state = ("IDs", " (a car with its engine running, if it will be running)")
    if modality != "automotive":
        what, state = "node identities", ""
    return (
        f"{share:.1%} of the benign windows hold {what} the calibration capture never heard ({shown}); "
        f"the model sees each as unknown, as it would an injected one, and may flag the window. "
        f"Calibrate on a capture of the state being scored{state}, or a longer one."
    )
