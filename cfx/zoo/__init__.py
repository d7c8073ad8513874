"""The model zoo: pretrained generators and classifiers shipped with cfx, plus credit models.

Weights live in the repository's top-level ``generators/`` and ``classifiers/`` folders (one
folder per model: ``config.json``, ``model.safetensors`` and a ``README.md`` model card whose
``sha256:`` line is checked on every load). Installed wheels carry the same folders inside the
package (``cfx/_zoo``); ``CFX_ZOO`` may point to another copy.

:func:`load_generator` and :func:`load_classifier` also take a folder written by
``save_pretrained`` (for instance ``cfx train classifier --out runs/cnn`` writes
``runs/cnn/model``; the run folder itself is accepted too) or a hub id ``owner/name``, as long as
its ``config.json`` names one of the zoo's architectures (:func:`describe`).
"""

from __future__ import annotations

import json
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
from cfx.zoo.pretrained import CONFIG_NAME, WEIGHTS_NAME, PretrainedMixin, resolve_folder

Role = Literal["generator", "classifier", "segmenter"]


@dataclass(frozen=True)
class ZooEntry:
    name: str
    kind: str  # "generators" or "classifiers": the zoo folder
    class_path: str  # "module:Class"
    summary: str
    role: Role  # what the model is used as


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


@dataclass(frozen=True)
class ModelSource:
    """Where a model comes from and what it is, known before its weights are read."""

    folder: Path  # local: a hub id's files are fetched into the hub cache first
    class_path: str  # "module:Class"
    role: Role
    expected_sha256: str | None  # checked on load: the card's, for zoo models and carded runs


def _architectures() -> dict[str, ZooEntry]:
    """The zoo's architectures by class name (what ``config.json``'s ``_class_name`` says)."""
    return {e.class_path.split(":")[1]: e for e in ZOO.values()}


def _model_subfolder(path: Path) -> Path:
    """``path`` if it holds ``config.json``, else its ``model/`` (a ``cfx train`` run folder)."""
    if not (path / CONFIG_NAME).is_file() and (path / "model" / CONFIG_NAME).is_file():
        return path / "model"
    return path


def _folder_source(folder: Path) -> ModelSource:
    folder = Path(resolve_folder(folder, files=(CONFIG_NAME, WEIGHTS_NAME)))
    try:
        class_name = json.loads((folder / CONFIG_NAME).read_text(encoding="utf-8"))["_class_name"]
    except (ValueError, KeyError, TypeError) as err:
        raise CheckpointError(
            f"`{folder / CONFIG_NAME}` does not name its architecture (`_class_name`): {err!r}"
        ) from err
    known = _architectures()
    if class_name not in known:
        raise CheckpointError(
            f"`{folder}` holds a {class_name!r}; cfx loads {sorted(known)} from a folder. "
            "Load other models in Python and pass them to the explainers"
        )
    card = folder / "README.md"
    expected = card_sha256(folder) if card.is_file() else None
    entry = known[class_name]
    return ModelSource(folder, entry.class_path, entry.role, expected)


def describe(name_or_path: str | Path) -> ModelSource:
    """What :func:`load_generator` / :func:`load_classifier` would load, without its weights.

    ``name_or_path``: a zoo name (``ZOO``), a local folder with ``config.json`` +
    ``model.safetensors`` (or a ``cfx train`` run folder holding ``model/``), or a hub id
    ``owner/name`` (described after fetching its files). A folder's model card
    (``README.md``), if it has one, must record the weights' sha256.
    """
    name = str(name_or_path)
    if name in ZOO:
        folder = model_folder(name)
        entry = ZOO[name]
        return ModelSource(folder, entry.class_path, entry.role, card_sha256(folder))
    path = Path(name).expanduser()
    if path.is_dir():
        return _folder_source(_model_subfolder(path))
    if path.parent.is_dir() and path.parent != Path("."):  # `runs/cnn` with `runs/` here
        raise CheckpointError(
            f"no folder `{path}` (its parent `{path.parent}` is a local folder, so this is not "
            "read as a hub id 'owner/name')"
        )
    if path.exists() or name.count("/") != 1:
        raise UnknownNameError(
            f"unknown zoo model {name!r}; expected one of {sorted(ZOO)}, a folder written by "
            "save_pretrained (e.g. `cfx train ... --out DIR` writes DIR/model) or a hub id "
            "'owner/name'"
        )
    return _folder_source(resolve_folder(name, files=(CONFIG_NAME, WEIGHTS_NAME)))


def _load(name_or_path: str | Path, want: Role) -> nn.Module:
    import importlib

    source = describe(name_or_path)
    if source.role != want and not (want == "classifier" and source.role == "segmenter"):
        use = "load_generator" if source.role == "generator" else "load_classifier"
        raise UnknownNameError(f"{str(name_or_path)!r} is a {source.role}; use {use}")
    module_name, class_name = source.class_path.split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    if not issubclass(cls, PretrainedMixin):
        raise TypeError(f"{cls.__name__} cannot be loaded from the zoo")
    model = cls.from_pretrained(source.folder, expected_sha256=source.expected_sha256)
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def load_generator(name: str | Path = "brain-gan") -> Invertible:
    """A generator (an ``nn.Module`` that is an :class:`~cfx.types.Invertible`), in eval mode,
    with frozen parameters: a zoo name, a ``save_pretrained`` folder or a hub id
    (:func:`describe`)."""
    return cast(Invertible, _load(name, "generator"))


def load_classifier(name: str | Path = "brain-cnn") -> nn.Module:
    """A classifier (images in [-1, 1] -> logits ``(B, 2)``; the segmenter: mask logits), in
    eval mode, with frozen parameters: a zoo name, a ``save_pretrained`` folder or a hub id
    (:func:`describe`)."""
    return _load(name, "classifier")


__all__ = [
    "CREDIT_MODELS",
    "ZOO",
    "ModelSource",
    "card_sha256",
    "describe",
    "german_split",
    "load_classifier",
    "load_credit_model",
    "load_generator",
    "model_folder",
]
