"""The model zoo: pretrained generators and classifiers shipped with cfx, plus credit models.

Weights live in the repository's top-level ``generators/`` and ``classifiers/`` folders (one
folder per model: ``config.json``, ``model.safetensors`` and a ``README.md`` model card whose
recorded SHA-256 of the weights, ``sha256 of model.safetensors: `HEX` ``, is checked on every
load). Installed wheels carry the same folders inside the
package (``cfx/_zoo``); ``CFX_ZOO`` may point to another copy.

:func:`load_generator` and :func:`load_classifier` also take a folder written by
``save_pretrained`` (for instance ``cfx train classifier --out runs/cnn`` writes
``runs/cnn/model``; the run folder itself is accepted too) or a hub id ``owner/name``, as long as
its ``config.json`` names one of the zoo's architectures or a diffusers ``AutoencoderKL``
(:func:`model_source`).
"""

from __future__ import annotations

import json
import logging
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
from cfx.zoo.pretrained import (
    CONFIG_NAME,
    PICKLE_SUFFIXES,
    WEIGHTS_NAME,
    PretrainedMixin,
    missing_files,
    resolve_folder,
    sha256,
)

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

log = logging.getLogger(__name__)

_HEX64 = re.compile(r"\b([0-9a-fA-F]{64})\b")
_HEX_RUN = re.compile(r"\b[0-9a-fA-F]{16,}\b")  # a digest-like run of hex digits, any length
# "sha256", "SHA-256", "sha_256": a card spelling it with a hyphen turned the check off
_SHA_WORD = re.compile(r"sha[-_ ]?256", re.IGNORECASE)
_SHA256_FIELD = re.compile(r"^\W*sha[-_ ]?256\W*[:=]", re.IGNORECASE)  # "- sha256: ..."
_SUM_LINE = re.compile(r"^\s*([0-9a-fA-F]{64})\s+\*?(\S+)\s*$")  # sha256sum's "HEX  file"


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
    found = _recorded_sha256(card)
    if found is None:
        raise CheckpointError(f"`{card}` records no sha256 for model.safetensors")
    return found


def _recorded_sha256(card: Path, weights: str = WEIGHTS_NAME) -> str | None:
    """The SHA-256 ``card`` records for the weights, if the file exists and has one: on a line
    that says ``sha256`` (or ``SHA-256``) and names the ``weights`` file ("sha256 of
    model.safetensors: ...", as the zoo's cards; ``sha256sum``'s "HEX  model.safetensors"),
    else on a bare ``sha256: ...`` field. A user's folder may carry a
    card without one (e.g. downloaded from the hub), or with other digests (of its data,
    say), which are not the weights'."""
    if not card.is_file():
        return None
    lines = card_text(card).splitlines()
    named = [
        i
        for i, line in enumerate(lines)
        if weights in line
        and (_SHA_WORD.search(line) or ((m := _SUM_LINE.match(line)) and m.group(2) == weights))
    ]
    fields = [i for i, line in enumerate(lines) if _SHA256_FIELD.match(line)]
    for group in (named, fields):  # the lines naming the weights first, then bare fields
        found: dict[str, int] = {}
        for i in group:
            match = _HEX64.search(lines[i])
            if match:
                found.setdefault(match.group(1).lower(), i + 1)  # HEX and hex are one digest
            elif run := _HEX_RUN.search(lines[i]):  # a digest cut short or of another kind
                raise CheckpointError(
                    f"`{card}` line {i + 1}: the sha256 of {weights} must be 64 hex digits, "
                    f"got {run.group(0)!r} ({len(run.group(0))}); the weights cannot be "
                    "checked against it"
                )
        if len(found) > 1:  # which one is the weights'? neither is trusted
            where = ", ".join(f"line {n}: {d[:12]}..." for d, n in found.items())
            raise CheckpointError(
                f"`{card}` records {len(found)} different sha256 digests of {weights} "
                f"({where}): keep the one of these weights"
            )
        if found:
            return next(iter(found))
    # a digest of another weights file (model.safetensors in a diffusers VAE's card): said,
    # not silently passed over as if the card recorded none
    other = {
        m.group(0)
        for line in lines
        if _SHA_WORD.search(line) and _HEX64.search(line)
        for m in re.finditer(r"[\w.-]+\.safetensors", line)
    }
    if other:
        log.warning(
            "%s records the sha256 of %s, not of this folder's weights %s: they are not "
            "checked (write `sha256 of %s: HEX`)",
            card,
            ", ".join(sorted(other)),
            weights,
            weights,
        )
    return None


