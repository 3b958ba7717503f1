"""Progress bars on a terminal, nothing in logs: one tqdm configuration for every long step.

tqdm (a well-kept library) draws, rate-limits and clears the bar; `disable=None` is tqdm's own
"draw only when the stream is a TTY", so Slurm output files and captured test output stay free
of carriage-return noise.
"""

import sys
from typing import IO, Any

from tqdm import tqdm


def progress_bar(
    total: int, *, unit: str, desc: str, file: IO[str] | None = None, show: bool = True
) -> "tqdm[Any]":
    """A bar counting `unit`s up to total on stderr (or file), drawn only when that is a terminal.

    leave=False: the bar disappears when closed, so the line printed after it (an epoch's
    figures) is all that stays on screen. show=False never draws (e.g. a single file)."""
    return tqdm(
        total=total,
        unit=unit,
        desc=desc,
        file=file if file is not None else sys.stderr,
        disable=None if show else True,
        leave=False,
        dynamic_ncols=True,
        mininterval=0.2,
    )
