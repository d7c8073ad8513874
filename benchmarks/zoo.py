"""Measure every zoo model: accuracy, Dice, realism, inversion quality, size and load time.

    python benchmarks/zoo.py [--out benchmarks/results/zoo.json] [--n-test 2000] [--n-invert 256]

Data: fresh test seeds never used in training (brain test seed 2; a second disjoint real set,
seed 3, for the real-vs-real floor). Writes a JSON file and prints Markdown tables; the model
cards and BENCHMARKS.md quote these numbers.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from _provenance import ROOT, provenance

from cfx.calls import in_chunks
from cfx.data.brain import make_dataset
from cfx.inversion import invert
from cfx.metrics import frechet_distance, ssim
from cfx.metrics import group_accuracies as metrics_groups
from cfx.zoo import ZOO, load_classifier, load_generator, model_folder
from cfx.zoo.pretrained import sha256

TEST_SEED, FLOOR_SEED = 2, 3


@torch.no_grad()
def _batched(fn, x: torch.Tensor) -> torch.Tensor:
    return in_chunks(fn, x, size=256)


def accuracy(model, data) -> float:
    pred = _batched(model, data.images).argmax(1)
    return float((pred == data.labels).float().mean())


def group_accuracies(model, data) -> dict[str, float]:
    """Accuracy per label x marker group (the four groups only, as in the cards)."""
    pred = _batched(model, data.images).argmax(1)
    out = metrics_groups(pred, data.labels, data.tags)
    return {k: v for k, v in out.items() if k not in ("accuracy", "worst_group")}


def dice(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    inter = (pred & true).flatten(1).sum(1).float()
    total = pred.flatten(1).sum(1).float() + true.flatten(1).sum(1).float()
    return torch.where(total > 0, 2 * inter / total.clamp_min(1), torch.ones_like(total))


def blur3(x: torch.Tensor) -> torch.Tensor:
    """3x3 binomial blur ([1, 2, 1] x [1, 2, 1] / 16), replicate padding."""
    k = torch.tensor([1.0, 2.0, 1.0])
    k = (k[:, None] * k[None, :] / 16).to(x)[None, None].expand(x.shape[1], 1, 3, 3)
    return torch.nn.functional.conv2d(
        torch.nn.functional.pad(x, (1, 1, 1, 1), mode="replicate"), k, groups=x.shape[1]
    )


def realism_context(gen, oracle, f_real, other_real, n: int, g) -> dict[str, float]:
    """What a Fréchet ratio means in brain-oracle's features: the same distance for images
    that are not G's prior samples, each against the same real set (``f_real``).

    * real slices of a second set after a 3x3 binomial blur (how much mild smoothing costs);
    * the encoder's reconstructions ``G(E(x))`` of that set (the decoder's detail, with the
      latent distribution taken out of the question);
    * samples of the aggregate posterior ``z ~ q(z | x_i)`` for ``n`` of the generator's own
      training slices (data seed 100): what a perfect density over the latents would give.
    """
    train = make_dataset(n, seed=100, tagged=True, tag_correlation=0.5)
    posteriors = [gen.posterior(b) for b in train.images.split(256)]
    mu = torch.cat([m for m, _ in posteriors])  # (n, d)
    logvar = torch.cat([lv for _, lv in posteriors])
    z_agg = mu + torch.randn(mu.shape, generator=g) * (0.5 * logvar).exp()
    agg = _batched(gen.decode, z_agg.detach())
    rec = _batched(lambda x: gen.decode(gen.encode(x)), other_real)
    out = {
        "frechet_real_blurred_3x3": blur3(other_real),
        "frechet_reconstructions": rec,
        "frechet_aggregate_posterior_samples": agg,
    }
    res = {k: frechet_distance(f_real, _batched(oracle.features, v)) for k, v in out.items()}
    res["oracle_tumour_share_aggregate_posterior"] = float(
        (_batched(oracle, agg).argmax(1) == 1).float().mean()
    )
    return res


def size_and_load(name: str) -> dict[str, float | str]:
    folder = model_folder(name)
    weights = folder / "model.safetensors"
    t0 = time.perf_counter()
    (load_generator if ZOO[name].kind == "generators" else load_classifier)(name)
    return {
        "size_mb": weights.stat().st_size / 1e6,
        "load_seconds": time.perf_counter() - t0,
        "sha256": sha256(weights),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/zoo.json"))
    parser.add_argument("--n-test", type=int, default=2000)
    parser.add_argument("--n-invert", type=int, default=256)
    parser.add_argument("--invert-steps", type=int, default=300)
    parser.add_argument("--skip-generator", action="store_true", help="classifiers only")
    parser.add_argument(
        "--samples",
        type=Path,
        default=ROOT / "generators" / "brain-gan" / "samples.png",
        help="where the grid of 64 generator samples goes (default: the model card's figure)",
    )
    args = parser.parse_args()
    results: dict[str, dict] = {}
    if args.out.is_file():  # keep earlier measurements of models not re-measured now
        results = json.loads(args.out.read_text())

    plain = make_dataset(args.n_test, seed=TEST_SEED)
    indep = make_dataset(args.n_test, seed=TEST_SEED, tagged=True, tag_correlation=0.5)
    floor_set = make_dataset(args.n_test, seed=FLOOR_SEED, tagged=True, tag_correlation=0.5)

    for name in ("brain-cnn", "brain-oracle"):
        m = load_classifier(name)
        results[name] = {
            "test_accuracy": accuracy(m, plain),
            "test_accuracy_tagged_independent": accuracy(m, indep),
        }
    m = load_classifier("brain-cnn-tagged")
    groups = group_accuracies(m, indep)
    results["brain-cnn-tagged"] = {
        "test_accuracy_tagged_independent": accuracy(m, indep),
        "test_accuracy_untagged": accuracy(m, plain),
        "groups": groups,
        "worst_group_accuracy": min(groups.values()),
        "worst_group_shortcut_groups": min(groups["tumour_notag"], groups["healthy_tag"]),
    }
    seg = load_classifier("brain-oracle-seg")
    pred = _batched(seg, indep.images) > 0
    tum = indep.labels == 1
    d = dice(pred[tum], indep.masks[tum])
    results["brain-oracle-seg"] = {
        "dice_tumour_mean": float(d.mean()),
        "dice_tumour_median": float(d.median()),
        "false_positive_rate_healthy": float(pred[~tum].flatten(1).any(1).float().mean()),
    }

    if args.skip_generator:  # keep the generator's last measured figures
        if args.out.is_file():
            previous = json.loads(args.out.read_text())
            results.update({k: v for k, v in previous.items() if k not in results})
        _finish(results, args.out, [n for n in ZOO if ZOO[n].kind == "classifiers"])
        return

    # --- generator realism in oracle features, next to the real-vs-real floor ---------------
    oracle = load_classifier("brain-oracle")
    gen = load_generator("brain-gan")
    g = torch.Generator().manual_seed(0)
    z = torch.randn(args.n_test, *gen.latent_shape, generator=g)
    samples = _batched(gen.decode, z)
    f_real = _batched(oracle.features, indep.images)
    f_floor = _batched(oracle.features, floor_set.images)
    f_fake = _batched(oracle.features, samples)
    fd = frechet_distance(f_real, f_fake)
    floor = frechet_distance(f_real, f_floor)
    results["brain-gan"] = {
        "frechet_oracle_features": fd,
        "frechet_floor_real_vs_real": floor,
        "frechet_ratio_to_floor": fd / floor,
        "oracle_tumour_share_samples": float(
            (_batched(oracle, samples).argmax(1) == 1).float().mean()
        ),
        "oracle_tumour_share_real": float(
            (_batched(oracle, indep.images).argmax(1) == 1).float().mean()
        ),
    }
    results["brain-gan"]["realism_context"] = realism_context(
        gen, oracle, f_real, floor_set.images, args.n_test, g
    )
    from cfx.viz import image_grid

    image_grid(samples[:64], args.samples, columns=8, scale=2)

    # --- inversion on held-out real slices ---------------------------------------------------
    held = indep.subset(slice(0, args.n_invert))
    t0 = time.perf_counter()
    enc = invert(gen, held.images, steps=0)
    opt = invert(gen, held.images, steps=args.invert_steps, show_progress=True)
    oracle_true = _batched(oracle, held.images).argmax(1)
    oracle_rec = _batched(oracle, opt.reconstructions).argmax(1)
    seg_true = _batched(seg, opt.reconstructions) > 0
    tum = held.labels == 1
    results["brain-gan"]["inversion"] = {
        "n": args.n_invert,
        "steps": args.invert_steps,
        "perceptual": opt.perceptual,
        "psnr_encoder_mean": float(enc.psnr.mean()),
        "psnr_optimised_mean": float(opt.psnr.mean()),
        "psnr_optimised_median": float(opt.psnr.median()),
        "ssim_encoder_mean": float(ssim(enc.reconstructions, held.images).mean()),
        "ssim_optimised_mean": float(ssim(opt.reconstructions, held.images).mean()),
        "oracle_label_kept": float((oracle_true == oracle_rec).float().mean()),
        "true_label_kept_by_oracle": float((oracle_rec == held.labels).float().mean()),
        "lesion_dice_segmenter_vs_true_mask": float(dice(seg_true[tum], held.masks[tum]).mean()),
        "seconds_per_image": (time.perf_counter() - t0) / args.n_invert,
    }

    _finish(results, args.out, list(ZOO))


def _finish(results: dict, out: Path, names: list[str]) -> None:
    for name in names:
        results.setdefault(name, {}).update(size_and_load(name))
    out.parent.mkdir(parents=True, exist_ok=True)
    results["provenance"] = provenance()  # of this run; models it skipped keep older figures
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