HUB_PREFIX = "hf:"
"""Marks a hub id as one (``hf:owner/name``) where ``owner`` is also a local folder."""
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]*[A-Za-z0-9]")


DIFFUSERS_WEIGHTS = "diffusion_pytorch_model.safetensors"


@dataclass(frozen=True)
class Architecture:
    """A class cfx can load from a model folder or hub id, by its config's ``_class_name``."""

    class_path: str  # "module:Class"
    role: Role
    weights: str  # the weights file's name in the folder


@dataclass(frozen=True)
class ModelSource:
    """Where a model comes from and what it is, known before its weights are read."""

    folder: Path | None  # a zoo model's or local model folder; None for a hub id
    hub_id: str | None  # "owner/name" (its config.json is fetched, its weights when loaded)
    class_path: str  # "module:Class"
    role: Role
    weights: str  # the weights file's name
    expected_sha256: str | None  # from the model card: zoo models, local folders with a card
    subfolder: str | None = None  # a hub pipeline's VAE folder ("vae"); local ones are in folder

    def hub_file(self, name: str) -> str:
        """``name`` as a path in the hub repo (under ``subfolder`` where there is one)."""
        return name if self.subfolder is None else f"{self.subfolder}/{name}"


def _architectures() -> dict[str, Architecture]:
    """What ``config.json``'s ``_class_name`` may say: the zoo's architectures, and a diffusers
    ``AutoencoderKL`` (as :class:`~cfx.models.diffusers_vae.DiffusersAutoencoder`)."""
    known = {
        e.class_path.split(":")[1]: Architecture(e.class_path, e.role, WEIGHTS_NAME)
        for e in ZOO.values()
    }
    known["AutoencoderKL"] = Architecture(
        "cfx.models.diffusers_vae:DiffusersAutoencoder", "generator", DIFFUSERS_WEIGHTS
    )
    return known


def card_text(card: Path) -> str:
    """A model card's text: UTF-8, or UTF-16 with its byte-order mark (Windows PowerShell 5's
    ``>`` writes it; a card only has to be searched for a digest, and such a card refused the
    model with a UnicodeDecodeError naming no file); other bytes are replaced."""
    raw = card.read_bytes()
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16", errors="replace")
    return raw.decode("utf-8", errors="replace")


def _architecture(config: Path) -> Architecture:
    """The architecture ``config`` (a ``config.json``) names in ``_class_name``."""
    try:
        raw = json.loads(config.read_text(encoding="utf-8"))
    except ValueError as err:
        raise CheckpointError(f"`{config}` is not valid JSON: {err}") from err
    if isinstance(raw, dict) and "_class_name" not in raw:
        kind = raw.get("architectures") or raw.get("model_type")
        seen = f" (it names {kind}: a transformers model?)" if kind else ""
        raise CheckpointError(
            f"`{config}` has no `_class_name`, so neither cfx nor diffusers wrote it{seen}; "
            "load such a model in Python and pass it to the explainers"
        )
    try:
        return _architectures()[raw["_class_name"]]
    except (ValueError, KeyError, TypeError) as err:
        named = isinstance(err, KeyError) and err.args[0] != "_class_name"
        raise CheckpointError(
            f"`{config}` names the architecture {err.args[0]!r}; cfx loads "
            f"{sorted(_architectures())} from a folder or hub id. Load other models in Python "
            "and pass them to the explainers"
            if named
            else f"`{config}` does not name one of cfx's architectures (`_class_name`): {err!r}"
        ) from err


