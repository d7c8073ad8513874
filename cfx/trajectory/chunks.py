"""Explaining a large batch in chunks, each kept on disk as it finishes, so that an interrupted
run resumes where it stopped instead of starting over."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from dataclasses import fields, is_dataclass
from numbers import Integral
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import torch
from safetensors import safe_open
from torch import Tensor

from cfx import __version__ as cfx_version
from cfx.calls import resolve_target
from cfx.errors import ForeignRunError, check_flag, check_int, counted
from cfx.files import save_tensors_atomic, write_atomic
from cfx.images import check_images
from cfx.inversion import InversionResult, lpips_available, unit_range_notice
from cfx.progress import tqdm
from cfx.run_key import changes, json_sha256, tensors_sha256
from cfx.trajectory.identity import explainer_key, explainer_setting
from cfx.trajectory.notices import end_notice, notices_held, notify_starts, region_notice
from cfx.trajectory.result import TrajectoryResult, concat
from cfx.trajectory.save import _json_safe
from cfx.types import Target

log = logging.getLogger(__name__)

FORMAT = 5  # 2: every field by name (1 listed them); 3: zero inversion steps report "none";
# 4: a frame whose step does not climb is re-placed (`cfx.trajectory.repair`); 5: models keyed
# with their settings (`cfx.trajectory.identity.module_digest`), localised starts past the margin
"""The layout of the chunk files; a folder of another layout is started over."""
_ROW_NOTICES = ("cfx_starts_in_target", "cfx_ends_short", "cfx_unit_range", "cfx_whole_image")
"""Notices an explainer logs about rows of its batch, which a chunk would number wrongly."""
KEY_FILE = "key.json"
"""What a chunk folder's finished chunks were computed from; a resume needs the same."""
_PART = "part_{:05d}.safetensors"  # chunk i's file; `finished_chunks` globs the same name


class TrajectoryExplainer(Protocol):
    def explain(self, x: Tensor, target: Target) -> TrajectoryResult: ...


