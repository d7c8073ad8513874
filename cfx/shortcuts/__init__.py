"""Shortcut detection: do counterfactual paths flip a classifier through a spurious marker?

:class:`ShortcutAudit` walks images across the decision boundary with a fixed generator and
reports, per path, the share of the pixel change (and of the saliency mass) inside the lesion,
inside the scanner-marker region and elsewhere, broken down by target class and by whether the
source carries the marker (:class:`MarkerCell`), plus a verdict per classifier. The region
arithmetic is plain functions in :mod:`cfx.shortcuts.regions`.
"""

from cfx.shortcuts.audit import ShortcutAudit
from cfx.shortcuts.regions import (
    claimed_regions,
    region_areas,
    region_enrichment,
    region_shares,
)
from cfx.shortcuts.report import ByRegion, MarkerCell, PathExplainer, ShortcutReport

__all__ = [
    "ByRegion",
    "MarkerCell",
    "PathExplainer",
    "ShortcutAudit",
    "ShortcutReport",
    "claimed_regions",
    "region_areas",
    "region_enrichment",
    "region_shares",
]
