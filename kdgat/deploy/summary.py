"""What a streaming detector reports when it stops: counts, throughput, latency, what it fitted on
the car, and the alerts that hold CAN IDs outside its vocabulary."""

import collections
import dataclasses
from typing import Any

import numpy as np

from kdgat.common.names import some_of


@dataclasses.dataclass
class Summary:
    frames: int = 0
    malformed: int = 0
    windows: int = 0
    alerts: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    """CPU time of the detecting thread: what one dedicated core spends (on a shared machine
    the wall time also counts the time other processes held the core)."""
    latencies: list[float] = dataclasses.field(default_factory=list)
    """Per scored window: seconds from the hand-over of its last frame (one at a time,
    micro-batched) or of its block to its score: its graph update and inference, and in a
    batch or block the other windows' share before it."""
    cpu_latencies: list[float] = dataclasses.field(default_factory=list)
    """The same in CPU time of the thread."""
    calibration: dict[str, Any] | None = None
    """What a self-calibrating detector fitted on the stream's first seconds (kdgat/deploy/calibrate.py)."""
    alerts_with_unknown_ids: int = 0
    """Alerts whose window holds a CAN ID outside the detector's vocabulary (see unknown_ids)."""
    unknown_ids: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    """Each such ID and the alerts it is in."""
    calibrated: bool = False
    """The vocabulary is the IDs a calibration heard (a detector calibrating itself, or an artefact
    exported calibrated), not the run's training IDs."""

    def as_dict(self) -> dict[str, Any]:
        lat = np.asarray(self.latencies) * 1e3
        return {
            "frames": self.frames,
            "malformed": self.malformed,
            "windows": self.windows,
            "alerts": self.alerts,
            "seconds": round(self.seconds, 6),
            "frames_per_s": round(self.frames / self.seconds, 1) if self.seconds > 0 else None,
            "cpu_seconds": round(self.cpu_seconds, 6),
            "latency_ms_p50": round(float(np.percentile(lat, 50)), 4) if len(lat) else None,
            "latency_ms_p99": round(float(np.percentile(lat, 99)), 4) if len(lat) else None,
            "alerts_with_unknown_ids": self.alerts_with_unknown_ids,
            "unknown_ids": dict(self.unknown_ids.most_common()),
            **({"calibration": self.calibration} if self.calibration else {}),
        }

    def count_unknown(self, ids: list[str]) -> None:
        """An alert whose window holds these IDs outside the vocabulary."""
        if ids:
            self.alerts_with_unknown_ids += 1
            self.unknown_ids.update(ids)

    def unknown_warning(self) -> str | None:
        """Where alerts hold IDs the model takes for unknown: which, and what it may mean."""
        if not self.alerts_with_unknown_ids:
            return None
        shown = some_of(list(self.as_dict()["unknown_ids"]))
        if self.calibrated:
            whose = "the calibration never heard"
            remedy = (
                "if they are the car's own, heard only in another driving state (the engine off "
                "during calibration, say), calibrate again in the state being watched"
            )
        else:
            whose = "the run never saw in training"
            remedy = "on a car other than the training one, calibrate first (--calibrate-seconds N)"
        return (
            f"{self.alerts_with_unknown_ids} of {self.alerts} alerts hold CAN IDs {whose} ({shown}); "
            f"the model sees each as unknown, as it would an injected ID: {remedy}."
        )

    def text(self) -> str:
        d = self.as_dict()
        return (
            f"frames {d['frames']}  malformed {d['malformed']}  windows {d['windows']}  "
            f"alerts {d['alerts']}  {d['frames_per_s']} frames/s sustained  latency p50 "
            f"{d['latency_ms_p50']} ms  p99 {d['latency_ms_p99']} ms"
        )
