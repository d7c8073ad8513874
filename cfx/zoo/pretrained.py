"""``save_pretrained``/``from_pretrained`` for cfx models: ``config.json`` + ``model.safetensors``.

cfx uses this small mixin rather than diffusers' ``ModelMixin``/``ConfigMixin`` because (1) the
project's checkpoint format is ``config.json`` + ``model.safetensors`` (diffusers writes
``diffusion_pytorch_model.safetensors``), (2) architectures take a frozen dataclass config
(diffusers passes loose kwargs through ``register_to_config``), and (3) diffusers silently falls
back to pickled ``.bin`` files, which cfx refuses. Hub loading stays real: a hub id is fetched
with ``huggingface_hub`` (a diffusers dependency) exactly as diffusers would, then loaded from
the local cache with the same strict rules.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from pathlib import Path
from typing import Any, ClassVar, Self

from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from cfx.errors import CheckpointError
from cfx.files import path_argument, save_tensors_atomic, write_atomic

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
TRAINED_CARD = "trained by `cfx train`"
"""The mark of a model card ``cfx train`` wrote (its title): ``save_pretrained`` removes such a
card, which describes the weights it replaces."""
AUGMENTED_CARD = "fine-tuned by `cfx augment`"
"""The mark of the card ``cfx augment`` writes beside its fine-tuned copy (removed alike)."""
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")


_HEX64 = re.compile(r"[0-9a-fA-F]{64}")


def sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file (streamed)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def missing_files(folder: Path, missing: list[str], *, otherwise: str = "") -> CheckpointError:
    """The error for a model folder lacking ``missing`` files, pointing at pickled
    checkpoints it holds instead (else adding ``otherwise``)."""
    pickles = sorted(p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES)
    hint = (
        f"; found pickled checkpoint(s) {pickles}, which cfx refuses to load (convert them "
        "to safetensors)"
        if pickles
        else otherwise
    )
    return CheckpointError(f"`{folder}` is missing {missing}{hint}")


def hub_unreachable(repo_id: str, filename: str) -> str | None:
    """Why the hub cannot be reached for ``filename`` of ``repo_id``, or None: when the file is
    in the local cache, in offline mode (``HF_HUB_OFFLINE``), or when the hub answers at all
    (a 404 or 401 is ``hf_hub_download``'s to name). One request, no retries: for a file not
    in the cache, ``hf_hub_download`` retries an unreachable hub five times with backoff,
    about 25 s per file, so a mistyped path took close to a minute to fail offline."""
    from huggingface_hub import constants, get_hf_file_metadata, hf_hub_url, try_to_load_from_cache
    from huggingface_hub.errors import HfHubHTTPError

    if constants.HF_HUB_OFFLINE or isinstance(try_to_load_from_cache(repo_id, filename), str):
        return None
    try:
        get_hf_file_metadata(hf_hub_url(repo_id, filename), timeout=10)
    except HfHubHTTPError:
        return None
    except Exception as err:  # no connection: name resolution, refused, timed out
        return f"{type(err).__name__}: {err}"
    return None


def resolve_folder(name_or_path: str | Path, *, files: tuple[str, ...]) -> Path:
    """A local folder holding ``files``: ``name_or_path`` itself, or a hub id fetched online."""
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        missing = [f for f in files if not (path / f).is_file()]
        if missing:
            raise missing_files(path, missing)
        return path
    if path.suffix in PICKLE_SUFFIXES:
        raise CheckpointError(
            f"`{name_or_path}` looks like a pickled checkpoint; cfx only loads "
            f"{CONFIG_NAME} + {WEIGHTS_NAME} folders (safetensors)"
        )
    if path.exists() or str(name_or_path).count("/") != 1:
        raise CheckpointError(
            f"`{name_or_path}` is neither a folder with {list(files)} nor a hub id 'owner/name'"
        )
    from huggingface_hub import hf_hub_download  # only for users online

    where = "" if path.is_absolute() else f" (relative to {Path.cwd()})"
    reason = hub_unreachable(str(name_or_path), files[0])
    if reason is not None:
        raise CheckpointError(
            f"`{name_or_path}` is no local folder{where} and could not be fetched from the "
            f"hub as 'owner/name': the hub cannot be reached ({reason}). Check the path; hub "
            "models fetched once before load offline from the local cache"
        )
    try:
        local = [Path(hf_hub_download(str(name_or_path), f)) for f in files]
    except (OSError, ValueError) as err:  # offline, unknown repo or file, invalid id
        raise CheckpointError(
            f"`{name_or_path}` is no local folder{where} and could not be fetched from the "
            f"hub as 'owner/name': {type(err).__name__}: {err}"
        ) from err
    return local[0].parent


class PretrainedMixin:
    """Adds ``save_pretrained``/``from_pretrained`` to an ``nn.Module`` with a dataclass config.

    The class sets ``config_class``; instances keep their config in ``self.config``.
    """

    config_class: ClassVar[type]
    config: Any

    def save_pretrained(self, folder: str | Path) -> Path:
        """Write ``config.json`` and ``model.safetensors`` into ``folder``; return the folder.

        A model card ``cfx train`` or ``cfx augment`` wrote there (:data:`TRAINED_CARD`,
        :data:`AUGMENTED_CARD`) describes the weights being replaced, and loading checks its
        sha256: it is removed first (a card of your own is kept, and checked as before)."""
        if not isinstance(self, nn.Module):
            raise TypeError(f"{type(self).__name__} must be an nn.Module to be saved")
        out = path_argument(folder, "folder", "a folder path (str or Path)")
        out.mkdir(parents=True, exist_ok=True)
        card = out / "README.md"
        text = card.read_text(encoding="utf-8", errors="replace") if card.is_file() else ""
        if TRAINED_CARD in text or AUGMENTED_CARD in text:
            card.unlink()
        config = {"_class_name": type(self).__name__, **dataclasses.asdict(self.config)}
        write_atomic(out / CONFIG_NAME, json.dumps(config, indent=2, sort_keys=True) + "\n")
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        save_tensors_atomic(state, out / WEIGHTS_NAME)  # readable as config.json is
        return out

    @classmethod
    def from_pretrained(
        cls, name_or_path: str | Path, *, expected_sha256: str | None = None
    ) -> Self:
        """Load a folder written by ``save_pretrained`` (or a hub id), strictly.

        ``expected_sha256`` (64 hex digits, any case) is checked against the weights; without
        it, the SHA-256 the folder's model card (``README.md``) records, if any.

        Raises :class:`~cfx.errors.CheckpointError` for missing files, pickles, a class or
        config mismatch, a wrong SHA-256, or weights that do not match the architecture.
        """
        folder = resolve_folder(name_or_path, files=(CONFIG_NAME, WEIGHTS_NAME))
        return cls._from_folder(folder, expected_sha256, read_card=True)

    @classmethod
    def _from_folder(cls, folder: Path, expected_sha256: str | None, *, read_card: bool) -> Self:
        """:meth:`from_pretrained` on a resolved ``folder``; ``read_card``: take the digest
        from its model card when ``expected_sha256`` is None (False for a caller that read
        the card already, as :func:`cfx.zoo.load_classifier` does: read twice, a card's
        warning was given twice)."""
        try:  # UnicodeDecodeError is a ValueError
            raw = json.loads((folder / CONFIG_NAME).read_text(encoding="utf-8"))
        except ValueError as err:
            raise CheckpointError(f"`{folder / CONFIG_NAME}` is not valid JSON: {err}") from err
        if not isinstance(raw, dict):  # [1, 2] failed as "pop expected at most 1 argument"
            raise CheckpointError(
                f"`{folder / CONFIG_NAME}` must hold a JSON object of config fields, got a "
                f"{type(raw).__name__}"
            )
        class_name = raw.pop("_class_name", cls.__name__)
        if class_name != cls.__name__:
            raise CheckpointError(
                f"`{folder}` holds a {class_name}, not a {cls.__name__}; load it with that class"
            )
        fields = {f.name for f in dataclasses.fields(cls.config_class)}
        unknown = sorted(set(raw) - fields)
        if unknown:
            raise CheckpointError(f"`{folder / CONFIG_NAME}` has unknown config keys {unknown}")
        weights = folder / WEIGHTS_NAME
        if expected_sha256 is None and read_card:  # the card, as the zoo's loaders read it
            from cfx.zoo import _recorded_sha256

            expected_sha256 = _recorded_sha256(folder / "README.md")
        elif expected_sha256 is not None and not (
            isinstance(expected_sha256, str) and _HEX64.fullmatch(expected_sha256)
        ):
            raise ValueError(
                f"`expected_sha256` must be 64 hex digits or None, got {expected_sha256!r}"
            )
        if expected_sha256 is not None:
            got = sha256(weights)
            if got != expected_sha256.lower():  # Get-FileHash prints capitals
                raise CheckpointError(
                    f"`{weights}` has sha256 {got}, expected {expected_sha256} (corrupt or changed)"
                )
        try:
            config = cls.config_class(**raw)
        except (TypeError, ValueError) as err:  # e.g. "image_size": [64]: the file is named
            raise CheckpointError(
                f"`{folder / CONFIG_NAME}` is no {cls.config_class.__name__}: {err}"
            ) from err
        model = cls(config)  # type: ignore[call-arg]
        if not isinstance(model, nn.Module):
            raise TypeError(f"{cls.__name__} must be an nn.Module")
        try:
            state = load_file(str(weights))
        except SafetensorError as err:  # truncated, damaged, not one (OSError goes through)
            raise CheckpointError(
                f"`{weights}` is not a readable safetensors file ({err}); it may be truncated "
                "or damaged: copy or save it again"
            ) from err
        kinds = {t.dtype for t in state.values() if t.is_floating_point()}
        if len(kinds) == 1:  # saved in float64 (say): loaded as such, not cast to float32
            model.to(kinds.pop())
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as err:
            raise CheckpointError(f"`{weights}` does not match {cls.__name__}: {err}") from err
        model.eval()
        return model
