"""The results of :class:`cfx.shortcuts.audit.ShortcutAudit`: per-path region shares, the
per-cell marker analysis and the verdict (the method and its rules are described there)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor

from cfx.errors import check, counted
from cfx.reprs import short_repr
from cfx.trajectory import TrajectoryResult
from cfx.types import Target

REGIONS = ("lesion", "marker", "elsewhere")


class PathExplainer(Protocol):
    """Anything with ``explain(x, target, latents=...) -> TrajectoryResult`` (Options 1 and 2)."""

    def explain(
        self, x: Tensor, target: Target, *, latents: Tensor | None = None
    ) -> TrajectoryResult: ...


MARKER_NAME = "scanner marker"
"""The marker region's name by default: the box cfx's brain slices carry."""


@dataclass(frozen=True)
class ByRegion:
    """One value per example and region (a share, an enrichment or an area fraction)."""

    lesion: Tensor  # (B,)
    marker: Tensor  # (B,)
    elsewhere: Tensor  # (B,)

    @classmethod
    def of(cls, values: dict[str, Tensor]) -> ByRegion:
        return cls(lesion=values["lesion"], marker=values["marker"], elsewhere=values["elsewhere"])

    def medians(self, where: Tensor | None = None) -> dict[str, float]:
        """Median per region over the examples selected by the bool ``(B,)`` ``where``
        (all by default), ignoring NaN; NaN when nothing is left."""
        return {name: _median(getattr(self, name), where) for name in REGIONS}


@dataclass(frozen=True)
class MarkerCell:
    """The paths into one target class from source images with (or without) the marker.

    Counts are over the paths selected (see :meth:`ShortcutReport.cells`); rates and medians
    over the counted ones, NaN when none counted.
    """

    target: int  # the class the paths walk into
    marker_present: bool  # the source images carry the marker
    source: str  # e.g. "tumour images with the marker"
    n_paths: int
    n_counted: int  # started outside the target class and flipped into it
    n_via_marker: int  # counted paths whose change is enriched >= min_enrichment in the box
    n_undone: int  # counted paths whose flip restoring the marker region alone undoes
    via_rate: float  # n_via_marker / n_counted
    undo_rate: float  # n_undone / n_counted
    median_marker_enrichment: float
    median_lesion_enrichment: float
    enough_paths: bool  # n_counted >= min_paths: the cell can flag the classifier
    flagged: bool  # enough_paths and (via_rate or undo_rate) >= flag_rate
    # median mean signed change in the marker region over the paths through the marker (via
    # it, or undone by restoring it; NaN: none)
    median_marker_delta: float = math.nan
    marker_name: str = MARKER_NAME  # what the verb calls the marker
    # which tests reached the flag rate: "change" (via_rate), "restoring" (undo_rate)
    flagged_by: tuple[str, ...] = ()

    @property
    def verb(self) -> str:
        """What the paths through the marker do to its region, by the sign of their change
        there: "removing the scanner marker" (darker, from images that carry the bright
        marker) or "brightening" it, "adding the scanner marker" (brighter, to images without
        it) or "darkening the scanner marker's region"; "changing the scanner marker's
        region" when no path goes via the marker or is undone by restoring it (no change to
        read a sign from). The marker is called :attr:`marker_name`."""
        delta, name = self.median_marker_delta, self.marker_name
        if math.isnan(delta):  # "adding the marker in 0% of paths" read as a finding
            return f"changing the {name}'s region"
        if self.marker_present:
            return f"brightening the {name}" if delta > 0 else f"removing the {name}"
        return f"darkening the {name}'s region" if delta < 0 else f"adding the {name}"

    def phrase(self) -> str:
        """E.g. "67% of paths from tumour images with the marker (2 of 3; restoring the
        marker region undoes the flip of 3 of the 3)": the second count is over every
        counted path, the ones whose change is not enriched at the marker included."""
        return (
            f"{self.via_rate:.0%} of paths from {self.source} ({self.n_via_marker} of "
            f"{self.n_counted}; restoring the {called(self.marker_name)} region undoes the flip of "
            f"{self.n_undone} of the {self.n_counted})"
        )

    def finding(self) -> str:
        """What a flagged cell found, by the test that flagged it: "removing the scanner
        marker in " + :meth:`phrase` when enough paths' change is enriched in the marker
        region, else "removing the scanner marker: restoring its region undoes the flip of
        100% of paths from tumour images with the marker (3 of 3; the change is enriched
        there in 1 of the 3)"."""
        if "change" in self.flagged_by or not self.flagged_by:
            return f"{self.verb} in {self.phrase()}"
        return (
            f"{self.verb}: restoring its region undoes the flip of {self.undo_rate:.0%} of "
            f"paths from {self.source} ({self.n_undone} of {self.n_counted}; the change is "
            f"enriched there in {self.n_via_marker} of the {self.n_counted})"
        )


