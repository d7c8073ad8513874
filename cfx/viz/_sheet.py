"""A figure of image panels placed by hand, in inches, on one matplotlib axes.

A grid of axes (one per panel) cost about 15 ms an axes to make and 10 ms an axes for
``tight_layout`` to place: a strip page of 16 sequences (192 panels) took 4.5 s to draw, most
of a ``cfx trajectory`` run's drawing. Here every panel is an image artist on the same axes,
whose data coordinates are inches from the figure's top left, so a panel's place is
arithmetic: the same page takes 1.35 s (``benchmarks/figures.py``; BENCHMARKS.md, session 58).
"""

from __future__ import annotations

from typing import Any

import numpy as np

TITLE_LINE = 0.12
"""Inches a line of 7-point title text takes (7 pt at matplotlib's 1.2 line spacing)."""


class Sheet:
    """A ``width`` x ``height`` inch figure (``self.fig``) whose one axes (``self.ax``, no
    ticks or frame) measures inches from the top left: ``x`` to the right, ``y`` down."""

    def __init__(self, width: float, height: float) -> None:
        from matplotlib.figure import Figure

        self.fig = Figure(figsize=(width, height))
        self.ax = self.fig.add_axes((0.0, 0.0, 1.0, 1.0))
        self.ax.set_axis_off()
        self.ax.set_xlim(0.0, width)
        self.ax.set_ylim(height, 0.0)  # y grows downwards, as rows are read
        self.ax.set_autoscale_on(False)  # images and contours leave the limits alone
        self.height = height

    def image(
        self,
        picture: np.ndarray,
        x: float,
        y: float,
        side: float,
        *,
        frame: bool = True,
        **style: Any,
    ) -> Any:
        """Draw ``picture`` (``(H, W)`` with a colour map in ``style``, or ``(H, W, 3)``) in the
        ``side``-inch square whose top left is ``(x, y)``, with ``frame`` a thin black line
        around it as an axes' spines drew; returns the image artist (for a colour bar)."""
        style.setdefault("interpolation", "nearest")  # None: matplotlib's default
        shown = self.ax.imshow(
            picture,
            extent=(x, x + side, y + side, y),  # (left, right, bottom, top): row 0 at the top
            aspect="auto",
            **style,
        )
        if frame:
            self.box(x, y, side, side, colour="black")
        return shown

    def grey(self, picture: np.ndarray, x: float, y: float, side: float, **kw: Any) -> Any:
        """Draw an ``(H, W, C)`` picture in [0, 1]: grey for one channel, colour for three
        (``kw``: :meth:`image`'s)."""
        if picture.shape[-1] == 1:
            return self.image(picture[..., 0], x, y, side, cmap="gray", vmin=0, vmax=1, **kw)
        return self.image(picture, x, y, side, **kw)

    def box(self, x: float, y: float, width: float, height: float, *, colour: str) -> None:
        """An unfilled ``width`` x ``height`` inch rectangle whose top left is ``(x, y)``."""
        from matplotlib.patches import Rectangle

        self.ax.add_patch(
            Rectangle((x, y), width, height, fill=False, linewidth=0.8, edgecolor=colour)
        )

    def outline(
        self, mask: np.ndarray, x: float, y: float, side: float, colour: str, width: float = 0.6
    ) -> None:
        """Outline the ``(H, W)`` mask's 0.5 level in ``colour``, ``width`` points wide, on the
        panel at ``(x, y)`` (pixel centres where :meth:`image` draws them)."""
        h, w = mask.shape
        xs = x + (np.arange(w) + 0.5) * side / w
        ys = y + (np.arange(h) + 0.5) * side / h
        self.ax.contour(xs, ys, mask, levels=[0.5], colors=colour, linewidths=width)

    def title(self, text: str, x: float, y: float, side: float, *, fontsize: float = 7) -> None:
        """``text`` centred above the panel whose top left is ``(x, y)``."""
        self.ax.text(x + side / 2, y - 0.03, text, ha="center", va="bottom", fontsize=fontsize)

    def row_name(self, text: str, x: float, y: float, side: float, *, fontsize: float = 5) -> None:
        """``text`` (e.g. the image's file) vertically left of the panel at ``(x, y)``."""
        self.ax.text(x - 0.03, y + side / 2, text, rotation=90, ha="right", va="center",
                     fontsize=fontsize)  # fmt: skip

    def caption(self, text: str, *, band: float = 0.2, fontsize: float = 7) -> None:
        """One line of text centred in the top ``band`` inches (the figure's ``suptitle``),
        which the panels leave free."""
        y = 1.0 - (band - fontsize / 72) / 2 / self.height  # the line's top: centred in the band
        self.fig.suptitle(text, fontsize=fontsize, y=y, va="top")
