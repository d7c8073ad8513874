"""Loan recourse: small, actionable, diverse changes that get a denied applicant approved.

One verb, :meth:`Recourse.explain`; one result type per applicant, :class:`RecourseResult`.
Methods, one per module: :mod:`~cfx.recourse.milp` (exact, linear/logistic models),
:mod:`~cfx.recourse.tree` (exact, gradient-boosted trees), :mod:`~cfx.recourse.search`
(any ``predict_proba``), :mod:`~cfx.recourse.dice` (dice-ml adapter), chosen by
``Recourse(method=...)``; causal recourse through :class:`AdditiveSCM`; a resumable batch
written to a file, :func:`explain_to_file`. The engines in those modules (``LinearMILP``,
``TreeMILP``, ``GridSearch``, ``DiceRecourse``) are built by
:meth:`Recourse.fit` from its action space and model view, so they are not exported here.
"""

from cfx.recourse.batch import BatchReport, explain_to_file
from cfx.recourse.causal import AdditiveSCM
from cfx.recourse.model import TorchClassifier
from cfx.recourse.recourse import METHODS, Recourse
from cfx.recourse.result import Change, Counterfactual, RecourseResult, to_frame
from cfx.recourse.space import Constraints

__all__ = [
    "METHODS",
    "AdditiveSCM",
    "BatchReport",
    "Change",
    "Constraints",
    "Counterfactual",
    "Recourse",
    "RecourseResult",
    "TorchClassifier",
    "explain_to_file",
    "to_frame",
]
