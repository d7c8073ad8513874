"""Attacks on saliency maps: one verb, ``perturb(x, target) -> AttackResult``.

:class:`GhorbaniAttack` (top-k, mass-centre and targeted; Ghorbani et al., AAAI 2019),
:class:`RandomSign` (the random baseline) and :class:`TargetMapAttack` (Dombrowski et al.,
NeurIPS 2019). Budgets ``epsilon`` are fractions of the intensity range (``8/255`` = eight grey
levels); images are in [-1, 1]. Each result reports the top-k intersection, Spearman
correlation and centre-of-mass shift between the original and attacked maps, and whether the
label was kept.
"""

from cfx.saliency.attacks._common import AttackResult, softplus_surrogate
from cfx.saliency.attacks.dombrowski import TargetMapAttack
from cfx.saliency.attacks.ghorbani import GhorbaniAttack
from cfx.saliency.attacks.random_sign import RandomSign

__all__ = ["AttackResult", "GhorbaniAttack", "RandomSign", "TargetMapAttack", "softplus_surrogate"]
