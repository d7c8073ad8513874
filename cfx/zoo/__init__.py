"""The model zoo: pretrained generators and classifiers shipped with cfx, plus credit models.

Weights live in the repository's top-level ``generators/`` and ``classifiers/`` folders (one
folder per model: ``config.json``, ``model.safetensors`` and a ``README.md`` model card whose
``sha256:`` line is checked on every load). Installed wheels carry the same folders inside the
package (``cfx/_zoo``); ``CFX_ZOO`` may point to another copy.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal, cast

from torch import nn

from cfx.errors import CheckpointError, UnknownNameError
from cfx.types import Invertible
from cfx.zoo.credit_models import CREDIT_MODELS, german_split, load_credit_model
from cfx.zoo.pretrained import PretrainedMixin


@dataclass(frozen=True)
class ZooEntry:
    name: str
    kind: str  # "generators" or "classifiers": the zoo folder
    class_path: str  # "module:Class"
    summary: str
    role: Literal["generator", "classifier", "segmenter"]  # what the model is used as


ZOO: dict[str, ZooEntry] = {
    e.name: e
    for e in (
        ZooEntry(
            "brain-gan",
            "generators",
            "cfx.models.brain_gan:BrainGAN",
            "VAE-GAN generator + inversion encoder for 64x64 brain slices",
            "generator",
        ),
        ZooEntry(
            "brain-cnn",
            "classifiers",
            "cfx.models.classifiers:BrainCNN",
            "tumour vs healthy CNN (the model to explain)",
            "classifier",
        ),
        ZooEntry(
            "brain-cnn-tagged",
            "classifiers",
            "cfx.models.classifiers:BrainCNN",
            "same CNN trained on the tagged, biased set (learns the marker shortcut)",
            "classifier",
        ),
        ZooEntry(
            "brain-oracle",
            "classifiers",
            "cfx.models.classifiers:BrainOracle",
            "independent oracle (other architecture, seed and data) for evaluation only",
            "classifier",
        ),
        ZooEntry(
            "brain-oracle-seg",
            "classifiers",
            "cfx.models.classifiers:BrainSegmenter",
            "lesion segmenter (mask logits) for evaluation only",
            "segmenter",
        ),
    )
}

_HEX64 = re.compile(r"\b([0-9a-f]{64})\b")


def zoo_root(kind: str) -> Path:
    """Folder holding the zoo's ``kind`` ("generators"/"classifiers") models."""
    env = os.environ.get("CFX_ZOO")
    if env:
        return Path(env) / kind
    packaged = Path(str(resources.files("cfx"))) / "_zoo" / kind
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / kind  # a source checkout


def model_folder(name: str) -> Path:
    """Folder of a zoo model, with a clear error for unknown or missing models."""
    if name not in ZOO:
        raise UnknownNameError(f"unknown zoo model {name!r}; expected one of {sorted(ZOO)}")
    folder = zoo_root(ZOO[name].kind) / name
    if not (folder / "model.safetensors").is_file():
        raise CheckpointError(
            f"zoo model {name!r} has no weights at {folder}; train it with `cfx train` "
            "(see its model card) or set CFX_ZOO to a folder that has them"
        )
    return folder


def card_sha256(folder: Path) -> str:
    """The weights' SHA-256 recorded in the folder's model card (``README.md``)."""
    card = folder / "README.md"
    if not card.is_file():
        raise CheckpointError(f"`{folder}` has no model card README.md")
    for line in card.read_text(encoding="utf-8").splitlines():
        if "sha256" in line.lower():
            match = _HEX64.search(line)
            if match:
                return match.group(1)
    raise CheckpointError(f"`{card}` records no sha256 for model.safetensors")


def _load(name: str) -> nn.Module:
    import importlib

    folder = model_folder(name)
    module_name, class_name = ZOO[name].class_path.split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    if not issubclass(cls, PretrainedMixin):
        raise TypeError(f"{cls.__name__} cannot be loaded from the zoo")
    model = cls.from_pretrained(folder, expected_sha256=card_sha256(folder))
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def load_generator(name: str = "brain-gan") -> Invertible:
    """A zoo generator (an ``nn.Module`` that is an :class:`~cfx.types.Invertible`), in eval
    mode, with frozen parameters."""
    if name in ZOO and ZOO[name].kind != "generators":
        raise UnknownNameError(f"{name!r} is a classifier; use load_classifier")
    return cast(Invertible, _load(name))


def load_classifier(name: str = "brain-cnn") -> nn.Module:
    """A zoo classifier (images in [-1, 1] -> logits ``(B, 2)``; the segmenter: mask logits)."""
    if name in ZOO and ZOO[name].kind != "classifiers":
        raise UnknownNameError(f"{name!r} is a generator; use load_generator")
    return _load(name)


__all__ = [
    "CREDIT_MODELS",
    "ZOO",
    "card_sha256",
    "german_split",
    "load_classifier",
    "load_credit_model",
    "load_generator",
    "model_folder",
]