def _median(values: Tensor, where: Tensor | None) -> float:
    v = values if where is None else values[where]
    v = v[~torch.isnan(v)]
    return float(v.double().quantile(0.5)) if v.numel() else math.nan  # mean of middle two


def _rate(flags: Tensor, where: Tensor) -> float:
    """Share of ``flags`` that are true among ``where`` (NaN when ``where`` is empty), in
    float64: float32's 7 of 10 is 0.69999999, under a ``flag_rate`` of 0.7 it reaches."""
    return float(flags[where].double().mean()) if bool(where.any()) else math.nan


def direction_names(class_names: Sequence[str]) -> dict[int, str]:
    """Each path direction's name, keyed by its target class: ``"tumour->healthy"`` for class
    0 of ``("healthy", "tumour")`` (a path into one of two classes starts in the other);
    ``"->name"`` with more classes."""
    names = tuple(class_names)
    if len(names) == 2:
        return {0: f"{names[1]}->{names[0]}", 1: f"{names[0]}->{names[1]}"}
    return {t: f"->{name}" for t, name in enumerate(names)}


def called(marker_name: str) -> str:
    """What the verdict's counts call the marker: "marker" for cfx's scanner marker, else
    the name given (``marker_name="hospital tag"``: "images with the hospital tag")."""
    return "marker" if marker_name == MARKER_NAME else marker_name


def _source(names: tuple[str, ...], target: int, present: bool, marker_name: str) -> str:
    marker = ("with the " if present else "without the ") + called(marker_name)
    if len(names) == 2:  # the source of a path into one class is the other class
        return f"{names[1 - target]} images {marker}"
    return f"images {marker} walked into {names[target]}"


STATUSES = (
    ("flips by", "flagged"),
    ("no shortcut found", "clean"),
    ("inconclusive", "inconclusive"),
)
"""How :meth:`ShortcutReport.describe` begins for each :meth:`ShortcutReport.status` but
"no verdict"."""


