"""Training-data augmentation from boundary-crossing images (active learning)."""

from cfx.augment.active import DEFAULT_FINETUNE, ActiveLearner
from cfx.augment.control import ControlResult, finetune_without_labels
from cfx.augment.labellers import Labeller, OracleLabeller, TaskLabeller
from cfx.augment.result import AugmentResult, AugmentRound
from cfx.errors import LabelsPending

__all__ = [
    "DEFAULT_FINETUNE",
    "ActiveLearner",
    "AugmentResult",
    "AugmentRound",
    "ControlResult",
    "Labeller",
    "LabelsPending",
    "OracleLabeller",
    "TaskLabeller",
    "finetune_without_labels",
]
