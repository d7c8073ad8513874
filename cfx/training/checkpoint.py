"""Resumable training checkpoints in safetensors (no pickle).

A checkpoint is one ``.safetensors`` file holding the tensors of several modules, optimizers and
random generators, with everything that is not a tensor (step counters, optimizer
hyperparameters) as JSON in the file's metadata. Writes go to a temporary file that is renamed
into place, so an interrupted save never leaves a broken checkpoint; the metadata also holds a
SHA-256 of the tensors, checked on loading, so a file damaged since (a flipped byte that
safetensors reads happily) is refused instead of resumed and saved as the model.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from torch import Tensor, nn

from cfx.errors import CheckpointError, DivergedError, ForeignRunError
from cfx.files import save_tensors_atomic
from cfx.run_key import changes, tensors_sha256

log = logging.getLogger(__name__)


def _flatten(prefix: str, obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Move tensors out of a nested structure into ``tensors``; return the JSON-able rest."""
    if isinstance(obj, torch.Tensor):
        key = f"{prefix}"
        tensors[key] = obj.detach().contiguous().cpu()
        return {"__tensor__": key}
    if isinstance(obj, dict):
        return {
            "__dict__": [
                [_json_key(k), _flatten(f"{prefix}.{k}", v, tensors)] for k, v in obj.items()
            ]
        }
    if isinstance(obj, tuple):
        return {"__tuple__": [_flatten(f"{prefix}.{i}", v, tensors) for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_flatten(f"{prefix}.{i}", v, tensors) for i, v in enumerate(obj)]
    return obj


def _json_key(key: Any) -> Any:
    return key if isinstance(key, (str, int, float, bool)) or key is None else str(key)


def _unflatten(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, dict) and "__tensor__" in obj:
        return tensors[obj["__tensor__"]]
    if isinstance(obj, dict) and "__tuple__" in obj:
        return tuple(_unflatten(v, tensors) for v in obj["__tuple__"])
    if isinstance(obj, dict) and "__dict__" in obj:
        return {k: _unflatten(v, tensors) for k, v in obj["__dict__"]}
    if isinstance(obj, list):
        return [_unflatten(v, tensors) for v in obj]
    return obj


def save_checkpoint(
    path: str | Path,
    *,
    modules: Mapping[str, nn.Module],
    optimizers: Mapping[str, torch.optim.Optimizer],
    generators: Mapping[str, torch.Generator],
    state: dict[str, Any],
) -> None:
    """Atomically write everything needed to resume training to ``path``."""
    tensors: dict[str, torch.Tensor] = {}
    layout = {
        "modules": {k: _flatten(f"m.{k}", m.state_dict(), tensors) for k, m in modules.items()},
        "optimizers": {
            k: _flatten(f"o.{k}", o.state_dict(), tensors) for k, o in optimizers.items()
        },
        "generators": {
            k: _flatten(f"g.{k}", g.get_state(), tensors) for k, g in generators.items()
        },
        "state": state,
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(layout)
    metadata = {"layout": text, "sha256": _digest(text, tensors)}
    save_tensors_atomic(tensors, path, metadata=metadata)


def _digest(layout: str, tensors: Mapping[str, torch.Tensor]) -> str:
    """One SHA-256 over the layout's JSON and the tensors by name (shapes, dtypes, bytes)."""
    names = sorted(tensors)
    head = json.dumps([layout, names]).encode()
    return tensors_sha256(
        torch.frombuffer(bytearray(head), dtype=torch.uint8), *(tensors[n] for n in names)
    )


def load_checkpoint(
    path: str | Path,
    *,
    modules: Mapping[str, nn.Module],
    optimizers: Mapping[str, torch.optim.Optimizer],
    generators: Mapping[str, torch.Generator],
    generators_added_later: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Restore modules, optimizers and generators in place; return the saved ``state``.
    Generators named in ``generators_added_later`` that the checkpoint lacks (an older cfx
    did not save them) are left as they are."""
    tensors: dict[str, torch.Tensor] = {}
    with safe_open(str(path), framework="pt") as fh:
        metadata = fh.metadata()
        layout = json.loads(metadata["layout"])
        for key in fh.keys():  # noqa: SIM118 (safe_open has no __iter__)
            tensors[key] = fh.get_tensor(key)
    recorded = metadata.get("sha256")  # none in checkpoints of an older cfx
    if recorded is not None and recorded != _digest(metadata["layout"], tensors):
        raise CheckpointError(
            f"{path} does not match the digest it was saved with: it was damaged or changed "
            "since; delete it to train from the start, or use a new folder"
        )
    for k, m in modules.items():
        m.load_state_dict(_unflatten(layout["modules"][k], tensors), strict=True)
    for k, o in optimizers.items():
        o.load_state_dict(_unflatten(layout["optimizers"][k], tensors))
    for k, g in generators.items():
        if k in generators_added_later and k not in layout["generators"]:
            continue
        g.set_state(_unflatten(layout["generators"][k], tensors))
    return dict(layout["state"])


def resume_checkpoint(
    path: str | Path,
    *,
    fingerprint: dict[str, Any],
    names: Mapping[str, str],
    added_later: tuple[str, ...],
    modules: Mapping[str, nn.Module],
    optimizers: Mapping[str, torch.optim.Optimizer],
    generators: Mapping[str, torch.Generator],
    generators_added_later: tuple[str, ...] = (),
) -> dict[str, Any] | None:
    """Resume from ``path`` when it holds a checkpoint of the same run: restore modules,
    optimizers and generators in place and return the saved ``state`` (None when there is
    no checkpoint). A checkpoint of another architecture, or whose saved ``fingerprint``
    (data digests, settings) differs, is a :class:`~cfx.errors.ForeignRunError` (a
    ``ValueError``) saying what changed (``names`` as
    :func:`cfx.run_key.changes` takes them). Entries of ``added_later`` that a checkpoint
    written by an older cfx lacks (all of them: one written before fingerprints) are taken
    on trust, with a warning; so are generators of ``generators_added_later`` it lacks
    (:func:`load_checkpoint`)."""
    path = Path(path)
    if not path.exists():
        return None
    other = f"`out` ({path.parent}) holds a checkpoint of a different run; use a new folder or "
    damaged = "it is damaged; delete it to train from the start, or use a new folder"
    try:  # the saved settings first: another architecture is named by what changed in them,
        # not by the state_dict mismatch it causes
        with safe_open(str(path), framework="pt") as fh:
            saved = json.loads(fh.metadata()["layout"]).get("state", {})
    except SafetensorError as err:  # truncated or damaged: not a run to resume
        raise CheckpointError(
            f"{path} cannot be read ({str(err).splitlines()[0]}): {damaged}"
        ) from err
    except (KeyError, ValueError, TypeError, AttributeError):  # no cfx layout
        saved = {}
    _same_run(
        saved.get("fingerprint") if isinstance(saved, dict) else None,
        fingerprint,
        names,
        added_later,
        path,
        other,
    )
    try:
        state = load_checkpoint(
            path,
            modules=modules,
            optimizers=optimizers,
            generators=generators,
            generators_added_later=generators_added_later,
        )
    except SafetensorError as err:
        raise CheckpointError(
            f"{path} cannot be read ({str(err).splitlines()[0]}): {damaged}"
        ) from err
    except CheckpointError:  # damaged since it was saved: said as such
        raise
    except (RuntimeError, KeyError, ValueError) as err:  # another model or architecture
        raise ForeignRunError(f"{other}the same model ({str(err).splitlines()[0]})") from err
    return state


def _same_run(
    earlier: Any,
    fingerprint: dict[str, Any],
    names: Mapping[str, str],
    added_later: tuple[str, ...],
    path: Path,
    other: str,
) -> None:
    """Refuse (naming what changed) a checkpoint whose saved ``earlier`` fingerprint differs
    from ``fingerprint``; entries of ``added_later`` it lacks are taken on trust."""
    if earlier is None and set(added_later) >= set(fingerprint):
        earlier = {}  # written before fingerprints, which may all be taken on trust
    # another kind of training first: its settings are other keys, not ones an older cfx lacked
    # (it warned "resuming on trust" about a generator's folder, then refused it)
    if isinstance(earlier, dict) and set(earlier) | set(added_later) != set(fingerprint):
        # for a classifier (or the other way): every setting differs, and listing ~20 hid that
        model = earlier.get("model") or fingerprint.get("model")
        trained = (
            ""
            if model is None
            else (f": it trained a {model}" if "model" in earlier else f", not a {model}'s")
        )
        raise ForeignRunError(
            f"`out` ({path.parent}) holds the checkpoint of another kind of training{trained}; "
            "use a new folder"
        )
    if isinstance(earlier, dict):
        lacking = [k for k in added_later if k not in earlier]
        if lacking:
            log.warning(
                "%s: a checkpoint written without %s; resuming on trust",
                path.parent,
                ", ".join(names.get(k, k) for k in lacking),
            )
            earlier = {**earlier, **{k: fingerprint[k] for k in lacking}}
    if earlier != fingerprint:
        what = (
            changes(earlier, fingerprint, names)
            if isinstance(earlier, dict)
            else "no settings recorded"
        )
        raise ForeignRunError(f"{other}the same settings and data ({what})")


def diverged(step: int, loss: float | None, ckpt: Path) -> DivergedError:
    """The error for training that stopped being finite at ``step``: its loss (``loss``) or,
    with ``loss`` None, the model's weights or its output on the last batch. It would make
    every weight NaN, and the run would end with a NaN model as if it had worked."""
    what = (
        f"the training loss is {loss} at step {step}, not a finite number"
        if loss is not None
        else f"the model is no longer finite after step {step} (its weights, or its output "
        "on the last batch)"
    )
    kept = f"{ckpt} keeps the last step saved before" if ckpt.exists() else "none was saved"
    return DivergedError(
        f"{what}: training stopped there, no checkpoint of it saved ({kept}); the same "
        "settings diverge again, so train with others (e.g. a lower learning rate) in a new "
        "folder"
    )


def not_finite(model: nn.Module, probe: Callable[[], Tensor] | None = None) -> bool:
    """True when ``model``'s parameters are not all finite numbers or, with ``probe``, the
    tensor it returns (the model run on a batch, in eval mode, without gradients) is not: a
    huge step can leave finite weights whose outputs overflow."""
    if any(not bool(torch.isfinite(p).all()) for p in model.parameters()):
        return True
    if probe is None:
        return False
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            return not bool(torch.isfinite(probe()).all())
    finally:
        model.train(was)
