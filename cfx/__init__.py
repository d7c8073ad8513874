"""cfx: generative counterfactual explanations for PyTorch image classifiers and loan models.

Images everywhere are ``(B, C, H, W)`` float tensors in [-1, 1] (see :mod:`cfx.images`).
After ``import cfx``, the families are reachable as attributes (``cfx.trajectory``,
``cfx.zoo``, ``cfx.saliency``, ...), imported on first use so ``import cfx`` stays light
(torch itself is imported by the first family or top-level name used).
"""

import importlib as _importlib
from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

# first, so tqdm.auto is imported under cfx.progress's filter of its "IProgress not found"
# warning: else a notebook whose first bar came from a library cfx calls (huggingface_hub,
# when a hub model or the diffusers VAE is loaded) printed it
from cfx import progress as _progress  # noqa: F401

if _TYPE_CHECKING:
    from cfx.inversion import InversionResult, invert
    from cfx.types import Classifier, Generator, Invertible

__version__ = "0.1.0"
__all__ = ["Classifier", "Generator", "InversionResult", "Invertible", "__version__", "invert"]

_SUBMODULES = frozenset(
    {
        *("augment", "calls", "data", "demo", "errors", "files", "filters", "images"),
        *("inversion", "label", "metrics", "models", "notices", "progress", "recourse"),
        *("report", "reprs", "run_key", "saliency", "shortcuts", "training", "trajectory"),
        *("types", "viz", "zoo"),
    }
)


_LAZY = {
    "invert": "cfx.inversion",
    "InversionResult": "cfx.inversion",
    "Classifier": "cfx.types",
    "Generator": "cfx.types",
    "Invertible": "cfx.types",
}
"""Top-level names imported on first use, like the families: torch is not imported until
then, so ``cfx --help`` and a mistyped flag answer at once."""


def __getattr__(name: str) -> _Any:
    # PEP 562: `cfx.trajectory.save_result(...)` after a bare `import cfx`
    if name in _SUBMODULES:
        return _importlib.import_module(f"cfx.{name}")
    if name in _LAZY:
        return getattr(_importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'cfx' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_SUBMODULES, *_LAZY})
