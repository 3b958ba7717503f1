"""The 4-column CAN layout reader (kept for callers of `read_can_csv`; see readers.py)."""

from pathlib import Path

from kdgat.data.frames import Frames
from kdgat.data.readers import CAN4_HEADER as HEADER
from kdgat.data.readers import EXPECTED, read_can4
from kdgat.data.scan import read_bytes

EXPECTED_ROW = EXPECTED["can4"]
__all__ = ["EXPECTED_ROW", "HEADER", "read_bytes", "read_can_csv"]


def read_can_csv(path: Path, malformed: str = "error", na_frames: str = "drop") -> Frames:
    """Read one 4-column capture. Raises DataError naming file:line on the first bad row."""
    return read_can4(Path(path), malformed=malformed, na_frames=na_frames)
