"""The in-memory frame table every CAN reader produces and the graph builder consumes."""

import dataclasses
from pathlib import Path

import numpy as np


@dataclasses.dataclass
class Frames:
    """CAN frames of one capture file, in capture order.

    time: float64 seconds; can_id: int64 arbitration ID; payload: uint8 (n, 8), zero-padded past
    dlc; dlc: int8 payload length in bytes; label: int8, 1 = injected frame.
    """

    source: Path
    time: np.ndarray
    can_id: np.ndarray
    payload: np.ndarray
    dlc: np.ndarray
    label: np.ndarray
    attack_type: str = "benign"

    def __len__(self) -> int:
        return int(self.time.shape[0])

    def slice(self, start: int, stop: int) -> "Frames":
        return dataclasses.replace(
            self,
            time=self.time[start:stop],
            can_id=self.can_id[start:stop],
            payload=self.payload[start:stop],
            dlc=self.dlc[start:stop],
            label=self.label[start:stop],
        )


ATTACK_KEYWORDS: tuple[tuple[str, str], ...] = (
    ("dos", "dos"),
    ("flood", "dos"),
    ("fuzz", "fuzzing"),
    ("malfunction", "malfunction"),
    ("spoof", "spoofing"),
    ("gear", "spoofing"),
    ("rpm", "spoofing"),
    ("speed", "spoofing"),
    ("standstill", "spoofing"),
    ("masquerade", "masquerade"),
    ("replay", "replay"),
    ("suppress", "suppress"),
    ("systematic", "systematic"),
)


def attack_type_from_name(path: Path) -> str:
    """Attack family named by a capture's file name ('DoS-kia.csv.gz' -> 'dos')."""
    name = path.name.lower()
    for keyword, family in ATTACK_KEYWORDS:
        if keyword in name:
            return family
    return "other"
