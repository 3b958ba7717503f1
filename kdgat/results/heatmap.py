"""The transfer matrix as a heatmap PNG: one panel per figure (F1, AUROC, benign FPR, floor).

matplotlib draws it (pinned in requirements.txt): a labelled, annotated heatmap grid is what it
is for, and hand-writing PNG rasterisation and text would be far more code than this module.
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
    """Save one annotated heatmap per matrix (rows trained-on, columns evaluated-on) to path."""
    import io

    import matplotlib

    matplotlib.use("Agg")  # no display: files only
    import matplotlib.pyplot as plt

    first = next(iter(matrices.values()))
    rows, cols = first.shape
    width = max(4.0, 1.1 * cols + 3.0)
    height = max(2.5, 0.45 * rows + 1.8)
    fig, axes = plt.subplots(1, len(matrices), figsize=(width * len(matrices), height), squeeze=False)
    for ax, (name, matrix) in zip(axes[0], matrices.items(), strict=True):
        values = matrix.to_numpy(dtype=float)
        image = ax.imshow(np.ma.masked_invalid(values), vmin=0.0, vmax=1.0, cmap=CMAPS.get(name, "viridis"))
        ax.set_title(name)
        ax.set_xticks(range(matrix.shape[1]), [str(c) for c in matrix.columns], rotation=30, ha="right")
        ax.set_yticks(range(matrix.shape[0]), [str(i) for i in matrix.index] if ax is axes[0][0] else [])
        ax.set_xlabel("evaluated on")
        for (i, j), value in np.ndenumerate(values):
            if np.isfinite(value):
                ax.text(
                    j, i, f"{value:.3f}", ha="center", va="center", color="white" if value < 0.5 else "black"
                )
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    axes[0][0].set_ylabel("trained on")
    fig.suptitle(title)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buffer.getvalue())
    return path
