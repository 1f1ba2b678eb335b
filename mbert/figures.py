"""Figures shared by the stages and the report, drawn with matplotlib's object API (no pyplot, no
GUI backend, no global figure state) and returned as PNG bytes."""

from __future__ import annotations

import io
from typing import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def png(fig: Figure, dpi: int) -> bytes:
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


def heatmap(rows: Sequence[str], columns: Sequence[str], values: Sequence[Sequence[float | None]], *,
            title: str = "", dpi: int = 110, value_label: str = "score (0-100)") -> bytes:
    """A rows × columns grid of scores with the values written in the cells; missing cells grey."""
    grid = np.array([[np.nan if v is None else v for v in row] for row in values], dtype=float)
    if len(columns) > 30 and len(columns) > len(rows):
        # many languages: one row per language reads better than a page-wide strip
        grid, rows, columns = grid.T, columns, rows
    per_row = 0.5 if len(rows) <= 12 else 0.24
    fig = Figure(figsize=(max(5.0, 0.55 * len(columns) + 2.5), max(2.2, per_row * len(rows) + 1.4)))
    ax = fig.add_subplot(1, 1, 1)
    masked = np.ma.masked_invalid(grid)
    image = ax.imshow(masked, cmap="viridis", aspect="auto", vmin=np.nanmin(grid) if np.isfinite(grid).any() else 0,
                      vmax=np.nanmax(grid) if np.isfinite(grid).any() else 1)
    ax.set_facecolor("#dddddd")
    ax.set_xticks(range(len(columns)), labels=list(columns), fontsize=8, rotation=90 if len(columns) > 12 else 0)
    ax.set_yticks(range(len(rows)), labels=list(rows), fontsize=8)
    if len(rows) > 30:  # a tall grid: repeat the column names on top
        ax.tick_params(top=True, labeltop=True)
    if len(columns) <= 40:  # numbers in the cells only while they are legible
        finite = grid[np.isfinite(grid)]
        middle = (finite.min() + finite.max()) / 2 if finite.size else 0
        for r in range(grid.shape[0]):
            for c in range(grid.shape[1]):
                if np.isfinite(grid[r, c]):
                    ax.text(c, r, f"{grid[r, c]:.0f}", ha="center", va="center", fontsize=7,
                            color="black" if grid[r, c] > middle else "white")
    fig.colorbar(image, ax=ax, label=value_label, fraction=0.046, pad=0.02)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return png(fig, dpi)
