"""Does a consensus of end frames from invisibly jittered starts agree with the oracle more often?

    python benchmarks/consensus_probe.py [--seeds 1 4 6] [--draws 3] [--jitter 0.01]

Validation slices only (the first 128 tumour slices of each seed, walked to healthy by
localised Option 2 with its defaults). Session 24 found that a start jittered by 60 dB moves
which end frames the oracle rejects (``trajectory_validation.py --jitter``). Here each path
is run from ``--draws`` starts: the inverted latents, then jittered ones (noise sd ``--jitter``
times the latents' sd, seeds 0, 1, ...). Per seed it prints oracle agreement:

* of each draw alone;
* of the medoid end frame per row: the draw whose change from the reconstruction is closest
  (summed L2) to the other draws' changes, a choice brain-cnn and the oracle play no part in;
* of the best draw per row (the oracle picks; a ceiling no method has).

The cost would be ``--draws`` times the time per path, so this asks whether the gain could
be worth it, not whether it meets the time bar.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import trajectory_validation as validation  # the sibling script: models for validation

from cfx.trajectory import MonotonePath


def medoid(changes: torch.Tensor) -> torch.Tensor:
    """``(K, B, ...)`` changes -> ``(B,)`` index of the draw closest (summed L2) to the rest."""
    flat = changes.flatten(2)  # (K, B, D)
    dist = (flat[:, None] - flat[None]).norm(dim=-1)  # (K, K, B)
    return dist.sum(1).argmin(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 4, 6])
    parser.add_argument("--draws", type=int, default=3)
    parser.add_argument("--jitter", type=float, default=0.01)
    parser.add_argument("--n", type=int, default=128)
    parser.add_argument("--cache", type=Path, default=Path("runs/validation"))
    args = parser.parse_args()
    gen, clf, oracle = validation.validation_models(args.seeds)
    explainer = MonotonePath(gen, clf, oracle=oracle, localise=True)
    for seed in args.seeds:
        data, pick, z0 = validation.tumour_sources(args, seed, gen)
        x = data.images[pick]
        ends, accepted = [], []
        for k in range(args.draws):  # draw k > 0: as trajectory_validation's --jitter-seed k - 1
            z = z0 if k == 0 else validation.jittered(z0, args.jitter, k - 1)
            rs = [
                explainer.explain(x[i : i + 32], 0, latents=z[i : i + 32])
                for i in range(0, args.n, 32)
            ]
            start = torch.cat([r.frames[:, 0] for r in rs])
            ends.append(torch.cat([r.frames[:, -1] for r in rs]) - start)
            accepted.append(torch.cat([r.oracle_probs[:, -1] for r in rs]) >= 0.5)
            print(f"seed {seed} draw {k}: agreement {accepted[-1].float().mean():.3f}", flush=True)
        ok = torch.stack(accepted)  # (K, B)
        chosen = medoid(torch.stack(ends))
        rows = torch.arange(args.n)
        print(
            f"seed {seed}: draws {[round(float(a.float().mean()), 3) for a in ok]} "
            f"(mean {ok.float().mean():.3f}); medoid {ok[chosen, rows].float().mean():.3f}; "
            f"best per row (oracle picks) {ok.any(0).float().mean():.3f}; "
            f"rejected in every draw {torch.nonzero(~ok.any(0)).flatten().tolist()}",
            flush=True,
        )


if __name__ == "__main__":
    main()
