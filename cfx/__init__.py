"""cfx: generative counterfactual explanations for PyTorch image classifiers and loan models.

Images everywhere are ``(B, C, H, W)`` float tensors in [-1, 1] (see :mod:`cfx.images`).
"""

from cfx.inversion import InversionResult, invert
from cfx.types import Classifier, Generator, Invertible

__version__ = "0.1.0"
__all__ = ["Classifier", "Generator", "InversionResult", "Invertible", "__version__", "invert"]
