"""``cfx train generator|classifier``: train zoo architectures on built-in or user data."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from cfx.data.io import load_images


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a generator or classifier (resumable)")
    tsub = p.add_subparsers(dest="train_command", required=True, metavar="WHAT")

    g = tsub.add_parser("generator", help="train a BrainGAN (VAE-GAN) generator + encoder")
    _data_args(g)
    g.add_argument("--steps", type=int, default=8000)
    g.add_argument("--batch-size", type=int, default=64)
    g.add_argument("--latent-dim", type=int, default=128)
    g.add_argument("--width", type=int, default=32)
    g.add_argument("--seed", type=int, default=0, help="seed of initialisation and batches")
    g.add_argument("--out", type=Path, required=True, help="run folder (checkpoint, model)")
    g.set_defaults(run=run_generator)


def _data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default="brain", help="'brain' (built-in) or a .npy/.pt image file")
    p.add_argument("--labels", type=Path, help="labels file (.npy/.pt) for user image data")
    p.add_argument("--n", type=int, default=60000, help="brain: number of slices to render")
    p.add_argument("--data-seed", type=int, default=100, help="brain: seed of the rendered set")
    p.add_argument("--tagged", action="store_true", help="brain: add scanner markers")
    p.add_argument("--tag-correlation", type=float, default=0.5, help="brain: P(tag == label)")


def _images(args: argparse.Namespace) -> torch.Tensor:
    if args.data == "brain":
        from cfx.data.brain import make_dataset

        return make_dataset(
            args.n,
            seed=args.data_seed,
            tagged=args.tagged,
            tag_correlation=args.tag_correlation,
            show_progress=True,
        ).images
    return load_images(args.data)


def run_generator(args: argparse.Namespace) -> int:
    from cfx.models.brain_gan import BrainGANConfig
    from cfx.training.generator import GeneratorTrainingConfig, train_generator

    images = _images(args)
    config = GeneratorTrainingConfig(
        steps=args.steps,
        batch_size=args.batch_size,
        seed=args.seed,
        model=BrainGANConfig(
            channels=int(images.shape[1]), latent_dim=args.latent_dim, width=args.width
        ),
    )
    start = time.perf_counter()
    model, report = train_generator(images, args.out, config)
    folder = model.save_pretrained(Path(args.out) / "model")
    summary = {
        "steps": report.steps,
        "train_seconds_total": report.seconds,
        "this_run_seconds": time.perf_counter() - start,
        "last": report.history[-1] if report.history else {},
    }
    (Path(args.out) / "training.json").write_text(
        json.dumps({"summary": summary, "history": list(report.history)}, indent=1)
    )
    print(folder)
    return 0
