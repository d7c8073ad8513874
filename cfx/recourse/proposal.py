"""What every recourse method hands to the shared selection step."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from cfx.recourse.space import ActionSpace

# codes of actions (n, d) -> approval probability (n,) of the points they lead to
Evaluate = Callable[[np.ndarray], np.ndarray]
# codes of actions (n, d) -> bool (n,): the points they lead to are acceptable (data support)
Accept = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Proposal:
    """Candidate actions for one applicant, plus what an exact method could prove.

    ``actions`` are intervention points in codes ``(m, d)`` (the applicant with some features
    set); selection checks validity, prunes redundant changes and picks diverse ones.
    ``infeasible`` is set only by exact methods that *proved* no allowed action reaches the
    decision threshold; ``reason`` then says why (which constraints bind).
    """

    actions: np.ndarray  # (m, d)
    evaluated: int = 0  # candidate actions the method scored
    infeasible: bool = False  # proven: no allowed action is approved
    reason: str = ""  # why no action exists (certificate) or none was found
    max_proba: float | None = None  # highest approval probability reachable (exact) or seen
    min_cost: float | None = None  # proven minimum action cost (exact methods)


class Method(Protocol):
    """A recourse method: proposes candidate actions for one applicant."""

    def propose(self, space: ActionSpace, *, k: int, evaluate: Evaluate) -> Proposal: ...
