"""Rewrite a checkpoint as an earlier cfx wrote it: its saved state without some entries."""

import json
from collections.abc import Callable
from pathlib import Path

from safetensors import safe_open
from safetensors.torch import save_file


def rewrite_layout(ckpt: Path, edit: Callable[[dict], None]) -> None:
    """Apply ``edit`` to the checkpoint's whole layout (its metadata), in place."""
    with safe_open(str(ckpt), framework="pt") as fh:
        layout = json.loads(fh.metadata()["layout"])
        tensors = {key: fh.get_tensor(key) for key in fh.keys()}  # noqa: SIM118
    edit(layout)
    save_file(tensors, str(ckpt), metadata={"layout": json.dumps(layout)})


def rewrite_state(ckpt: Path, edit: Callable[[dict], None]) -> None:
    """Apply ``edit`` to the checkpoint's saved ``state`` (in its metadata), in place."""
    rewrite_layout(ckpt, lambda layout: edit(layout["state"]))
