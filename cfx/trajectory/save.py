"""Writing a batch of boundary-crossing sequences to a folder: arrays, summary, figures."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from cfx.errors import check_flag
from cfx.files import path_argument, write_atomic
from cfx.trajectory.result import TrajectoryResult
from cfx.types import Classifier

STRIP_ROWS = 32
"""Sequences per strip figure (``strips.png``, then ``strips_02.png``, ...)."""
NUMBERED = re.compile(r"sequence_(\d{3,})\.gif|(?:strips|changes)_(\d{2,})\.png")
"""The numbered outputs: one GIF per image, strip and change pages from 2 on."""
FIGURES = ("strips.png", "changes.png", "probabilities.png")
"""The figures every run with figures writes besides the numbered ones."""


def save_result(
    result: TrajectoryResult,
    folder: str | Path,
    *,
    classifier: Classifier | None = None,
    masks: Tensor | None = None,
    setup: dict[str, Any] | None = None,
    names: Sequence[str] | None = None,
    warnings: Sequence[str] = (),
    figures: bool = True,
) -> dict[str, Any]:
    """Write ``result`` to ``folder`` (created if missing) as ``cfx trajectory`` does, and
    return the summary.

    Files: ``result.npz`` (``frames``, ``probs``, ``latents``, ``source``, ``target``,
    ``levels``, ``success``, ``in_target`` and, where they apply, ``oracle_probs``, ``lambdas``,
    ``edit_masks``), ``summary.json`` (the metrics of
    :func:`~cfx.metrics.trajectory.summarise`, whose flip rate is the share of
    ``result.success``; ``already_in_target``, the paths whose frame 0 (the reconstruction of the
    source) the classifier already puts in the target class; timings, the inversion's
    PSNR, ``setup``, ``warnings`` (what the run warned about, as given: ``cfx trajectory``
    passes its own) and one row per image in ``images``; NaN written as null),
    ``strips.png`` (32 sequences a page, then ``strips_02.png``, ...; the input first),
    ``changes.png`` (pages as the strips: the input, frames 0 and T and where they differ,
    with a localised path's region and the ``masks`` outlined; :func:`~cfx.viz.change_panels`),
    ``sequence_NNN.gif`` (captioned with frame index and probability) and
    ``probabilities.png``. The arrays and the summary are written before the figures.

    ``crossed_rate`` is the share of paths that start outside the target class (frame 0 and,
    with ``classifier``, the input itself) and end in it (``flip_rate`` counts the paths that
    start in it too).

    ``classifier`` (the explained model, on the result's device; left as it was) adds COUT,
    each image's ``p_source`` (its target probability on the source itself, next to
    ``p_start`` on frame 0, the reconstruction) and ``input_in_target`` (whether the
    classifier already puts the source itself in the target: such a path is no
    counterfactual of it), their count ``input_in_target``, and ``source_in_target`` (of the
    ``already_in_target`` paths, how many it puts in the target as sources too: the rest lost
    the decision in the inversion); ``names`` (one per image, e.g. file names) add a ``file``
    to each row and label the figures' rows (else "row 0", "row 1", ..., as the warnings
    and ``sequence_000.gif`` count them); ``masks`` ``(B, 1, H, W)``, the true lesion masks
    of tumour sources walked to healthy, add localisation; ``setup`` is stored in the summary (JSON:
    tuples become lists, NaN becomes null; values JSON cannot hold are an error raised before
    any file is written; its ``target_name``, ``classifier`` and ``oracle``, where given, name
    the probability plot's axis and lines). In a folder an earlier cfx run wrote (its
    ``summary.json`` has this function's keys), that run's numbered figures beyond this batch
    are deleted.

    ``figures=False`` writes ``result.npz`` and ``summary.json`` only, for a large batch read
    by a script (a GIF per image and a strip page per 32; drawing them took 2.7 s of a
    16-image ``cfx trajectory`` run of about 30 s). The figures an earlier cfx run left in
    the folder are deleted, so none of another run's sits beside this result.
    """
    from cfx.calls import (
        class_logits,
        float_weight,
        frozen,
        held_modules,
        in_chunks,
        target_prob,
    )
    from cfx.metrics.trajectory import cout, largest_step_share, oracle_agreement, summarise
    from cfx.viz import change_panels, probability_curves, trajectory_gif, trajectory_strip

    # every check before the folder is touched: these failed after summary.json was deleted
    # (and often after result.npz was written), naming neither argument
    if not isinstance(result, TrajectoryResult):  # res.frames: "'Tensor' object has no ..."
        raise TypeError(
            f"`result` must be the TrajectoryResult an explainer returned (res, not res.frames), "
            f"got {type(result).__name__}"
        )
    b = len(result)
    if b == 0:
        raise ValueError(
            "`result` holds no sequences (e.g. result[result.success] with no success): "
            "nothing to save"
        )
    figures = check_flag("figures", figures)  # "no" would draw them
    if isinstance(names, str):  # "abc" was taken as the names a, b, c
        raise TypeError(f"`names` must be a list of {b} names, got the string {names!r}")
    if names is not None and len(names) != b:
        raise ValueError(f"`names` must name the {b} images, got {len(names)} names")
    want = (b, 1, *result.frames.shape[-2:])
    if masks is not None and not isinstance(masks, torch.Tensor):
        raise TypeError(
            f"`masks` must be a torch tensor {want} (torch.from_numpy converts an array), got "
            f"{type(masks).__name__}"
        )
    if masks is not None and tuple(masks.shape) != want:
        raise ValueError(f"`masks` must have shape {want}, got {tuple(masks.shape)}")
    if result.frames.dtype == torch.bfloat16:  # numpy holds no bfloat16
        result = result.to(dtype=torch.float32)
    try:
        json.dumps(_json_safe(setup or {}), allow_nan=False)
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"`setup` must hold JSON values (str, numbers, lists, dicts): {err}"
        ) from None
    out = path_argument(folder, "folder", "a folder path (str or Path)")
    if out.exists() and not out.is_dir():
        raise ValueError(f"`folder` must be a folder (created if missing), got the file {out}")
    if out.suffix.lower() in (".npz", ".npy", ".json", ".png", ".gif") and not out.exists():
        raise ValueError(
            f"`folder` must be a folder, got {out}, a file name: save_result writes "
            f"result.npz, summary.json and figures inside the folder (e.g. {out.parent})"
        )
    out.mkdir(parents=True, exist_ok=True)
    earlier_run = _written_by_cfx(out / "summary.json")
    # summary.json is written last, once every output is this run's: a folder interrupted
    # while writing them has none (it kept the run before's, beside this run's result.npz)
    (out / "summary.json").unlink(missing_ok=True)
    arrays = {
        key: value.detach().cpu().numpy()
        for key in (
            *("frames", "probs", "latents", "source", "target", "levels", "success"),
            "in_target",
            *("oracle_probs", "lambdas", "edit_masks"),
        )
        if (value := getattr(result, key)) is not None
    }
    packed = io.BytesIO()  # written whole or not at all, as the summary is
    np.savez_compressed(packed, **arrays)
    write_atomic(out / "result.npz", packed.getvalue())
    summary: dict[str, Any] = summarise(
        result.probs,
        result.levels,
        result.frames,
        result.source,
        oracle_probs=result.oracle_probs,
        masks=None if masks is None else masks.to(result.frames.device),
        success=result.success,
    )
    # the same keys from every run, so summaries of several runs compare without KeyErrors
    summary.setdefault("oracle_agreement", None)  # no oracle
    summary.setdefault("oracle_agreement_along_path", None)
    summary.setdefault("localisation", None)  # no lesion masks
    # oracle_agreement reads every path's last frame, flipped or not (1.0 where none
    # flipped and the oracle kept the source's class: session 45 audit); of the flipped ones
    flipped = result.success.to(torch.bool)
    summary["oracle_agreement_of_flipped"] = (
        float(oracle_agreement(result.oracle_probs[flipped, -1]).nanmean())
        if result.oracle_probs is not None and bool(flipped.any())
        else None
    )
    per_cout = p_source = source_in = input_in = None
    if classifier is not None:
        # the images in the classifier's dtype: a result cast with `res.to(dtype)` is saved too
        weights = (float_weight(m) for m in held_modules(classifier))
        dtype = next((w.dtype for w in weights if w is not None), result.frames.dtype)
        ends = result.frames[:, [0, -1]].to(dtype)  # (B, 2, C, H, W)
        with frozen(classifier), torch.no_grad():
            per_cout = cout(classifier, ends[:, 0], ends[:, 1], result.target)
            # the source itself, next to frame 0 (its reconstruction): a path that starts in
            # the target from a source outside it lost the decision in the inversion
            logits = in_chunks(lambda f: class_logits(classifier, f), result.source.to(dtype))
        p_source = target_prob(logits, result.target)
        input_in = logits.argmax(1) == result.target  # the input itself: no counterfactual
        # of the paths whose frame 0 is in the target, those whose source is there too
        source_in = input_in & result.already_in_target
    inversion = result.inversion
    crossed = result.crossed_at
    step_share = largest_step_share(result.frames)  # summarise holds its mean
    summary |= {
        "n": len(result),
        # paths that start outside the target (frame 0 and, with a classifier, the input
        # itself) and end inside it
        "crossed_rate": float(
            (
                result.success
                & ~result.already_in_target
                & (True if input_in is None else ~input_in.to(result.success.device))
            )
            .float()
            .mean()
        ),
        "cout": None if per_cout is None else float(per_cout.mean()),
        # Option 2: the share of paths the joint optimisation moved (the rest: the warm start)
        "optimised_share": None
        if result.lambdas is None
        else float((~result.lambdas.isnan()).float().mean()),
        "already_in_target": int(result.already_in_target.sum()),
        "input_in_target": None if input_in is None else int(input_in.sum()),
        "source_in_target": None if source_in is None else int(source_in.sum()),
        "seconds": result.seconds,
        "inversion_seconds": result.inversion_seconds,
        "inversion_psnr_db": None if inversion is None else float(inversion.psnr.mean()),
        "inversion_steps": None if inversion is None else inversion.steps,
        "perceptual_loss": None if inversion is None else inversion.perceptual,
        "setup": setup or {},
        "warnings": [str(w) for w in warnings],
        "images": [
            ({} if names is None else {"file": str(names[i])})
            | {
                "p_source": None if p_source is None else float(p_source[i]),
                "input_in_target": None if input_in is None else bool(input_in[i]),
                "p_start": float(result.probs[i, 0]),
                "p_end": float(result.probs[i, -1]),
                "success": bool(result.success[i]),
                "crossed_at": int(crossed[i]) if int(crossed[i]) >= 0 else None,
                "oracle_p_end": None
                if result.oracle_probs is None
                else float(result.oracle_probs[i, -1]),
                "cout": None if per_cout is None else float(per_cout[i]),
                "largest_step_share": float(step_share[i]),
                "lambda": None if result.lambdas is None else float(result.lambdas[i]),
                # Option 2 only: false where the warm start was kept (its lambda NaN -> null)
                "optimised": None
                if result.lambdas is None
                else not bool(result.lambdas[i].isnan()),
                "inversion_psnr_db": None if inversion is None else float(inversion.psnr[i]),
            }
            for i in range(len(result))
        ],
    }
    summary = _json_safe(summary)
    text = json.dumps(summary, indent=2, allow_nan=False) + "\n"  # checked before the figures
    if earlier_run and figures:  # numbered figures an earlier, larger run left behind
        _remove_numbered(out, images=b, pages=-(-b // STRIP_ROWS))
    if not figures:
        if earlier_run:  # none of another run's figures beside this result
            _remove_numbered(out, images=0, pages=0)
            for name in FIGURES:
                (out / name).unlink(missing_ok=True)
        write_atomic(out / "summary.json", text)
        return summary
    on_cpu = result.cpu()  # the figures draw from the CPU (they detach what they read)
    frames, probs, oracle, source = on_cpu.frames, on_cpu.probs, on_cpu.oracle_probs, on_cpu.source
    labels = [str(n) for n in names] if names is not None else [f"row {i}" for i in range(b)]
    model_names = _curve_names(setup or {})  # the strips' caption names what the plot's do
    for page, first in enumerate(range(0, len(result), STRIP_ROWS), start=1):
        rows = slice(first, first + STRIP_ROWS)
        name = "strips.png" if page == 1 else f"strips_{page:02d}.png"
        row_names = labels[rows]
        trajectory_strip(
            frames[rows],
            probs[rows],
            out / name,
            oracle_probs=None if oracle is None else oracle[rows],
            sources=source[rows],
            source_probs=None if p_source is None else p_source.cpu()[rows],
            row_names=row_names,
            **model_names,
        )
        change_panels(
            frames[rows],
            out / name.replace("strips", "changes"),
            sources=source[rows],
            edit_masks=None if on_cpu.edit_masks is None else on_cpu.edit_masks[rows],
            lesion_masks=None if masks is None else masks.cpu()[rows],
            row_names=row_names,
        )
    for i in range(len(result)):
        trajectory_gif(frames[i], out / f"sequence_{i:03d}.gif", probs=probs[i])
    probability_curves(
        probs,
        result.levels.cpu(),
        out / "probabilities.png",
        oracle_probs=oracle,
        row_names=labels,
        **model_names,
    )
    write_atomic(out / "summary.json", text)
    return summary


def _curve_names(setup: dict[str, Any]) -> dict[str, Any]:
    """The probability plot's axis and legend names from ``setup`` (as ``cfx trajectory``
    writes it): ``P(healthy)`` or ``P(class 1)``, the models by their zoo name or folder."""
    names: dict[str, Any] = {}
    target = setup.get("target_name")
    if target is not None:
        names["target_name"] = f"class {target}" if str(target).isdigit() else str(target)
    roles = ("classifier", "oracle")
    if any(setup.get(role) for role in roles):
        names["model_names"] = tuple(
            _model_name(str(setup[role])) if setup.get(role) else role for role in roles
        )
    return names


def _model_name(spelt: str) -> str:
    """A model's name for a legend: a zoo name as it is, a folder by its name, and a run's
    ``DIR/model`` folder (``cfx train``'s layout) by its run's name, ``DIR``."""
    path = Path(spelt)
    return path.parent.name if path.name == "model" and path.parent.name else path.name


def load_result(folder: str | Path) -> TrajectoryResult:
    """Read a folder :func:`save_result` wrote (or its ``result.npz``) back into a
    :class:`TrajectoryResult` (on the CPU). The inversion is not stored (``inversion`` is
    None: its PSNR and loss are in ``summary.json``); the timings come from
    ``summary.json`` (NaN if it is missing). Folders written before ``in_target`` was stored
    get it from ``probs > 0.5`` (exact for two classes) with the last frame from ``success``.
    """
    out = path_argument(folder, "folder", "a folder path (str or Path)")
    if out.name == "result.npz" and out.is_file():  # the file itself: its folder
        out = out.parent
    npz = out / "result.npz"
    if not npz.is_file():
        raise FileNotFoundError(f"`folder`: no result.npz in {out} (save_result writes one)")
    try:
        with np.load(npz) as data:
            arrays = {key: torch.from_numpy(data[key]) for key in data.files}
    except Exception as err:  # numpy's words for a damaged file spoke of pickles
        raise ValueError(
            f"`folder`: {npz} cannot be read as save_result's result.npz (damaged or another "
            f"program's file: {type(err).__name__})"
        ) from err
    need = {"frames", "probs", "latents", "source", "target", "levels", "success"}
    if missing := sorted(need - arrays.keys()):
        raise ValueError(f"`folder`: {npz} lacks {missing}; was it written by save_result?")
    in_target = arrays.get("in_target")
    if in_target is None:
        in_target = arrays["probs"] > 0.5
        in_target[:, -1] = arrays["success"]
    summary: dict[str, Any] = {}
    if (out / "summary.json").is_file():
        summary = json.loads((out / "summary.json").read_text())

    def seconds(key: str) -> float:
        value = summary.get(key)
        return float("nan") if value is None else float(value)

    return TrajectoryResult(
        frames=arrays["frames"],
        latents=arrays["latents"],
        probs=arrays["probs"],
        levels=arrays["levels"],
        target=arrays["target"],
        source=arrays["source"],
        in_target=in_target,
        oracle_probs=arrays.get("oracle_probs"),
        lambdas=arrays.get("lambdas"),
        seconds=seconds("seconds"),
        inversion_seconds=seconds("inversion_seconds"),
        edit_masks=arrays.get("edit_masks"),
    )


def _written_by_cfx(summary: Path) -> bool:
    """Whether ``summary`` is a summary this function wrote (so the folder's numbered
    figures are ours to replace)."""
    try:
        data = json.loads(summary.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and {"setup", "images", "flip_rate"} <= data.keys()


def _remove_numbered(out: Path, *, images: int, pages: int) -> None:
    """Delete the GIFs numbered ``images`` and up and the strip pages after ``pages``."""
    for old in out.iterdir():
        match = NUMBERED.fullmatch(old.name)
        if match is None or not old.is_file():
            continue
        gif, page = match.groups()
        if (gif is not None and int(gif) >= images) or (page is not None and int(page) > pages):
            old.unlink()


def _json_safe(value: Any) -> Any:
    """``value`` with NaN and infinities as None (JSON has no NaN), tuples as lists and numpy
    scalars and arrays as Python numbers and lists."""
    if isinstance(value, np.generic | np.ndarray):
        value = value.tolist()
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value
