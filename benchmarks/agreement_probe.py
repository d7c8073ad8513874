"""Why does the oracle reject some localised end frames, and can brain-cnn alone tell which?

    python benchmarks/agreement_probe.py [--seeds 1 4 6] [--size-up 1,2]

Validation slices only (brain seeds 1 / 4 / 6; never a test split), the cached 100-step
inversions of ``trajectory_validation.py`` (``runs/validation``). For each seed, localised
Option 2 with its defaults walks the first ``--n`` tumour slices to healthy, then:

* **push**: the end latent ascends ``--extra`` more iterations inside its region (same
  composite, step ``eta``); every 5 iterations, brain-cnn's median target probability, the
  oracle's agreement and the localisation. Does walking past the margin help the oracle?
* **signals**: how well brain-cnn's healthy probability under a perturbation of the end frame
  (horizontal flip, 2-px shift, Gaussian blur, Gaussian noise averaged over 16 draws,
  re-encoding through the generator ``G(E(.))``) ranks the frames the oracle rejects below
  those it accepts (AUC; 0.5 is chance), per seed and pooled. A signal well above 0.5 could
  steer the search without the oracle.
* **ceiling**: oracle agreement on the generator's reconstructions of real healthy slices of
  the same split that brain-cnn calls healthy with at least the margin (0.99): what the
  oracle says about frames of this generator that are healthy for both reasons.

``--size-up K,..``: localised Option 1 taking the region ``K`` candidates larger than the
smallest that flips (where one exists and still flips), scored by ``trajectory_validation.py``'s
variant loop next to ``K = 0`` (the default search).
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

import torch
import trajectory_validation as validation  # the sibling script: its cache and variant loop

from cfx.calls import class_logits, frozen, target_margin, target_prob
from cfx.data.brain import make_dataset
from cfx.filters import gaussian_blur
from cfx.inversion import invert
from cfx.metrics.trajectory import localisation
from cfx.trajectory import LocalisedAscent, MonotonePath
from cfx.trajectory.localised import region_masks
from cfx.zoo import load_classifier


class SizedUp(LocalisedAscent):
    """Localised ascent that keeps the region ``size_up`` candidates above the smallest that
    flips, when that one flips too (else the smallest)."""

    def __init__(self, *args, size_up: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.size_up = size_up
        self._change = torch.empty(0)

    def change_map(self, path1, start, target):
        self._change = super().change_map(path1, start, target)
        return self._change

    def choose_regions(self, z0, start, target, background):
        mask, path, probs = super().choose_regions(z0, start, target, background)
        if self.size_up == 0:
            return mask, path, probs
        fractions = sorted(float(f) for f in self.mask_fractions if f < 1.0)
        candidates = [region_masks(self._change, f, soften=self.soften) for f in fractions]
        rows, larger = [], []
        for i in range(z0.shape[0]):
            chosen = [j for j, c in enumerate(candidates) if torch.allclose(c[i], mask[i])]
            if chosen and chosen[0] + self.size_up < len(fractions):
                rows.append(i)
                larger.append(candidates[chosen[0] + self.size_up][i])
        if not rows:
            return mask, path, probs
        m = torch.stack(larger)
        path2, p2 = self.ascend_masked(z0[rows], background[rows], m, target[rows])
        paths, prob_rows = list(path.unbind(0)), list(probs.unbind(0))
        for r, i in enumerate(rows):
            if bool(p2[r, -1] >= self.margin):
                mask[i], paths[i], prob_rows[i] = m[r], path2[r].flatten(1), p2[r]
        k = max(len(p) for p in prob_rows)
        pad = lambda v: torch.cat([v, v[-1:].expand(k - len(v), *v.shape[1:])])  # noqa: E731
        return mask, torch.stack([pad(z) for z in paths]), torch.stack([pad(p) for p in prob_rows])


def auc_low(score: torch.Tensor, rejected: torch.Tensor) -> float:
    """Share of (rejected, accepted) pairs in which the rejected frame scores lower."""
    low = score[rejected][:, None] < score[~rejected][None, :]
    return float(low.float().mean())


def healthy_prob(clf, images: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return torch.softmax(class_logits(clf, images), 1)[:, 0]


def noised(clf, sd: float, noise: torch.Generator):
    """A copy of ``clf`` with Gaussian noise of ``sd`` times each weight tensor's sd added."""
    out = copy.deepcopy(clf)
    with torch.no_grad():
        for p in out.parameters():
            if p.numel() > 1:
                p.add_(sd * p.std() * torch.randn(p.shape, generator=noise))
    return out


