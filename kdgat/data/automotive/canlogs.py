"""Captures in the common tool formats, read through python-can's log readers (format `python_can`).

| suffix | format                                   |
|--------|------------------------------------------|
| .log   | candump -l (`(1513921815.350702) can0 081#7F84690000000069`) |
| .asc   | Vector ASCII                             |
| .blf   | Vector binary logging format             |
| .csv   | python-can CSV (`timestamp,arbitration_id,extended,remote,error,dlc,data`) |
| .trc   | PEAK trace                               |

(`.gz` of the text formats too.) A python-can CSV shares `.csv` with the 4-column layout, so
read_frames hands a `.csv` whose header is python-can's to this reader (is_python_can_csv).

Labels: these formats have no attack flag. A sidecar file `<capture>.labels` beside the capture
gives one 0/1 per message of the log, in order (blank lines and `#` comments ignored); without
one every frame is labelled 0 and the Frames are marked unlabelled (`labelled` False), so its
metrics say nothing about detection (a detector's alerts do).

Frames that do not fit the graph builder's 8-byte CAN frames are malformed: error frames, remote
frames (no data), CAN FD frames longer than 8 bytes. Policy `malformed`: 'error' raises a
DataError naming the message; 'skip' drops them and counts them (Frames.skipped).
"""

from pathlib import Path

import numpy as np

from kdgat.common.errors import DataError
from kdgat.data.automotive.frames import Frames, attack_type_from_name

PYTHON_CAN_CSV_HEADER = "timestamp,arbitration_id,extended,remote,error,dlc,data"
PATTERNS: dict[str, str] = {
    f"*{suffix}{gz}": "python_can" for suffix in (".log", ".asc", ".blf", ".trc") for gz in ("", ".gz")
}


def is_python_can_csv(path: Path) -> bool:
    """A .csv whose first line is python-can's CSV header."""
    import gzip

    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rt", errors="replace") as handle:
            return handle.readline().strip() == PYTHON_CAN_CSV_HEADER
    except (OSError, EOFError):
        return False


def labels_path(path: Path) -> Path:
    return path.with_name(path.name + ".labels")


def read_labels(path: Path, count: int) -> np.ndarray | None:
    """The sidecar labels of a capture of `count` messages, or None without a sidecar."""
    sidecar = labels_path(path)
    if not sidecar.is_file():
        return None
    words = [line.split("#", 1)[0].strip() for line in sidecar.read_text().splitlines()]
    words = [w for w in words if w]
    bad = [i for i, w in enumerate(words) if w not in ("0", "1")]
    if bad:
        raise DataError(f"{sidecar}: label {bad[0] + 1} is {words[bad[0]]!r}; each line must be 0 or 1.")
    if len(words) != count:
        raise DataError(
            f"{sidecar} has {len(words)} labels but {path} has {count} messages; the sidecar gives "
            f"one 0/1 line per message of the log, in order."
        )
    return np.asarray([int(w) for w in words], dtype=np.int8)


def message_problem(msg) -> str | None:
    """Why a python-can Message is not a frame the graph builder takes (None: it is one)."""
    if msg.is_error_frame:
        return "an error frame"
    if msg.is_remote_frame:
        return "a remote frame (no data)"
    if len(msg.data) > 8:
        return f"a CAN FD frame of {len(msg.data)} bytes (the graphs take classic frames of 0-8)"
    if not 0 <= msg.arbitration_id <= 0x1FFFFFFF:
        return f"arbitration ID {msg.arbitration_id} out of range"
    return None


def read_python_can(path: Path, malformed: str = "error", na_frames: str = "drop") -> Frames:
    """A candump / ASC / BLF / python-can CSV / TRC capture as Frames."""
    import can

    path = Path(path)
    try:
        messages = list(can.LogReader(path))
    except ValueError as err:  # unknown suffix, or a line the reader cannot parse
        raise DataError(f"{path}: python-can could not read it: {err}") from err
    if not messages:
        raise DataError(f"{path}: no CAN messages in the file.")
    labels = read_labels(path, len(messages))
    keep = np.ones(len(messages), dtype=bool)
    for i, msg in enumerate(messages):
        problem = message_problem(msg)
        if problem is not None:
            if malformed == "error":
                raise DataError(
                    f"{path}: message {i + 1} ({msg}) is {problem}. Skip such frames with "
                    f"--dataset-config.malformed skip."
                )
            keep[i] = False
    kept = [m for m, k in zip(messages, keep, strict=True) if k]
    if not kept:
        raise DataError(f"{path}: no message is a classic data frame (all {len(messages)} malformed).")
    payload = np.zeros((len(kept), 8), dtype=np.uint8)
    for i, msg in enumerate(kept):
        payload[i, : len(msg.data)] = np.frombuffer(bytes(msg.data), dtype=np.uint8)
    return Frames(
        source=path,
        time=np.asarray([m.timestamp for m in kept], dtype=np.float64),
        can_id=np.asarray([m.arbitration_id for m in kept], dtype=np.int64),
        payload=payload,
        dlc=np.asarray([len(m.data) for m in kept], dtype=np.int8),
        label=labels[keep] if labels is not None else np.zeros(len(kept), dtype=np.int8),
        attack_type=attack_type_from_name(path),
        skipped=int((~keep).sum()),
        labelled=labels is not None,
    )