PIPELINE_INDEX = "model_index.json"
"""What a diffusers pipeline (a folder or hub repo of components) has at its root."""


def _pipeline_vae(index: Path) -> str:
    """The subfolder of the ``AutoencoderKL`` a pipeline's ``model_index.json`` lists
    (``"vae"`` in Stable Diffusion), the one component of a pipeline cfx can use."""
    try:
        components = json.loads(index.read_text(encoding="utf-8"))
        vaes = [
            name
            for name, spec in components.items()
            if isinstance(spec, list) and spec[-1:] == ["AutoencoderKL"]
        ]
    except (OSError, ValueError, AttributeError) as err:
        raise CheckpointError(
            f"`{index}` is not a readable diffusers pipeline index: {err}"
        ) from err
    if len(vaes) != 1:
        raise CheckpointError(
            f"`{index}` lists {len(vaes)} AutoencoderKL components ({vaes}); cfx uses a "
            "pipeline's VAE and needs exactly one: pass its folder instead"
        )
    log.info("a diffusers pipeline (%s): its VAE in `%s/` is loaded", index.parent, vaes[0])
    return vaes[0]


def _local_source(path: Path, *, hub_like: bool = False) -> ModelSource:
    """A local model folder, or a ``cfx train`` run folder holding ``model/``."""
    path = path.expanduser()
    if path.is_file():
        hint = (
            " (cfx refuses pickled checkpoints, and loads only its own architectures by "
            f"name, {sorted(_architectures())}: a model of yours goes to the explainers in "
            "Python; one of cfx's architectures, trained elsewhere, is saved with "
            "save_pretrained)"
            if path.suffix in PICKLE_SUFFIXES
            else f" (`{path.parent}`?)"
        )
        raise CheckpointError(
            f"`{path}` is a file; pass the folder that holds {CONFIG_NAME} and the weights{hint}"
        )
    if not path.is_dir():
        where = "" if path.is_absolute() else f" (relative to {Path.cwd()})"
        hub = f"; for the hub id write {HUB_PREFIX}{path.as_posix()}" if hub_like else ""
        raise CheckpointError(f"no folder `{path}`{where}{hub}")
    folder = path
    if not (path / CONFIG_NAME).is_file() and (path / "model" / CONFIG_NAME).is_file():
        folder = path / "model"  # a cfx train run folder
        _stale_model_notice(path)
    elif not (path / CONFIG_NAME).is_file() and (path / PIPELINE_INDEX).is_file():
        folder = path / _pipeline_vae(path / PIPELINE_INDEX)  # a diffusers pipeline
        if not folder.is_dir():
            raise CheckpointError(
                f"`{path / PIPELINE_INDEX}` lists its VAE in `{folder.name}/`, which `{path}` "
                "does not have; copy the whole pipeline folder, or pass the VAE's own folder"
            )
    arch = _architecture(folder / CONFIG_NAME) if (folder / CONFIG_NAME).is_file() else None
    want = (CONFIG_NAME, WEIGHTS_NAME if arch is None else arch.weights)
    missing = [f for f in want if not (folder / f).is_file()]
    if missing or arch is None:
        otherwise = "; nor a model/ folder (has `cfx train` finished?)"
        if (path / "checkpoint.safetensors").is_file():  # a run folder of train_classifier
            otherwise = (
                "; it holds a training checkpoint but no model: `cfx train` writes model/ "
                "when it finishes, and a model trained in Python is saved with "
                "model.save_pretrained(folder)"
            )
        raise missing_files(folder, missing, otherwise=otherwise)
    expected = _recorded_sha256(folder / "README.md", arch.weights)
    return ModelSource(folder, None, arch.class_path, arch.role, arch.weights, expected)


