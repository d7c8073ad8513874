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
    p.add_argument("--n", type=int, default=8, help="built-in slices to explain")
    p.add_argument("--seed", type=int, default=2, help="seed of the built-in slices")
    p.add_argument("--input", type=Path, help="an image file (.png) or a .npy/.pt batch")
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


def load_input(path: Path) -> torch.Tensor:
    """Images in [-1, 1] from a .png (grayscale, resized to 64x64) or a .npy/.pt batch."""
    if path.suffix.lower() in (".png", ".jpg", ".jpeg"):
        from PIL import Image

        if not path.is_file():
            raise FileNotFoundError(f"`--input` file not found: {path}")
        img = Image.open(path).convert("L").resize((64, 64), Image.Resampling.BILINEAR)
        arr = np.asarray(img, dtype=np.float32) / 127.5 - 1.0
        return torch.from_numpy(arr)[None, None]
    from cfx.data.io import load_images

    return load_images(path)


def builtin_sources(n: int, seed: int, target: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``n`` test slices of the class opposite to ``target`` (and their lesion masks)."""
    from cfx.data.brain import make_dataset

    data = make_dataset(max(4 * n, 16), seed=seed)
    pick = torch.nonzero(data.labels != target).flatten()[:n]
    return data.images[pick], data.masks[pick]


def run_trajectory(args: argparse.Namespace) -> int:
    from cfx.metrics.trajectory import summarise
    from cfx.trajectory import GradientAscent, LocalisedAscent, MonotonePath
    from cfx.viz import probability_curves, trajectory_gif, trajectory_strip
    from cfx.zoo import load_classifier, load_generator

    target = parse_target(args.target)
    if args.input is not None:
        x, masks = load_input(args.input), None
    else:
        if args.n <= 0:
            raise ValueError(f"`--n` must be a positive int, got {args.n}")
        x, masks = builtin_sources(args.n, args.seed, target)
    generator = load_generator(args.generator)
    classifier = load_classifier(args.classifier)
    oracle = None if args.oracle == "none" else load_classifier(args.oracle)
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
    trajectory_strip(
        result.frames, result.probs, out / "strips.png", oracle_probs=result.oracle_probs
    )
    for i in range(len(result)):
        trajectory_gif(result.frames[i], out / f"sequence_{i:03d}.gif")
    probability_curves(
        result.probs, result.levels, out / "probabilities.png", oracle_probs=result.oracle_probs
    )
    arrays: dict[str, Any] = {
        "frames": result.frames.numpy(),
        "probs": result.probs.numpy(),
        "latents": result.latents.numpy(),
        "source": result.source.numpy(),
    }
    if result.edit_masks is not None:
        arrays["edit_masks"] = result.edit_masks.numpy()
    np.savez_compressed(out / "result.npz", **arrays)
    summary = summarise(
        result.probs,
        result.levels,
        result.frames,
        result.source,
        oracle_probs=result.oracle_probs,
        masks=masks if target == 0 else None,
    )
    summary |= {
        "method": args.method + ("+localise" if args.localise else ""),
        "target": target,
        "steps": args.steps,
        "seconds": result.seconds,
        "inversion_seconds": result.inversion_seconds,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    return 0
