"""The transfer matrix as a heatmap PNG: one panel per figure (F1, AUROC, benign FPR, floor).

matplotlib draws it (pinned in requirements.txt): a labelled, annotated heatmap grid is what it
is for, and hand-writing PNG rasterisation and text would be far more code than this module.
Both colour maps change lightness monotonically, so the figure reads in greyscale too.
Imported only when a PNG is asked for, so the results table itself never loads matplotlib.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from kdgat.common.io import atomic_write_bytes

# Colour map per figure: high is good for F1 and AUROC, bad for benign FPR; the floor is context.
CMAPS = {"benign FPR": "Reds"}


def write_heatmap(matrices: dict[str, pd.DataFrame], path: Path, title: str = "transfer matrix") -> Path:
    """Save one annotated heatmap per matrix (rows trained-on, columns evaluated-on) to path, as
    PNG or PDF by its suffix, in the figures' style (kdgat/results/figure_style.py)."""
    import io

    from kdgat.results.figure_style import PNG_DPI, new_figure, style

    first = next(iter(matrices.values()))
    rows, cols = first.shape
    width = max(4.0, 1.1 * cols + 3.0)
    height = max(2.5, 0.45 * rows + 1.8)
    path = Path(path)
    with style():
        fig, axes = new_figure(width * len(matrices), height, len(matrices))
        for ax, (name, matrix) in zip(axes, matrices.items(), strict=True):
            values = matrix.to_numpy(dtype=float)
            image = ax.imshow(
                np.ma.masked_invalid(values), vmin=0.0, vmax=1.0, cmap=CMAPS.get(name, "viridis")
            )
            ax.grid(False)
            ax.set_title(name)
            ax.set_xticks(range(matrix.shape[1]), [str(c) for c in matrix.columns], rotation=30, ha="right")
            ax.set_yticks(range(matrix.shape[0]), [str(i) for i in matrix.index] if ax is axes[0] else [])
            ax.set_xlabel("evaluated on")
            for (i, j), value in np.ndenumerate(values):
                if np.isfinite(value):
                    ax.text(j, i, f"{value:.3f}", ha="center", va="center", color=_text_colour(name, value))
            fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
        axes[0].set_ylabel("trained on")
        fig.suptitle(title)
        buffer = io.BytesIO()
        fmt = "pdf" if path.suffix.lower() == ".pdf" else "png"
        fig.savefig(buffer, format=fmt, dpi=PNG_DPI if fmt == "png" else None)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def _text_colour(name: str, value: float) -> str:
    """Black on light cells, white on dark ones (viridis is dark low, Reds dark high)."""
    dark = value > 0.6 if name in CMAPS else value < 0.5
    return "white" if dark else "black"
