"""Compare a candidate generator with the zoo's brain-gan on validation slices (never test).

    python benchmarks/generator_validation.py runs/brain-gan-adv08/model

Realism of what trajectories are made of: the generator's reconstructions of real slices,
class by class. Slices of brain seed 6 are reconstructed (encoder only, up to --n per class; and
with a 100-step inversion, 128 per class) and compared with real slices of the same class from
seed 1 by Fréchet distance in brain-oracle features, next to the real-vs-real floor at the same
sizes (seed 1 vs seed 6). Per class, because the classes lie far apart in these features: on
mixed sets brain-gan's tumour inversions read as "at the floor" (session 7), while per class
they are 3.3x this script's floor and 11x a within-seed floor (benchmarks/realism_probe.py).
Floors at n = 128 are noisy (0.02-0.49 across disjoint real sets, realism_probe.py item 0):
compare generators with each other here, not with the floor. Also prints PSNR and the share of
encoder reconstructions the oracle puts in the source's (true) class. Seeds 1 and 6 are the
validation splits of the trajectory probes; the test split (2) and the zoo's realism sets (3, 5)
stay untouched, so a candidate can be chosen here and then measured by benchmarks/zoo.py.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from cfx.calls import in_chunks
from cfx.data.brain import make_dataset
from cfx.inversion import invert
from cfx.metrics import frechet_distance
from cfx.metrics.image import psnr
from cfx.models.brain_gan import BrainGAN
from cfx.zoo import load_classifier, load_generator


@torch.no_grad()
def _chunks(fn, x: torch.Tensor) -> torch.Tensor:
    return in_chunks(fn, x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("candidate", type=Path, help="a BrainGAN folder (save_pretrained)")
    parser.add_argument("--n", type=int, default=500, help="encoder reconstructions per class")
    args = parser.parse_args()
    oracle = load_classifier("brain-oracle")
    # 256 more slices than the n per class need: kept so the BENCHMARKS.md figures reproduce
    held, pool = make_dataset(2 * args.n + 256, seed=6), make_dataset(2 * args.n + 256, seed=1)
    gens = {"brain-gan (zoo)": load_generator("brain-gan")}
    gens[str(args.candidate)] = BrainGAN.from_pretrained(args.candidate).eval()
    for c, name in ((0, "healthy"), (1, "tumour")):
        src = held.images[held.labels == c][: args.n]
        n = src.shape[0]
        f_real = _chunks(oracle.features, pool.images[pool.labels == c][:n])
        floor = frechet_distance(f_real, _chunks(oracle.features, src))
        floor128 = frechet_distance(f_real[:128], _chunks(oracle.features, src[:128]))
        print(f"{name}: floor (real vs real) n={n} {floor:.4f}, n=128 {floor128:.4f}", flush=True)
        for label, gen in gens.items():
            rec = _chunks(lambda x, g=gen: g.decode(g.encode(x)), src)
            inv = invert(gen, src[:128], steps=100, show_progress=False)
            fd_enc = frechet_distance(f_real, _chunks(oracle.features, rec))
            fd_inv = frechet_distance(f_real[:128], _chunks(oracle.features, inv.reconstructions))
            kept = (_chunks(oracle, rec).argmax(1) == c).float().mean()
            print(
                f"  {label}: encoder reconstructions Fréchet {fd_enc:.4f} "
                f"({fd_enc / floor:.1f}x floor), PSNR {psnr(rec, src).mean():.2f} dB, "
                f"oracle class kept {kept:.3f}; inverted (100 steps, n=128) Fréchet "
                f"{fd_inv:.4f} ({fd_inv / floor128:.1f}x), PSNR {inv.psnr.mean():.2f} dB",
                flush=True,
            )


if __name__ == "__main__":
    main()
