"""One look for every figure of kdgat.results, readable in greyscale, saved as PNG and PDF.

Series differ in line style and marker as well as colour (colours of distinct lightness from the
Okabe-Ito palette), bars in hatching, so a figure printed in black and white keeps them apart.
matplotlib is used without pyplot (no global figure state, no display).
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

from kdgat.common.io import atomic_write_bytes

COLOURS = ("#000000", "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#999999")
LINESTYLES = ("-", "--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 3)), (0, (8, 2)), (0, (3, 1, 3, 3)))
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
HATCHES = ("", "///", "...", "xxx", "\\\\\\", "ooo", "---", "+++")
FLOOR_STYLE = {"color": "#555555", "linestyle": (0, (2, 2)), "linewidth": 1.0}
FORMATS = ("png", "pdf")
PNG_DPI = 150

RC = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 7.5,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.grid": True,
    "grid.color": "#dddddd",
    "grid.linewidth": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "lines.linewidth": 1.6,
    "lines.markersize": 5,
    "legend.frameon": False,
    "savefig.bbox": "tight",
    "pdf.fonttype": 42,  # TrueType in the PDF: text stays text for journals
    "svg.fonttype": "none",
}


def series_style(i: int) -> dict[str, Any]:
    """Colour, line style and marker of the i-th series (each cycles on its own length)."""
    return {
        "color": COLOURS[i % len(COLOURS)],
        "linestyle": LINESTYLES[i % len(LINESTYLES)],
        "marker": MARKERS[i % len(MARKERS)],
    }


@contextmanager
def style() -> Iterator[None]:
    """The house style, for the figures drawn inside the block."""
    import matplotlib

    with matplotlib.rc_context(cast(Any, RC)):  # matplotlib types its keys as literals
        yield


def new_figure(width: float, height: float, panels: int = 1, columns: int = 0) -> tuple[Any, list[Any]]:
    """A Figure (no pyplot) with panels side by side, in rows of `columns` (0: one row); width and
    height are one row's. Panels beyond `panels` in the last row are removed."""
    from matplotlib.figure import Figure

    columns = min(columns or panels, panels)
    rows = -(-panels // columns)
    figure = Figure(figsize=(width, height * rows), layout="constrained")
    axes = list(figure.subplots(rows, columns, squeeze=False).ravel())
    for extra in axes[panels:]:
        extra.remove()
    return figure, axes[:panels]


def save(figure: Any, out_dir: Path, name: str, formats: Sequence[str] = FORMATS) -> list[Path]:
    """name.png and name.pdf (or formats) in out_dir, each written atomically; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in formats:
        buffer = io.BytesIO()
        figure.savefig(buffer, format=fmt, dpi=PNG_DPI, metadata=_metadata(fmt))
        path = out_dir / f"{name}.{fmt}"
        atomic_write_bytes(path, buffer.getvalue())
        written.append(path)
    return written


def _metadata(fmt: str) -> dict[str, Any]:
    """No creation date in the files, so the same runs give the same bytes."""
    if fmt == "pdf":
        return {"CreationDate": None, "Producer": "kdgat.results"}
    return {"Software": "kdgat.results"}
