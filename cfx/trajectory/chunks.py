"""Explaining a large batch in chunks, each kept on disk as it finishes, so that an interrupted
run resumes where it stopped instead of starting over."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import Tensor
from tqdm.auto import tqdm

from cfx.errors import check_int
from cfx.inversion import InversionResult
from cfx.trajectory.result import TrajectoryResult, concat

log = logging.getLogger(__name__)

KEY_FILE = "key.json"
"""What a chunk folder's finished chunks were computed from; a resume needs the same."""


class TrajectoryExplainer(Protocol):
    def explain(self, x: Tensor, target: int | Tensor) -> TrajectoryResult: ...


def explain_in_chunks(
    explainer: TrajectoryExplainer,
    x: Tensor,
    target: int | Tensor,
    *,
    batch_size: int = 32,
    folder: str | Path | None = None,
    key: Mapping[str, Any] | None = None,
    show_progress: bool = False,
) -> TrajectoryResult:
    """``explainer.explain`` over ``x`` ``(B, C, H, W)`` in [-1, 1], ``batch_size`` images at a
    time, as one result.

    With ``folder``, each finished chunk is written there (``part_00000.safetensors``, ...)
    before the next starts, and a later call with the same images, target, ``batch_size`` and
    ``key`` (JSON settings that decide the result: the explainer's options, the models'
    weights) reads the finished chunks back instead of computing them again. A folder left by a
    call with other inputs or settings has its chunks deleted (a warning says how many). The
    folder is the caller's to delete once the result is saved. ``seconds`` of a resumed result
    add up the chunks' own times, including those of the earlier run.

    32 is the batch size ``benchmarks/trajectory.py`` times (on CPU a generator + classifier
    step over 32 rows is ~2x faster per row than over 320), and it bounds memory on large
    inputs. The explainers treat images independently, so chunking changes only
    floating-point rounding (and the ``seconds``, which are per chunk).
    """
    check_int("batch_size", batch_size)
    if x.ndim != 4:
        raise ValueError(f"`x` must be a batch (B, C, H, W), got shape {tuple(x.shape)}")
    n = x.shape[0]
    if isinstance(target, Tensor) and target.numel() not in (1, n):
        raise ValueError(
            f"`target` must be one class or one per image ({n}), got shape {tuple(target.shape)}"
        )
    targets = torch.as_tensor(target, device=x.device).reshape(-1).expand(n)  # (B,)
    try:
        expected = json.loads(json.dumps({"key": dict(key or {})}, allow_nan=False))
    except (TypeError, ValueError) as err:
        raise TypeError(f"`key` must hold JSON values: {err}") from None
    expected |= {"inputs_sha256": _digest(x, targets), "batch_size": batch_size, "n": n}
    out = None if folder is None else Path(folder)
    if out is not None:
        _claim(out, expected)
    starts = range(0, n, batch_size)
    results: list[TrajectoryResult] = []
    bar = tqdm(total=n, desc="images", unit="image", disable=not show_progress or len(starts) < 2)
    for i, first in enumerate(starts):
        rows = slice(first, first + batch_size)
        part = None if out is None else out / f"part_{i:05d}.safetensors"
        if part is not None and part.is_file():
            res = _read_part(part, x)
        else:
            res = explainer.explain(x[rows], target if isinstance(target, int) else targets[rows])
            if part is not None:
                _write_part(res, part)
        results.append(res)
        bar.update(len(res))
    bar.close()
    return concat(results)


def _digest(x: Tensor, targets: Tensor) -> str:
    h = hashlib.sha256()
    for t in (x, targets):
        h.update(str((tuple(t.shape), str(t.dtype))).encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _claim(out: Path, expected: dict[str, Any]) -> None:
    """Make ``out`` a chunk folder for ``expected``: keep its chunks if they were computed
    for it, else delete them."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"`folder` must be a folder (created if missing), got the file {out}")
    out.mkdir(parents=True, exist_ok=True)
    parts = sorted(out.glob("part_*.safetensors"))
    try:
        earlier = json.loads((out / KEY_FILE).read_text())
    except (OSError, ValueError):
        earlier = None
    if parts and earlier == expected:
        log.warning(
            "resuming: %d of %d chunks were finished by an earlier run (%s)",
            len(parts),
            math.ceil(expected["n"] / expected["batch_size"]),
            out,
        )
    elif parts:
        log.warning(
            "%s holds %d finished chunks of a run with other inputs or settings; starting over",
            out,
            len(parts),
        )
        for part in parts:
            part.unlink()
    _atomic_write(out / KEY_FILE, (json.dumps(expected, indent=2) + "\n").encode())


def _write_part(res: TrajectoryResult, path: Path) -> None:
    tensors = {
        name: value.detach().cpu().contiguous()
        for name in (
            *("frames", "latents", "probs", "levels", "target", "source", "in_target"),
            *("oracle_probs", "lambdas", "edit_masks"),
        )
        if (value := getattr(res, name)) is not None
    }
    meta: dict[str, Any] = {"seconds": res.seconds, "inversion_seconds": res.inversion_seconds}
    inv = res.inversion
    if inv is not None:
        for name in ("latents", "reconstructions", "psnr", "encoder_psnr"):
            tensors[f"inversion.{name}"] = getattr(inv, name).detach().cpu().contiguous()
        meta |= {
            "inversion.perceptual": inv.perceptual,
            "inversion.steps": inv.steps,
            "inversion.seconds": inv.seconds,
        }
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata={"result": json.dumps(meta)})
    os.replace(tmp, path)  # a chunk is on disk whole or not at all


def _read_part(path: Path, like: Tensor) -> TrajectoryResult:
    """A chunk written by :func:`_write_part`, on ``like``'s device, floats in its dtype."""
    with safe_open(str(path), framework="pt") as f:
        meta = json.loads((f.metadata() or {})["result"])
        stored = {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118 (not a dict)
    t = {
        name: v.to(like.device, like.dtype if v.is_floating_point() else None)
        for name, v in stored.items()
    }
    inversion = None
    if "inversion.latents" in t:
        inversion = InversionResult(
            latents=t["inversion.latents"],
            reconstructions=t["inversion.reconstructions"],
            psnr=t["inversion.psnr"],
            encoder_psnr=t["inversion.encoder_psnr"],
            perceptual=meta["inversion.perceptual"],
            steps=int(meta["inversion.steps"]),
            seconds=float(meta["inversion.seconds"]),
        )
    return TrajectoryResult(
        frames=t["frames"],
        latents=t["latents"],
        probs=t["probs"],
        levels=t["levels"],
        target=t["target"],
        source=t["source"],
        in_target=t["in_target"],
        oracle_probs=t.get("oracle_probs"),
        lambdas=t.get("lambdas"),
        seconds=float(meta["seconds"]),
        inversion_seconds=float(meta["inversion_seconds"]),
        edit_masks=t.get("edit_masks"),
        inversion=inversion,
    )


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