def explain_in_chunks(
    explainer: TrajectoryExplainer,
    x: Tensor,
    target: Target,
    *,
    batch_size: int = 32,
    folder: str | Path | None = None,
    key: Mapping[str, Any] | None = None,
    foreign: Literal["restart", "refuse"] = "refuse",
    show_progress: bool = False,
) -> TrajectoryResult:
    """``explainer.explain`` over ``x`` ``(B, C, H, W)`` in [-1, 1], ``batch_size`` images at a
    time, as one result. ``target``: one class (int) or one per image (integer tensor ``(B,)``).

    With ``folder``, each finished chunk is written there (``part_00000.safetensors``, ...)
    before the next starts, and a later call with the same images, target, ``batch_size`` and
    ``key`` reads the finished chunks back instead of computing them again. ``key`` holds
    the JSON settings that decide the result and that the images do not show: the explainer's
    options and the models' weights (a sha256 each), so that a retrained model is not
    resumed from its predecessor's chunks. A folder left by a call with other inputs, settings
    or ``batch_size`` is left as it is and a ``ForeignRunError`` names what changed (the
    default, ``foreign="refuse"``, as the command line: a typo in a rerun must not cost hours
    of finished work; it deleted them by default until session 45), or, with
    ``foreign="restart"``, has its chunks deleted (a warning says so); chunks of another cfx
    version or chunk layout, which no arguments resume, are deleted either way. A chunk that
    cannot be read, or was written for another call, is computed again. The folder is the
    caller's to delete once the result is saved.

    The result's ``seconds`` add up the chunks' own times, including those an earlier,
    interrupted call spent on the chunks read back. 32 is the batch size
    ``benchmarks/trajectory.py`` times, and it bounds memory on large inputs.

    The explainers treat images independently, but the generator and classifier round
    differently at some batch sizes (~1e-6), and the number of images still walking changes
    as they finish, so an image's rounding depends on its companions; where it tips a
    discrete choice (the iteration that crosses ``margin``, the region that passes) the
    image ends elsewhere. The same inputs in the same chunks give identical results; other
    chunks give other frames for some images: 13 of 64 test slices (7 with another region)
    at ``batch_size`` 32 vs 64 for localised Option 2, with the same flip rate, oracle
    agreement and localisation (BENCHMARKS.md, session 16). ``batch_size=1`` makes every
    image's result independent of the others (all 64 identical with the order reversed), at
    about twice the time (1.9x for `cfx trajectory` on those slices, inversion included;
    BENCHMARKS.md, session 17).
    """
    check_flag("show_progress", show_progress)
    if isinstance(explainer, type):  # the class, not an explainer made from it
        raise TypeError(
            f"`explainer` must be an explainer, not the class {explainer.__name__}: make one "
            f"first, e.g. `{explainer.__name__}(generator, classifier)`"
        )
    if not callable(getattr(explainer, "explain", None)):  # e.g. the classifier passed
        raise TypeError(
            "`explainer` must have an `explain(x, target)` method (GradientAscent, "
            f"LocalisedAscent, MonotonePath), got {type(explainer).__name__}"
        )
    batch_size = check_int("batch_size", batch_size)
    # the whole input, before any chunk: an error names its row in x, not in a chunk
    x = check_images(x, "x")
    n = x.shape[0]
    targets = resolve_target(target, n, None, x.device)  # (B,); classes: the explainer
    try:  # numpy numbers as Python ones, as save_result's setup takes them
        safe = {"key": _json_safe(dict(key or {}))}
        expected = json.loads(json.dumps(safe, allow_nan=False))
    except (TypeError, ValueError) as err:
        raise TypeError(f"`key` must hold JSON values: {err}") from None
    expected |= {
        # what the explainer is: a folder of another method's or setting's chunks, or of other
        # weights, is not read back (the key alone could leave that out)
        "explainer": explainer_key(explainer) if folder is not None else None,
        "inputs_sha256": tensors_sha256(x, targets),
        "batch_size": batch_size,
        "n": n,
        "cfx": cfx_version,
        "format": FORMAT,
    }
    inverts = explainer_setting(explainer, "inversion_steps")
    if not (isinstance(inverts, Integral) and not isinstance(inverts, bool) and inverts == 0):
        # the explainers invert with perceptual="auto": LPIPS once its weights are cached,
        # the encoder's features before; chunks computed with the other are another run's
        expected["inversion_perceptual"] = "lpips" if lpips_available() else "not lpips"
    stamp = json_sha256(expected)
    out = None if folder is None else Path(folder)
    if foreign not in ("restart", "refuse"):
        raise ValueError(f"`foreign` must be 'restart' or 'refuse', got {foreign!r}")
    if out is not None:
        _claim(out, expected, refuse=foreign == "refuse")
    results: list[TrajectoryResult] = []
    unit_range_notice(x)  # once for the whole input, not once per chunk
    computed = False  # has a chunk been computed (not read back) yet?
    starts = range(0, n, batch_size)
    show = show_progress and len(starts) > 1
    with tqdm(total=n, desc="images", unit="image", disable=not show) as bar:
        for i, first in enumerate(starts):
            rows = slice(first, first + batch_size)
            part = None if out is None else out / _PART.format(i)
            res = None if part is None else _read_part(part, stamp, x[rows])
            if res is None:
                # the notices about rows are given once, for the whole input (above and
                # below); one about the models (a final softmax) is the same for every chunk
                held = _ROW_NOTICES + (() if not computed else ("cfx_models",))
                with notices_held(*held):
                    res = explainer.explain(
                        x[rows], target if isinstance(target, int) else targets[rows]
                    )
                computed = True
                if part is not None:
                    _write_part(res, part, stamp)
            results.append(res)
            bar.update(len(res))
    result = concat(results)
    # rows of the whole input, chunks read back included
    notify_starts(explainer, result.in_target[:, 0], result.source, result.target, inverted=True)
    end_notice(result.in_target[:, -1], result.probs[:, -1], explainer_setting(explainer, "margin"))
    region_notice(result.edit_masks, explainer_setting(explainer, "give_up"))
    return result


