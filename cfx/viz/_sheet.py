"""A figure of image panels placed by hand, in inches, on one matplotlib axes.

A grid of axes (one per panel) cost about 15 ms an axes to make and 10 ms an axes for
``tight_layout`` to place: a strip page of 16 sequences (192 panels) took 4.5 s to draw, most
of a ``cfx trajectory`` run's drawing. Here every panel is an image artist on the same axes,
whose data coordinates are inches from the figure's top left, so a panel's place is
arithmetic: the same page takes 1.35 s (``benchmarks/figures.py``; BENCHMARKS.md, session 58).
Saved as SVG or PDF, matplotlib merges the images of one axes into one picture (at the same
resolution): the panels are not separate objects in a vector editor.
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
        ``side``-inch square whose top left is ``(x, y)``, as large as fits with its shape kept
        (a 96 x 64 scan is not stretched square), with ``frame`` a thin black line around it
        as an axes' spines drew; returns the image artist (for a colour bar)."""
        left, top, width, height = _fitted(picture.shape[:2], x, y, side)
        style.setdefault("interpolation", "nearest")  # None: matplotlib's default
        shown = self.ax.imshow(
            picture,
            # (left, right, bottom, top): row 0 at the top
            extent=(left, left + width, top + height, top),
            aspect="auto",
            **style,
        )
        if frame:
            self.box(left, top, width, height, colour="black")
        return shown

    def show(self, picture: np.ndarray, x: float, y: float, side: float, **kw: Any) -> Any:
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

    def pixel_box(
        self,
        shape: tuple[int, ...],
        region: tuple[slice, slice],
        x: float,
        y: float,
        side: float,
        *,
        colour: str,
    ) -> None:
        """Outline ``region`` ``(rows, columns)`` of an ``(H, W)`` picture drawn by
        :meth:`image` at ``(x, y)``, on the edges of its pixels."""
        h, w = shape[:2]
        left, top, across, down = _fitted((h, w), x, y, side)
        rows, cols = (range(*r.indices(n)) for r, n in zip(region, (h, w), strict=True))
        self.box(
            left + cols.start * across / w,
            top + rows.start * down / h,
            len(cols) * across / w,
            len(rows) * down / h,
            colour=colour,
        )

    def outline(
        self, mask: np.ndarray, x: float, y: float, side: float, colour: str, width: float = 0.6
    ) -> None:
        """Outline the ``(H, W)`` mask's 0.5 level in ``colour``, ``width`` points wide, on the
        panel at ``(x, y)`` (pixel centres where :meth:`image` draws them)."""
        h, w = mask.shape
        left, top, across, down = _fitted((h, w), x, y, side)
        xs = left + (np.arange(w) + 0.5) * across / w
        ys = top + (np.arange(h) + 0.5) * down / h
        self.ax.contour(xs, ys, mask, levels=[0.5], colors=colour, linewidths=width)

    def title(self, text: str, x: float, y: float, side: float, *, fontsize: float = 7) -> None:
        """``text`` centred above the panel whose top left is ``(x, y)``."""
        self.ax.text(x + side / 2, y - 0.03, text, ha="center", va="bottom", fontsize=fontsize)

    def row_name(
        self, text: str, x: float, y: float, height: float, room: float, *, fontsize: float = 5
    ) -> None:
        """``text`` (e.g. the image's file) vertically left of the panel at ``(x, y)``, centred
        on its ``height`` inches, its middle left out where it is longer than ``room`` (the
        rows' pitch: a long file name ran into the next row's)."""
        self.ax.text(x - 0.03, y + height / 2, shortened(text, room - 0.05, fontsize),
                     rotation=90, ha="right", va="center", fontsize=fontsize)  # fmt: skip

    def caption(self, text: str, *, band: float = 0.2, fontsize: float = 7) -> None:
        """One line of text centred in the top ``band`` inches (the figure's ``suptitle``),
        which the panels leave free."""
        y = 1.0 - (band - fontsize / 72) / 2 / self.height  # the line's top: centred in the band
        self.fig.suptitle(text, fontsize=fontsize, y=y, va="top")


def panel_lefts(count: int, column: float, side: float, left: float = 0.0) -> list[float]:
    """The left edges, in inches, of ``count`` ``side``-inch squares each centred in its
    ``column``-inch column, the columns starting ``left`` inches from the figure's edge."""
    return [left + column * c + (column - side) / 2 for c in range(count)]


def panel_height(shape: tuple[int, ...], side: float) -> float:
    """Inches an ``(H, W)`` picture takes down in a ``side``-inch square (:meth:`Sheet.image`
    keeps its shape): a row of wide scans is that much shorter than a row of squares."""
    return _fitted(shape[:2], 0.0, 0.0, side)[3]


def _fitted(shape: tuple[int, ...], x: float, y: float, side: float) -> tuple[float, ...]:
    """``(left, top, width, height)`` in inches of an ``(H, W)`` picture drawn as large as it
    fits, shape kept, in the ``side``-inch square whose top left is ``(x, y)``: centred across,
    at the top (under its title)."""
    h, w = shape
    width, height = side * min(1.0, w / h), side * min(1.0, h / w)
    return x + (side - width) / 2, y, width, height


def shortened(text: str, inches: float, fontsize: float) -> str:
    """``text`` with its middle left out ("BraTS2021_0…_flair.png") where it is longer than
    ``inches`` at ``fontsize`` points (a character is about 0.6 of the size wide)."""
    fits = max(3, int(inches * 72 / (0.6 * fontsize)))
    if len(text) <= fits:
        return text
    head = (fits - 1) // 2
    return text[:head] + "…" + text[len(text) - (fits - 1 - head) :]
