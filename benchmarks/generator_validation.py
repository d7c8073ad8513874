"""Compare a candidate generator with the zoo's brain-gan on validation slices (never test).

    python benchmarks/generator_validation.py runs/brain-gan-adv08/model

Realism of what trajectories are made of: the generator's reconstructions of real slices.
Slices of brain seed 6 are reconstructed (encoder only, n = --n; and with a 100-step inversion,
n = 128) and compared with real slices of seed 1 by Fréchet distance in brain-oracle features,
next to the real-vs-real floor at the same sizes (seed 1 vs seed 6). Also prints PSNR and the
share of reconstructions whose oracle class matches the source's. Seeds 1 and 6 are the
validation splits of the trajectory probes; the test split (2) and the zoo's realism sets (3, 5)
stay untouched, so a candidate can be chosen here and then measured by benchmarks/zoo.py.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from cfx.data.brain import make_dataset
from cfx.inversion import invert
from cfx.metrics import frechet_distance
from cfx.metrics.image import psnr
from cfx.models.brain_gan import BrainGAN
from cfx.trajectory._common import in_chunks
from cfx.zoo import load_classifier, load_generator


@torch.no_grad()
def _chunks(fn, x: torch.Tensor) -> torch.Tensor:
    return in_chunks(fn, x)


def _matched(pool, labels: torch.Tensor) -> torch.Tensor:
    """Images of ``pool`` with as many slices of each class as ``labels`` has."""
    picks = [
        torch.nonzero(pool.labels == c).flatten()[: int((labels == c).sum())]
        for c in labels.unique()
    ]
    return pool.images[torch.cat(picks)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("candidate", type=Path, help="a BrainGAN folder (save_pretrained)")
    parser.add_argument("--n", type=int, default=1000)
    args = parser.parse_args()
    oracle = load_classifier("brain-oracle")
    held, pool = make_dataset(args.n, seed=6), make_dataset(2 * args.n, seed=1)
    # tumour and healthy slices are ~1,000x the floor apart in these features, so each real
    # reference set has exactly the class counts of the slices it is compared with
    real, real128 = _matched(pool, held.labels), _matched(pool, held.labels[:128])
    f_real, f_real128 = _chunks(oracle.features, real), _chunks(oracle.features, real128)
    floor = frechet_distance(f_real, _chunks(oracle.features, held.images))
    floor128 = frechet_distance(f_real128, _chunks(oracle.features, held.images[:128]))
    print(f"floor (real vs real): n={args.n} {floor:.4f}, n=128 {floor128:.4f}")
    gens = {"brain-gan (zoo)": load_generator("brain-gan")}
    gens[str(args.candidate)] = BrainGAN.from_pretrained(args.candidate).eval()
    oracle_src = _chunks(oracle, held.images).argmax(1)
    for name, gen in gens.items():
        rec = _chunks(lambda x, g=gen: g.decode(g.encode(x)), held.images)
        inv = invert(gen, held.images[:128], steps=100)
        fd_enc = frechet_distance(f_real, _chunks(oracle.features, rec))
        fd_inv = frechet_distance(f_real128, _chunks(oracle.features, inv.reconstructions))
        kept = (_chunks(oracle, rec).argmax(1) == oracle_src).float().mean()
        print(
            f"{name}: encoder reconstructions Fréchet {fd_enc:.4f} ({fd_enc / floor:.0f}x floor), "
            f"PSNR {psnr(rec, held.images).mean():.2f} dB, oracle class kept {kept:.3f}; "
            f"inverted (100 steps, n=128) Fréchet {fd_inv:.4f} ({fd_inv / floor128:.0f}x), "
            f"PSNR {inv.psnr.mean():.2f} dB",
            flush=True,
        )


if __name__ == "__main__":
    main()