def _claim(out: Path, expected: dict[str, Any], *, refuse: bool) -> None:
    """Make ``out`` a chunk folder for ``expected``: keep its chunks if they were computed
    for it, else delete them (``refuse``: raise a ``ForeignRunError`` instead)."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"`folder` must be a folder (created if missing), got the file {out}")
    out.mkdir(parents=True, exist_ok=True)
    for tmp in out.glob("*.tmp"):  # writes an interruption cut short
        tmp.unlink()
    parts = finished_chunks(out)
    try:
        earlier = json.loads((out / KEY_FILE).read_text())
    except (OSError, ValueError):
        earlier = None
    # a key written before the entry existed (cfx of session 36 and before) does not say
    # which loss its chunks used: they are resumed as before
    older = isinstance(earlier, dict) and "inversion_perceptual" not in earlier
    if older and "inversion_perceptual" in expected and earlier.get("cfx") == expected["cfx"]:
        earlier = {**earlier, "inversion_perceptual": expected["inversion_perceptual"]}
    if parts and not isinstance(earlier, dict) and _stamped(parts, json_sha256(expected)):
        # the key damaged (a disk error, an edit), its chunks whole: each carries this run's
        # stamp (and its images, checked on reading); they were deleted as another run's
        log.warning("%s: %s cannot be read; its chunks carry this run's stamp", out, KEY_FILE)
        earlier = expected
    if parts and earlier == expected:
        total = math.ceil(expected["n"] / expected["batch_size"])
        log.warning(  # "batches", as the interrupted run said (and "1 of 1 chunk were")
            "resuming: %d of %s %s finished by an earlier run (%s)",
            len(parts),
            f"{total} batch{'' if total == 1 else 'es'}",
            "was" if len(parts) == 1 else "were",
            out,
        )
    elif parts:
        why = (
            f"a run with other inputs or settings ({changes(earlier, expected, _NAMES)})"
            if isinstance(earlier, dict)
            else f"a run whose {KEY_FILE} is missing or unreadable"
        )
        held = counted(len(parts), "finished chunk")
        # chunks of another cfx version or layout cannot be resumed by any arguments
        other_cfx = not isinstance(earlier, dict) or any(
            earlier.get(k) != expected[k] for k in ("cfx", "format")
        )
        if refuse and not other_cfx:
            raise ForeignRunError(
                f"{out} holds {held} of {why}: rerun with those to resume it, or delete the "
                "folder (or write elsewhere) to start this run"
            )
        log.warning("%s holds %s of %s; starting over", out, held, why)
        for part in parts:
            part.unlink()
    write_atomic(out / KEY_FILE, json.dumps(expected, indent=2) + "\n")


def _stamped(parts: list[Path], stamp: str) -> bool:
    """Whether every readable chunk of ``parts`` was written with ``stamp`` (its metadata,
    read alone); a damaged one is computed again on reading, whoever wrote it."""
    for part in parts:
        try:
            with safe_open(str(part), framework="pt") as f:
                if (f.metadata() or {}).get("stamp") != stamp:
                    return False
        except Exception:  # damaged: left to the reading
            continue
    return True


def finished_chunks(folder: str | Path) -> list[Path]:
    """The chunk files in ``folder`` that ``explain_in_chunks`` finished, in order (none if
    the folder does not exist); whether a resume can use them is decided on reading."""
    return sorted(Path(folder).glob(_PART.replace("{:05d}", "*")))


_NAMES = {
    "inputs_sha256": "the images or targets",
    "n": "the number of images",
    "inversion_perceptual": "the inversion's perceptual loss (LPIPS's weights in the torch hub "
    "cache since)",
}
"""How a key's entries are named in a warning, where their own name would not say."""


def _flatten(obj: Any, prefix: str = "") -> tuple[dict[str, Tensor], dict[str, Any]]:
    """A frozen dataclass's tensors (on the CPU) and its other fields (JSON values), by field
    name; a nested dataclass (the inversion) under ``name.``."""
    tensors: dict[str, Tensor] = {}
    meta: dict[str, Any] = {}
    for f in fields(obj):
        value, key = getattr(obj, f.name), prefix + f.name
        if isinstance(value, Tensor):
            tensors[key] = value.detach().cpu().contiguous()
        elif is_dataclass(value):
            inner_tensors, inner_meta = _flatten(value, key + ".")
            tensors |= inner_tensors
            meta |= inner_meta
        else:  # None, numbers, strings
            meta[key] = value
    return tensors, meta


def _unflatten(
    cls: type, tensors: dict[str, Tensor], meta: dict[str, Any], prefix: str = ""
) -> Any:
    """The ``cls`` instance :func:`_flatten` took apart."""
    kwargs: dict[str, Any] = {}
    for f in fields(cls):
        key = prefix + f.name
        if key in tensors:
            kwargs[f.name] = tensors[key]
        elif key in meta:
            kwargs[f.name] = meta[key]
        else:  # a nested dataclass that was present: the inversion
            kwargs[f.name] = _unflatten(InversionResult, tensors, meta, key + ".")
    return cls(**kwargs)


def _write_part(res: TrajectoryResult, path: Path, stamp: str) -> None:
    tensors, meta = _flatten(res)
    # a chunk is on disk whole or not at all
    # a numpy setting (inversion_steps=np.int64(3)) failed here, after the chunk's work
    text = json.dumps(meta, default=lambda v: v.item() if isinstance(v, np.generic) else str(v))
    save_tensors_atomic(tensors, path, metadata={"result": text, "stamp": stamp})


def _read_part(path: Path, stamp: str, x: Tensor) -> TrajectoryResult | None:
    """The chunk at ``path`` (written by :func:`_write_part` for ``stamp``, the images ``x``),
    on ``x``'s device; None if there is none, or it is unreadable or someone else's."""
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            meta = json.loads(metadata["result"])
            stored = {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118 (no dict)
        ours = metadata.get("stamp") == stamp and torch.equal(stored["source"].to(x), x)
        on_device = {name: v.to(x.device) for name, v in stored.items()}
        result: TrajectoryResult = _unflatten(TrajectoryResult, on_device, meta)
    except Exception as err:  # a damaged file of any kind is computed again
        log.warning("chunk %s cannot be read (%s); computing it again", path, err)
        return None
    if not ours:
        log.warning("chunk %s was written for other inputs or settings; computing it again", path)
        return None
    return result
