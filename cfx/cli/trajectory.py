"""``cfx trajectory``: boundary-crossing sequences for built-in slices or the user's images."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cfx.errors import UnknownNameError

CLASS_NAMES = {"healthy": 0, "tumour": 1, "tumor": 1}
METHODS = ("monotone", "gradient", "localised")
DEFAULT_N, DEFAULT_SEED = 8, 2
STRIP_ROWS = 32
"""Sequences per strip figure (``strips.png``, then ``strips_02.png``, ...)."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("trajectory", help="walk images across a classifier's decision boundary")
    p.add_argument("--classifier", default="brain-cnn", help="zoo classifier to explain")
    p.add_argument("--generator", default="brain-gan", help="zoo generator (with encoder)")
    p.add_argument("--oracle", default="brain-oracle", help="zoo oracle ('none' to skip)")
    p.add_argument("--target", required=True, help="target class: healthy, tumour, or an index")
    p.add_argument(
        "--method",
        default="monotone",
        choices=METHODS,
        help="monotone = Option 2, gradient = Option 1, localised = Option 1 confined to the "
        "smallest region that still flips the classifier",
    )
    p.add_argument(
        "--localise",
        action="store_true",
        help="with --method monotone: confine the path to the smallest region that flips",
    )
    p.add_argument("--steps", type=int, default=10, help="frames T after the start")
    p.add_argument(
        "--margin",
        type=float,
        default=0.99,
        help="target probability the last frame must reach (about the classifier's typical "
        "confidence on real members of the target class)",
    )
    p.add_argument(
        "--n", type=int, default=None, help=f"built-in slices to explain (default {DEFAULT_N})"
    )
    p.add_argument(
        "--seed",
        type=int,
        default=None,
        help=f"seed of the built-in slices (default {DEFAULT_SEED})",
    )
    p.add_argument(
        "--input",
        type=Path,
        help="the user's images instead of built-in slices: an image file (.png/.jpg/.bmp/.tif, "
        "converted to the generator's channels and resized to its size) or a .npy/.pt batch "
        "(N, C, H, W) in [-1, 1] or uint8",
    )
    p.add_argument("--out", type=Path, default=Path("cfx-trajectory"))
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(run=run_trajectory)


def parse_target(text: str) -> int:
    key = text.strip().lower()
    if key in CLASS_NAMES:
        return CLASS_NAMES[key]
    if key.isdigit():
        return int(key)
    raise UnknownNameError(f"unknown target {text!r}; expected healthy, tumour or a class index")


IMAGE_FILES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
BATCH_FILES = (".npy", ".pt")


def load_input(path: Path, shape: tuple[int, ...]) -> torch.Tensor:
    """Images in [-1, 1] shaped ``(N, *shape)`` from an image file (converted to ``shape`` =
    ``(C, H, W)``: grey for one channel, RGB for three, 16-bit grey scaled by 65535, resized
    bilinearly) or a .npy/.pt batch (which must already have that shape)."""
    suffix = path.suffix.lower()
    if suffix not in IMAGE_FILES + BATCH_FILES:
        raise ValueError(
            f"`--input` must be an image file ({', '.join(IMAGE_FILES)}) or a batch "
            f"({', '.join(BATCH_FILES)}), got {path.name!r}"
        )
    if not path.is_file():
        raise FileNotFoundError(f"`--input` file not found: {path}")
    channels, h, w = shape
    if suffix in BATCH_FILES:
        from cfx.data.io import load_images

        x = load_images(path, name="--input")
        if tuple(x.shape[1:]) != tuple(shape):
            raise ValueError(
                f"`--input` must hold images shaped (N, {channels}, {h}, {w}) for the "
                f"generator, got {tuple(x.shape)}"
            )
        return x
    if channels not in (1, 3):
        raise ValueError(
            f"`--input` image files need a generator with 1 or 3 channels, got {channels}; "
            "pass a .npy batch instead"
        )
    from PIL import Image

    img = Image.open(path)
    if img.mode.startswith("I"):  # 16/32-bit grey (common for MRI): full scale is 65535
        unit = np.asarray(img, dtype=np.float32)[None] / 65535.0  # (1, H, W)
        unit = np.repeat(unit, channels, axis=0)
    else:
        rgb = np.asarray(img.convert("L" if channels == 1 else "RGB"), dtype=np.float32)
        unit = (rgb[None] if channels == 1 else rgb.transpose(2, 0, 1)) / 255.0  # (C, H, W)
    x = torch.from_numpy(np.ascontiguousarray(unit)).clamp(0, 1)[None] * 2.0 - 1.0
    if tuple(x.shape[-2:]) != (h, w):
        x = torch.nn.functional.interpolate(
            x, size=(h, w), mode="bilinear", align_corners=False, antialias=True
        ).clamp(-1, 1)
    return x


