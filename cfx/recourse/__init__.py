"""Loan recourse: small, actionable, diverse changes that get a denied applicant approved.

One verb, :meth:`Recourse.explain`; one result type per applicant, :class:`RecourseResult`.
Methods, one per module: :mod:`~cfx.recourse.milp` (exact, linear/logistic models),
:mod:`~cfx.recourse.tree` (exact, gradient-boosted trees), :mod:`~cfx.recourse.search`
(any ``predict_proba``), :mod:`~cfx.recourse.dice` (dice-ml adapter); causal recourse through
:class:`AdditiveSCM`.
"""

from cfx.recourse.causal import AdditiveSCM
from cfx.recourse.dice import DiceRecourse
from cfx.recourse.milp import LinearMILP
from cfx.recourse.model import TorchClassifier
from cfx.recourse.recourse import METHODS, Recourse
from cfx.recourse.result import Change, Counterfactual, RecourseResult, to_frame
from cfx.recourse.search import GridSearch
from cfx.recourse.space import Constraints
from cfx.recourse.tree import TreeMILP

__all__ = [
    "METHODS",
    "AdditiveSCM",
    "Change",
    "Constraints",
    "Counterfactual",
    "DiceRecourse",
    "GridSearch",
    "LinearMILP",
    "Recourse",
    "RecourseResult",
    "TorchClassifier",
    "TreeMILP",
    "to_frame",
]