@dataclass(frozen=True)
class ShortcutReport:
    """Where a batch of counterfactual paths changed the image, and the verdict.

    All per-path tensors are ``(B,)``; regions are ``lesion`` (dilated), ``marker`` and
    ``elsewhere`` (see :mod:`cfx.shortcuts.report` for the definitions and precedence).
    """

    __repr__ = short_repr  # shapes and counts, not every field in full

    paths: TrajectoryResult  # the explainer's result (frames, probs, target, success, ...)
    source_class: Tensor  # (B,) int64, the classifier's class for the input x
    started_outside: Tensor  # (B,) bool, neither x nor G(z_0) was already in the target class
    marker_present: Tensor  # (B,) bool, the input x carries the marker
    change: ByRegion  # shares of |G(z_T) - G(z_0)|
    change_enrichment: ByRegion  # share / area fraction (NaN for empty regions)
    saliency: ByRegion  # shares of |saliency of x for source_class|
    saliency_enrichment: ByRegion  # share / area fraction
    area: ByRegion  # area fraction of each region (after dilation and precedence)
    via_marker: Tensor  # (B,) bool, the change is enriched >= min_enrichment in the marker
    marker_delta: Tensor  # (B,) mean signed change G(z_T) - G(z_0) in the marker region
    restored_probs: Tensor  # (B,) target probability of G(z_T) with G(z_0)'s marker region
    restored_in_target: Tensor  # (B,) bool, the classifier's arg-max for that image is the target
    saliency_maps: Tensor  # (B, 1, H, W) |attribution| of x for source_class
    lesion_masks: Tensor  # (B, 1, H, W) bool, as given (before dilation)
    marker_masks: Tensor  # (B or 1, 1, H, W) bool
    class_names: tuple[str, ...]  # class k's name, for the verdict
    min_enrichment: float
    flag_rate: float
    min_paths: int
    marker_name: str = MARKER_NAME  # what the verdict calls the marker

    @property
    def target(self) -> Tensor:
        """``(B,)`` int64 target class of each path."""
        return self.paths.target

    @property
    def flipped(self) -> Tensor:
        """``(B,)`` bool, the classifier puts the last frame in the target class."""
        return self.paths.success

    @property
    def counted(self) -> Tensor:
        """``(B,)`` bool, the paths that enter the verdict: started outside the target class
        and flipped into it."""
        return self.started_outside & self.paths.success

    @property
    def undone(self) -> Tensor:
        """``(B,)`` bool, restoring the marker region alone takes the last frame out of the
        target class (the classifier's arg-max; with two classes, its probability below 0.5):
        a 3-class frame restored to (0.45, 0.30, 0.25) is still in class 0."""
        return ~self.restored_in_target

    def _where(self, where: Tensor | None) -> Tensor:
        if where is None:
            return torch.ones_like(self.counted)
        check(
            isinstance(where, Tensor)
            and where.dtype == torch.bool
            and tuple(where.shape) == tuple(self.counted.shape),
            ValueError,
            f"`where` must be a bool tensor of shape {tuple(self.counted.shape)}, got "
            + (
                f"dtype {where.dtype} shape {tuple(where.shape)}"
                if isinstance(where, Tensor)
                else type(where).__name__
            ),
        )
        return where.to(self.counted.device)

    def cells(self, where: Tensor | None = None) -> tuple[MarkerCell, ...]:
        """The paths selected by ``where`` (all by default) split by target class and by
        whether the source carries the marker: for each class in order, with the marker
        first, so two classes give four cells."""
        sel = self._where(where)
        out = []
        for t in range(len(self.class_names)):
            for present in (True, False):
                mine = sel & (self.target == t) & (self.marker_present == present)
                counted = mine & self.counted
                n = int(counted.sum())
                rate, undo = _rate(self.via_marker, counted), _rate(self.undone, counted)
                enough = n >= self.min_paths
                by = tuple(
                    test
                    for test, r in (("change", rate), ("restoring", undo))
                    if enough and r >= self.flag_rate
                )
                through = (self.via_marker | self.undone) & counted
                out.append(
                    MarkerCell(
                        target=t,
                        marker_present=present,
                        source=_source(self.class_names, t, present, self.marker_name),
                        n_paths=int(mine.sum()),
                        n_counted=n,
                        n_via_marker=int((self.via_marker & counted).sum()),
                        n_undone=int((self.undone & counted).sum()),
                        via_rate=rate,
                        undo_rate=undo,
                        median_marker_enrichment=_median(self.change_enrichment.marker, counted),
                        median_lesion_enrichment=_median(self.change_enrichment.lesion, counted),
                        enough_paths=enough,
                        flagged=bool(by),
                        median_marker_delta=_median(self.marker_delta, through),
                        marker_name=self.marker_name,
                        flagged_by=by,
                    )
                )
        return tuple(out)

    @property
    def marker_rate(self) -> float:
        """Share of all counted paths that go via the marker, pooled over the cells (NaN if
        none counted); per subset: ``summary(where)["marker_rate"]``."""
        return _rate(self.via_marker, self.counted)

    @property
    def flagged(self) -> bool:
        """Some cell with at least ``min_paths`` counted paths goes via the marker, or has its
        flips undone by restoring the marker region, in at least ``flag_rate`` of them."""
        return any(cell.flagged for cell in self.cells())

    @property
    def verdict(self) -> str:
        """One line, e.g. "flips by removing the scanner marker in 100% of paths from tumour
        images with the marker (3 of 3; ...); ..." or "no shortcut found: ..." (or
        "inconclusive: ...", "no verdict: ...", see :meth:`describe`)."""
        return self.describe()

    def status(self, where: Tensor | None = None) -> str:
        """The verdict's kind for the paths selected by ``where``, for scripts: "flagged",
        "clean" ("no shortcut found"), "inconclusive" or "no verdict" (see :meth:`describe`,
        whose first words these are)."""
        text = self.describe(where)
        for start, kind in STATUSES:
            if text.startswith(start):
                return kind
        return "no verdict"

    def summary(self, where: Tensor | None = None) -> dict[str, float]:
        """Counts, pooled rates and medians for the paths selected by ``where`` (all by
        default); per cell see :meth:`cells`.

        Counts: paths whose input the classifier already puts in the target class, paths
        whose reconstruction ``G(z_0)`` (but not the input) is already there (a generator
        the classifier reads differently from real images), the rest (started outside) and
        the counted ones (of those, flipped).
        Rates: ``flip_rate`` over the paths that started outside the target class;
        ``marker_rate`` and ``marker_undo_rate`` (restoring the marker region alone takes
        the last frame out of the target class: the classifier's arg-max, below 0.5 with two
        classes) over the counted paths. Medians of change
        shares and enrichments are over the counted paths; saliency and area medians over
        all selected examples.
        """
        sel = self._where(where)
        counted = self.counted & sel
        outside = self.started_outside & sel
        input_in = (self.source_class == self.paths.target) & sel
        out = {
            "n_paths": int(sel.sum()),  # counts stay whole numbers (3, not 3.0, in JSON)
            "n_input_in_target": int(input_in.sum()),
            "n_reconstruction_in_target": int((sel & ~input_in & ~self.started_outside).sum()),
            "n_started_outside": int(outside.sum()),
            "n_counted": int(counted.sum()),
            "flip_rate": _rate(self.paths.success, outside),
            "marker_rate": _rate(self.via_marker, counted),
            "marker_undo_rate": _rate(self.undone, counted),
        }
        for name, values, rows in (
            ("change", self.change, counted),
            ("change_enrichment", self.change_enrichment, counted),
            ("saliency", self.saliency, sel),
            ("saliency_enrichment", self.saliency_enrichment, sel),
            ("area", self.area, sel),
        ):
            for region, med in values.medians(rows).items():
                out[f"median_{name}_{region}"] = med
        return out

    def _all_start_in_target(self, sel: Tensor) -> str:
        """The verdict when every selected path starts in the target class: the inputs
        themselves, or (where the inversion moved them) their reconstructions."""
        total = int(sel.sum())
        inputs = int(((self.source_class == self.paths.target) & sel).sum())
        one = total == 1
        paths = "the path starts" if one else f"all {total} paths start"
        if inputs == total:
            why = "the classifier already puts the input" + ("" if one else "s") + " there"
        elif inputs == 0:
            why = (
                "the classifier puts the reconstruction G(z_0) there, not the input"
                if one
                else "the classifier puts the reconstructions G(z_0) there, not the inputs"
            )
        else:
            rest = total - inputs
            why = (
                f"{counted(inputs, 'input')} already there, {counted(rest, 'reconstruction')} only"
            )
        return f"no verdict: {paths} in the target class ({why})"

    def describe(self, where: Tensor | None = None) -> str:
        """The verdict for the paths selected by ``where`` (all by default), one line.

        Lists the cells with at least ``min_paths`` counted paths (flagged ones first, the
        others after "below the flag rate:"), names the smaller ones (with where their other
        paths went), and ends with the pooled count. "inconclusive" replaces "no shortcut
        found" when no cell of sources carrying the marker could be judged (e.g. the
        classifier already calls every one of them the target class), since a shortcut would
        have had nowhere to show. Each cell's verb ("removing", "adding", "brightening",
        "darkening") follows whether its source images carry the marker and the sign of the
        change its paths through the marker (via it, or
        undone by restoring it) make there.
        """
        sel = self._where(where)
        counted = self.counted & sel
        n = int(counted.sum())
        if not bool(sel.any()):
            return "no verdict: no paths selected"
        if n == 0:
            return (
                f"no verdict: none of the {int(sel.sum())} paths crossed into the target class "
                f"from outside it ({int((self.started_outside & sel).sum())} started outside, "
                "none of those flipped)"
                if bool((self.started_outside & sel).any())
                else self._all_start_in_target(sel)
            )
        every = [c for c in self.cells(sel) if c.n_paths > 0]
        cells = [c for c in every if c.n_counted > 0]
        flagged = sorted(
            (c for c in cells if c.flagged), key=lambda c: -max(c.via_rate, c.undo_rate)
        )
        judged = flagged + [c for c in cells if c.enough_paths and not c.flagged]
        small = [c for c in every if not c.enough_paths]  # none counted included
        tail = (
            f"; under {self.min_paths} counted paths: "
            + ", ".join(self._few(c, sel) for c in small)
            if small
            else ""
        ) + (
            f"; pooled: {int((self.via_marker & counted).sum())} of {n} counted paths via the "
            f"{called(self.marker_name)}, {int((self.undone & counted).sum())} undone by "
            "restoring it"
        )
        total = int(sel.sum())
        if total > n:  # every path accounted for (the judged cells' others went unsaid)
            tail += f" (of the {total} paths, not counted: {', '.join(self._uncounted(sel))})"
        tail += self._target_hint(sel)  # said with a flag too: its cells are the wrong images
        if flagged:
            first, *rest = flagged
            parts = [f"flips by {first.finding()}"]
            parts += [c.finding() for c in rest]
            # the judged cells that did not flag are set apart: listed after the findings
            # they read as part of them ("...; changing the marker's region in 0% of ...")
            below = [c.phrase() for c in judged if not c.flagged]
            if below:
                parts.append("below the flag rate: " + ", ".join(below))
            return "; ".join(parts) + tail
        # with no cell of marked sources judged, a shortcut had nowhere to show: "no shortcut
        # found" would read as a clean bill (e.g. every marked slice already misread, or no
        # image marked at all: a marker_present of zeros read "clean" for a shortcut model)
        # A direction no marked image walks (the marker only on tumour slices, say) is judged
        # by its unmarked paths, which would go via the marker by adding it
        none = not bool(self.marker_present.any())  # of every input, selected or not
        unjudged = [c for c in small if c.marker_present]
        if none:  # every direction the selected paths take has its marked cell unjudged
            walked = {c.target for c in every}
            unjudged = [c for c in self.cells(sel) if c.marker_present and c.target in walked]
        if judged and unjudged and not any(c.marker_present for c in judged):
            return (
                "inconclusive: no shortcut where paths could be judged ("
                + "; ".join(c.phrase() for c in judged)
                + "), but too few counted paths from "
                + " and ".join(c.source for c in unjudged)
                + (
                    f" (none of the {self.marker_present.numel()} images carries the "
                    f"{called(self.marker_name)}: "
                    "is `marker_present` right?)"
                    if none
                    else ""
                )
                + tail
            )
        if judged:
            return (
                f"no shortcut found: the {self.marker_name} carries the change in "
                + "; ".join(c.phrase() for c in judged)
                + tail
            )
        return f"no verdict: no cell of source images has {self.min_paths} counted paths" + tail

    def _target_hint(self, sel: Tensor) -> str:
        """When most selected inputs are already in their target class (the labels passed as
        the target: most paths start where they should end), what ``target`` is."""
        already = int((sel & (self.source_class == self.paths.target)).sum())
        return (
            "; most inputs are already in their target class: `target` is the class each "
            "path walks into"
            + (
                " (1 - labels walks every image into the other of two classes)"
                if len(self.class_names) == 2
                else ""
            )
            if 2 * already > int(sel.sum())
            else ""
        )

    def _few(self, cell: MarkerCell, sel: Tensor) -> str:
        """A cell with too few counted paths, and where its other paths went: e.g. "healthy
        images with the marker (0 of 0; 6 inputs already in the target class)"."""
        mine = sel & (self.target == cell.target) & (self.marker_present == cell.marker_present)
        why = self._uncounted(mine)
        return f"{cell.source} ({cell.n_via_marker} of {cell.n_counted}" + (
            f"; {', '.join(why)})" if why else ")"
        )

    def _uncounted(self, mine: Tensor) -> list[str]:
        """Where the paths of ``mine`` (bool ``(B,)``) that are not counted went: e.g.
        ["6 inputs already in the target class", "1 path that did not flip"]."""
        already = int((mine & (self.source_class == self.target)).sum())
        rebuilt = int((mine & (self.source_class != self.target) & ~self.started_outside).sum())
        stuck = int((mine & self.started_outside & ~self.counted).sum())
        why = []
        if already:
            why.append(f"{counted(already, 'input')} already in the target class")
        if rebuilt:
            why.append(f"{counted(rebuilt, 'reconstruction')} already there")
        if stuck:
            why.append(f"{counted(stuck, 'path')} that did not flip")
        return why