def _stale_model_notice(run: Path) -> None:
    """Warn when a ``cfx train`` run folder's checkpoint is further on than its ``model/``
    (the checkpoint's step against ``training.json``'s, written with ``model/``): a rerun
    was interrupted or is still going, so ``model/`` holds the last finished run's weights."""
    from safetensors import SafetensorError, safe_open

    try:
        finished = int(json.loads((run / "training.json").read_text())["summary"]["steps"])
        with safe_open(str(run / "checkpoint.safetensors"), framework="pt") as fh:
            saved = int(json.loads(fh.metadata()["layout"])["state"]["step"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError, SafetensorError):
        return  # not a run folder cfx wrote in full, or one of an older cfx: nothing to say
    if saved > finished:
        log.warning(
            "`%s`: its checkpoint is at step %d and %s at step %d (an interrupted or "
            "unfinished rerun of `cfx train`?), so the weights loaded are the last finished "
            "run's; rerun the training command to finish it and update %s",
            run,
            saved,
            run / "model",
            finished,
            run / "model",
        )


def _hub_source(hub_id: str) -> ModelSource:
    """A hub model, described from its fetched ``config.json`` (no card is checked: hub cards
    record no sha256); for a diffusers pipeline repo (no root ``config.json`` but a
    ``model_index.json``), its VAE's."""
    subfolder = None
    try:
        config = resolve_folder(hub_id, files=(CONFIG_NAME,)) / CONFIG_NAME
    except CheckpointError as err:
        try:
            index = resolve_folder(hub_id, files=(PIPELINE_INDEX,)) / PIPELINE_INDEX
        except CheckpointError:
            raise err from err.__cause__  # neither: the first failure says why
        subfolder = _pipeline_vae(index)
        config = resolve_folder(hub_id, files=(f"{subfolder}/{CONFIG_NAME}",)) / CONFIG_NAME
    arch = _architecture(config)
    if subfolder is not None and arch.class_path != _architectures()["AutoencoderKL"].class_path:
        raise CheckpointError(f"`{config}` does not describe an AutoencoderKL")
    return ModelSource(None, hub_id, arch.class_path, arch.role, arch.weights, None, subfolder)


def model_source(name_or_path: str | Path) -> ModelSource:
    """What :func:`load_generator` / :func:`load_classifier` would load, without its weights.

    ``name_or_path``:

    * a zoo name (``ZOO``; if a local folder has the same name, the zoo model wins with a
      warning: write ``./NAME`` or pass a ``Path`` for the folder);
    * a local folder (any ``Path``, or a string with ``/`` or starting with ``.`` or ``~``) with
      ``config.json`` + ``model.safetensors`` (a diffusers VAE:
      ``diffusion_pytorch_model.safetensors``), or a ``cfx train`` run folder holding
      ``model/``. If its ``README.md`` records a sha256 on a line naming the weights file
      (``sha256 of model.safetensors: ...``) or as a ``sha256: ...`` field, the weights are
      checked against it;
    * a hub id ``owner/name`` (read as a local path when ``owner`` is a local folder; write
      ``hf:owner/name`` then), whose ``config.json`` is fetched now and its weights on load.

    The config must name one of the zoo's architectures or ``AutoencoderKL``
    (``_class_name``; :func:`_architectures`). A hub id's ``config.json`` must be at the repo's
    root, or the root holds a diffusers pipeline's ``model_index.json``: then the pipeline's one
    ``AutoencoderKL`` is loaded (its ``vae/`` subfolder in Stable Diffusion). Local pipeline
    folders are read the same way.
    """
    if isinstance(name_or_path, Path):
        return _local_source(name_or_path)
    if not isinstance(name_or_path, str):
        raise TypeError(f"a model is named by a str or Path, got {type(name_or_path).__name__}")
    name = name_or_path
    if not name.strip():  # Path("") is the working directory: it would be read as a folder
        raise UnknownNameError(
            f"a model name must not be empty, got {name!r}; expected one of {sorted(ZOO)}, a "
            "folder written by save_pretrained or a hub id 'owner/name'"
        )
    if name.startswith(HUB_PREFIX):
        hub_id = name[len(HUB_PREFIX) :]
        if not _HUB_ID.fullmatch(hub_id):
            raise CheckpointError(f"{name!r}: expected {HUB_PREFIX}owner/name, got {hub_id!r}")
        return _hub_source(hub_id)
    if name in ZOO:
        if Path(name).exists():
            log.warning(
                "%r names a zoo model and a local path here; the zoo model is loaded "
                "(pass ./%s for the local one)",
                name,
                name,
            )
        folder = model_folder(name)
        entry = ZOO[name]
        return ModelSource(
            folder, None, entry.class_path, entry.role, WEIGHTS_NAME, card_sha256(folder)
        )
    hub_like = bool(_HUB_ID.fullmatch(name))
    if hub_like and not Path(name.split("/")[0]).exists():
        return _hub_source(name)
    if "/" in name or name.startswith((".", "~")) or Path(name).exists():
        return _local_source(Path(name), hub_like=hub_like)
    raise UnknownNameError(
        f"unknown zoo model {name!r}; expected one of {sorted(ZOO)}, a folder written by "
        "save_pretrained (e.g. `cfx train ... --out DIR` writes DIR/model) or a hub id "
        "'owner/name'"
    )


def _load(name_or_path: str | Path | ModelSource, want: Role) -> nn.Module:
    import importlib

    source = name_or_path if isinstance(name_or_path, ModelSource) else model_source(name_or_path)
    if source.role != want and not (want == "classifier" and source.role == "segmenter"):
        use = "load_generator" if source.role == "generator" else "load_classifier"
        named = str(source.folder or source.hub_id) if name_or_path is source else name_or_path
        raise UnknownNameError(f"{str(named)!r} is a {source.role}; use {use}")
    module_name, class_name = source.class_path.split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    from cfx.models.diffusers_vae import DiffusersAutoencoder

    model: nn.Module
    if issubclass(cls, PretrainedMixin):
        folder = source.folder
        if folder is None:  # a hub id: fetch the weights now
            folder = resolve_folder(str(source.hub_id), files=(CONFIG_NAME, WEIGHTS_NAME))
        # the card was read for `source`: not again (its warnings twice)
        model = cls._from_folder(folder, source.expected_sha256, read_card=False)
    elif cls is DiffusersAutoencoder:  # diffusers reads the folder or fetches the hub id
        if source.folder is not None and source.expected_sha256 is not None:
            weights = source.folder / source.weights
            if (got := sha256(weights)) != source.expected_sha256.lower():
                raise CheckpointError(
                    f"`{weights}` has sha256 {got}, expected {source.expected_sha256} "
                    "(its model card's)"
                )
        model = cls.from_pretrained(source.folder or str(source.hub_id), subfolder=source.subfolder)
    else:
        raise TypeError(f"{cls.__name__} cannot be loaded from a folder or hub id")
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def load_generator(name: str | Path | ModelSource = "brain-gan") -> Invertible:
    """A generator (an ``nn.Module`` that is an :class:`~cfx.types.Invertible`), in eval mode,
    with frozen parameters: a zoo name, a ``save_pretrained`` folder or a hub id, or what
    :func:`model_source` made of one."""
    return cast(Invertible, _load(name, "generator"))


def load_classifier(name: str | Path | ModelSource = "brain-cnn") -> nn.Module:
    """A classifier (images in [-1, 1] -> logits ``(B, 2)``; the segmenter: mask logits), in
    eval mode, with frozen parameters: a zoo name, a ``save_pretrained`` folder or a hub id, or
    what :func:`model_source` made of one."""
    return _load(name, "classifier")


__all__ = [
    "CREDIT_MODELS",
    "ZOO",
    "Architecture",
    "ModelSource",
    "card_sha256",
    "german_split",
    "load_classifier",
    "load_credit_model",
    "load_generator",
    "model_folder",
    "model_source",
]