def builtin_sources(n: int, seed: int, target: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``n`` test slices of the class opposite to ``target`` (and their lesion masks)."""
    from cfx.data.brain import make_dataset

    data = make_dataset(max(4 * n, 16), seed=seed)
    pick = torch.nonzero(data.labels != target).flatten()[:n]
    return data.images[pick], data.masks[pick]


def run_trajectory(args: argparse.Namespace) -> int:
    from cfx.inversion import zero_image
    from cfx.metrics.trajectory import cout, summarise
    from cfx.trajectory import GradientAscent, LocalisedAscent, MonotonePath
    from cfx.viz import probability_curves, trajectory_gif, trajectory_strip
    from cfx.zoo import load_classifier, load_generator

    target = parse_target(args.target)
    if args.input is not None and (args.n is not None or args.seed is not None):
        raise ValueError("`--n` and `--seed` choose built-in slices; drop them with --input")
    n = DEFAULT_N if args.n is None else args.n
    if n <= 0:
        raise ValueError(f"`--n` must be a positive int, got {n}")
    generator = load_generator(args.generator)
    classifier = load_classifier(args.classifier)
    oracle = None if args.oracle == "none" else load_classifier(args.oracle)
    if args.input is not None:
        x, masks = load_input(args.input, tuple(zero_image(generator).shape[1:])), None
    else:
        seed = DEFAULT_SEED if args.seed is None else args.seed
        x, masks = builtin_sources(n, seed, target)
    common = {
        "steps": args.steps,
        "margin": args.margin,
        "oracle": oracle,
        "show_progress": not args.no_progress,
    }
    if args.localise and args.method != "monotone":
        raise ValueError(f"`--localise` goes with --method monotone, got --method {args.method}")
    explainer: GradientAscent | MonotonePath | LocalisedAscent
    if args.method == "monotone":
        explainer = MonotonePath(generator, classifier, localise=args.localise, **common)
    elif args.method == "gradient":
        explainer = GradientAscent(generator, classifier, **common)
    elif args.method == "localised":
        explainer = LocalisedAscent(generator, classifier, **common)
    else:
        raise UnknownNameError(f"unknown method {args.method!r}; expected one of {METHODS}")
    result = explainer.explain(x, target)

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    # the arrays and the summary first: figures of a very large batch must not cost the result
    arrays: dict[str, Any] = {
        "frames": result.frames.numpy(),
        "probs": result.probs.numpy(),
        "latents": result.latents.numpy(),
        "source": result.source.numpy(),
    }
    if result.edit_masks is not None:
        arrays["edit_masks"] = result.edit_masks.numpy()
    np.savez_compressed(out / "result.npz", **arrays)
    summary: dict[str, Any] = summarise(
        result.probs,
        result.levels,
        result.frames,
        result.source,
        oracle_probs=result.oracle_probs,
        masks=masks if target == 0 else None,
    )
    with torch.no_grad():
        summary["cout"] = float(
            cout(classifier, result.frames[:, 0], result.frames[:, -1], result.target).mean()
        )
    inversion = result.inversion
    summary |= {
        "method": args.method + ("+localise" if args.localise else ""),
        "target": target,
        "steps": args.steps,
        "seconds": result.seconds,
        "inversion_seconds": result.inversion_seconds,
        "inversion_psnr_db": None if inversion is None else float(inversion.psnr.mean()),
        "perceptual_loss": None if inversion is None else inversion.perceptual,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    for page, first in enumerate(range(0, len(result), STRIP_ROWS), start=1):
        rows = slice(first, first + STRIP_ROWS)
        oracle_rows = None if result.oracle_probs is None else result.oracle_probs[rows]
        name = "strips.png" if page == 1 else f"strips_{page:02d}.png"
        trajectory_strip(
            result.frames[rows], result.probs[rows], out / name, oracle_probs=oracle_rows
        )
    for i in range(len(result)):
        trajectory_gif(result.frames[i], out / f"sequence_{i:03d}.gif")
    probability_curves(
        result.probs, result.levels, out / "probabilities.png", oracle_probs=result.oracle_probs
    )
    print(json.dumps(summary, indent=2))
    return 0
