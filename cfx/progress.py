"""Progress bars: ``tqdm.auto``'s, without its import-time warning.

In a Jupyter kernel without ``ipywidgets``, ``tqdm.auto`` warns "IProgress not found. Please
update jupyter and ipywidgets" the first time it is imported, i.e. the first time a user's
notebook imports a cfx module, and then falls back to text bars, which work in every notebook
front end. cfx does not depend on ``ipywidgets``, so that warning is noise from inside cfx:
it is filtered here, once, for that import only. With ``ipywidgets`` installed the bars are
widgets, as ``tqdm.auto`` makes them.
"""

from __future__ import annotations

import warnings

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="IProgress not found")
    from tqdm.auto import tqdm

__all__ = ["tqdm"]
