"""Training-data augmentation from boundary-crossing images (active learning)."""

from cfx.augment.active import ActiveLearner, AugmentResult, AugmentRound
from cfx.augment.labellers import Labeller, LabelsPending, OracleLabeller, TaskLabeller

__all__ = [
    "ActiveLearner",
    "AugmentResult",
    "AugmentRound",
    "Labeller",
    "LabelsPending",
    "OracleLabeller",
    "TaskLabeller",
]