def probe_seed(args, seed: int, gen, clf, oracle) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    ends = validation.localised_ends(args, seed, gen, clf, oracle)
    tagged = load_classifier("brain-cnn-tagged")
    region, z0, z_end, masks = ends["region"], ends["z0"], ends["z_end"], ends["masks"]
    rejected = ends["oracle_end"] < 0.5
    print(
        f"seed {seed}: oracle agreement {1 - rejected.float().mean():.3f}, rejected "
        f"{torch.nonzero(rejected).flatten().tolist()}",
        flush=True,
    )

    # push: ascend the end latent further inside its region, with the region search's step
    eta = MonotonePath(gen, clf, localise=True).warm_start_eta
    target = torch.zeros(args.n, dtype=torch.long)
    with frozen(gen, clf, oracle):
        with torch.no_grad():
            background = gen.decode(z0)
        z = z_end
        for it in range(args.extra + 1):
            zi = z.clone().requires_grad_(True)
            image = region * gen.decode(zi) + (1 - region) * background
            logits = class_logits(clf, image)
            if it % 5 == 0:
                p = target_prob(logits.detach(), target)
                agree = healthy_prob(oracle, image.detach()) >= 0.5
                loc = localisation(ends["start"], image.detach(), masks).nanmean()
                print(
                    f"  push +{it:2d}: brain-cnn median {p.median():.4f}, oracle agreement "
                    f"{agree.float().mean():.3f}, localisation {loc:.3f}",
                    flush=True,
                )
            (grad,) = torch.autograd.grad(target_margin(logits, target).sum(), zi)
            norm = grad.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *[1] * (z.ndim - 1))
            z = (z + eta * grad / norm).detach()

    # signals: brain-cnn on perturbed end frames
    end = ends["end"]
    noise = torch.Generator().manual_seed(seed)
    with frozen(gen), torch.no_grad():
        cycled = gen.decode(gen.encode(end))
    signals = {
        "end frame": healthy_prob(clf, end),
        "flipped": healthy_prob(clf, end.flip(-1)),
        "shifted 2 px": healthy_prob(clf, torch.roll(end, (2, 2), (-2, -1))),
        "blur 1 px": healthy_prob(clf, gaussian_blur(end, 1.0)),
        "blur 2 px": healthy_prob(clf, gaussian_blur(end, 2.0)),
        "noise 0.1 (16)": torch.stack(
            [
                healthy_prob(clf, end + 0.1 * torch.randn(end.shape, generator=noise))
                for _ in range(16)
            ]
        ).mean(0),
        "G(E(end))": healthy_prob(clf, cycled),
        # brain-cnn with its weights jittered (sd 0.05 of each tensor's sd), 16 draws: a
        # decision that rests on a sharp, fragile direction might not survive it
        "weights noised 0.05 (16)": torch.stack(
            [healthy_prob(noised(clf, 0.05, noise), end) for _ in range(16)]
        ).mean(0),
        # another classifier of the zoo, trained on the tagged set (not the oracle)
        "brain-cnn-tagged": healthy_prob(tagged, end),
    }
    for name, score in signals.items():
        print(f"  signal {name}: AUC {auc_low(score, rejected):.2f}", flush=True)

    if args.no_ceiling:
        return rejected, signals
    # ceiling: the oracle on reconstructions of real healthy slices brain-cnn is sure of
    data = make_dataset(8 * args.n, seed=seed)
    healthy = data.images[data.labels == 0][: args.n]
    latents = torch.cat(
        [invert(gen, healthy[i : i + 32], steps=100).latents for i in range(0, args.n, 32)]
    )
    with torch.no_grad():
        rec = gen.decode(latents)
    sure = healthy_prob(clf, rec) >= 0.99
    agree = float((healthy_prob(oracle, rec[sure]) >= 0.5).float().mean())
    print(
        f"  ceiling: oracle calls {agree:.3f} healthy of the {int(sure.sum())} reconstructions"
        " of healthy slices brain-cnn puts at >= 0.99",
        flush=True,
    )
    return rejected, signals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 4, 6])
    parser.add_argument("--n", type=int, default=128)
    parser.add_argument("--extra", type=int, default=30, help="push iterations")
    parser.add_argument("--size-up", default="", help="comma-separated K (e.g. 1,2)")
    parser.add_argument("--cache", type=Path, default=Path("runs/validation"))
    parser.add_argument("--no-ceiling", action="store_true", help="skip the ceiling section")
    args = parser.parse_args()
    gen, clf, oracle = validation.validation_models(args.seeds)
    pooled: list[tuple[torch.Tensor, dict[str, torch.Tensor]]] = []
    for seed in args.seeds:
        pooled.append(probe_seed(args, seed, gen, clf, oracle))
    rejected = torch.cat([r for r, _ in pooled])
    print(f"pooled: {int(rejected.sum())} rejected of {len(rejected)}")
    for name in pooled[0][1]:
        score = torch.cat([s[name] for _, s in pooled])
        print(f"  signal {name}: pooled AUC {auc_low(score, rejected):.2f}", flush=True)
    if args.size_up:
        ks = [0, *(int(k) for k in args.size_up.split(","))]
        for k in ks:
            validation.KINDS[f"up{k}"] = lambda g, f, o, kw, k=k: SizedUp(
                g, f, oracle=o, size_up=k, **kw
            )
        for seed in args.seeds:
            run = argparse.Namespace(
                seed=seed,
                n=args.n,
                target=0,
                cache=args.cache,
                variants=";".join(f"up{k}" for k in ks),
            )
            validation.variants(run, gen, clf, oracle)


if __name__ == "__main__":
    main()
