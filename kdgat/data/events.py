"""The canonical event table the graph builder consumes (DESIGN section 6).

One row per event, in capture order: time, source entity, optional target entity, a numeric
payload, label and the capture's attack type. automotive maps a CAN frame onto it as
(time, arbitration ID, no target, data bytes); internet (hosts and flows) and watertreatment
(sensors and process links) can map their records onto the same table later.
"""

import dataclasses
from pathlib import Path

import numpy as np


@dataclasses.dataclass
class Events:
    """Events of one capture, in capture order.

    time: float64 seconds (when has_time is False: the event index, and timing features are zero);
    entity: int64 source entity (CAN ID); target: int64 target entity or None (CAN frames are
    broadcast); payload: uint8 (n, 8) zero-padded; payload_len: int8 bytes used; label: int8,
    1 = attack; has_time: False for captures without timestamps (ROAD re-processed, Ohira logs).
    """

    source: Path
    time: np.ndarray
    entity: np.ndarray
    target: np.ndarray | None
    payload: np.ndarray
    payload_len: np.ndarray
    label: np.ndarray
    attack_type: str = "benign"
    has_time: bool = True

    def __len__(self) -> int:
        return int(self.time.shape[0])
