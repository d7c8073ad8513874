"""Why the trajectories' realism misses its bar: the probe behind BENCHMARKS.md (session 8).

    python benchmarks/realism_probe.py [--seed 1] [--n 128] [--cache runs/validation]
    python benchmarks/realism_probe.py --seed 5 --floor-only

Validation slices only (brain seed 1 by default; never the test split 2). Prints:

0. **The floor's own spread**: real-vs-real Fréchet between disjoint sets of ``n`` slices of
   one class (``--floor-only`` stops here; ``--seed 5 --floor-only`` shows where the trajectory
   benchmark's floor, set 0 vs set 1 of seed 5, sits among other pairs).
1. **Metric sensitivity**: Fréchet distance (brain-oracle features) between ``n`` real healthy
   slices and ``n`` other real healthy slices of which ``k`` are replaced by real tumour slices;
   no generator involved.
2. **Tumour -> healthy**: localised Option 2 (defaults) from the cached 100-step inversions
   (``runs/validation``, shared with ``trajectory_validation.py``); realism of the final frames
   against real healthy slices, for all frames and for the subsets the oracle accepts with
   growing confidence (not a method: it shows where the distance comes from), next to the
   floor at the same sizes; the full-set figure against three disjoint reference sets.
3. **Are the doubted frames adversarial?** brain-cnn's p(healthy) on the end frames the oracle
   doubts (p < 0.9) under flips, shifts, blur and noise, against the frames it accepts.
4. **Healthy -> tumour**: realism against all real tumour slices and against real tumour slices
   matched one to one on segmented lesion area.
5. **Per-class inversions**: 100-step inversions of tumour / healthy slices against real slices
   of their own class.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from trajectory_validation import cached_latents  # the sibling script: the same latent cache

from cfx.calls import in_chunks
from cfx.data.brain import make_dataset
from cfx.filters import gaussian_blur
from cfx.metrics import frechet_distance
from cfx.metrics.trajectory import lesion_area
from cfx.trajectory import MonotonePath
from cfx.zoo import load_classifier, load_generator


def _end_frames(explainer, x, z0, target) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    rs = [
        explainer.explain(x[i : i + 32], target, latents=z0[i : i + 32])
        for i in range(0, len(x), 32)
    ]
    frames = torch.cat([r.frames for r in rs])
    return frames[:, 0], frames[:, -1], torch.cat([r.oracle_probs for r in rs])[:, -1]


@torch.no_grad()
def _apply(fn, x: torch.Tensor) -> torch.Tensor:
    return in_chunks(fn, x)


def _doubted(x, end, doubted, p_clf, p_oracle) -> None:
    """Item 3: the doubted end frames' sources, and brain-cnn on the frames under perturbation."""
    src = p_clf(x[doubted])[:, 1]
    src_o = torch.softmax(p_oracle(x[doubted]), 1)[:, 1]
    print(
        f"   their sources: brain-cnn p(tumour) min {src.min():.3f}, oracle min {src_o.min():.3f}"
    )
    noise = torch.randn(end.shape, generator=torch.Generator().manual_seed(0))
    views = {
        "identity": end,
        "horizontal flip": end.flip(-1),
        "vertical flip": end.flip(-2),
        "shift 2 px": torch.roll(end, (2, 2), (-2, -1)),
        "shift 3 px": torch.roll(end, (-3, 1), (-2, -1)),
        "blur 1 px": gaussian_blur(end, 1.0),
        "blur 2 px": gaussian_blur(end, 2.0),
        "noise sd 0.05": end + 0.05 * noise,
    }
    for name, v in views.items():
        p = p_clf(v)[:, 0]
        print(
            f"   {name}: doubted ({int(doubted.sum())}) median {p[doubted].median():.3f} "
            f"min {p[doubted].min():.3f}, below 0.5: {int((p[doubted] < 0.5).sum())}; "
            f"accepted median {p[~doubted].median():.3f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=1, help="brain seed (1 = validation)")
    parser.add_argument("--n", type=int, default=128)
    parser.add_argument("--cache", type=Path, default=Path("runs/validation"))
    parser.add_argument(
        "--floor-only",
        action="store_true",
        help="print item 0 only (seed 5 gives the trajectory benchmark's floor as set 0 vs 1)",
    )
    args = parser.parse_args()
    if args.seed == 2:
        raise SystemExit("seed 2 is the test split: probe on validation (1) or another seed")
    n = args.n
    oracle = load_classifier("brain-oracle")  # the floor needs only the oracle's features
    data = make_dataset(8 * n, seed=args.seed)
    healthy, tumour = data.images[data.labels == 0], data.images[data.labels == 1]

    def feats(x: torch.Tensor) -> torch.Tensor:
        return _apply(oracle.features, x)

    def p_clf(x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(_apply(clf, x), 1)

    # features of four disjoint sets of n real slices per class, used by every item below
    real = {
        c: [feats(images[j * n : (j + 1) * n]) for j in range(4)]
        for c, images in ((0, healthy), (1, tumour))
    }
    f_h, f_other = real[0][0], real[0][1]  # healthy[:n], healthy[n:2n]
    f_t, f_t2 = real[1][0], real[1][1]  # tumour[:n], tumour[n:2n]

    print(f"0. the floor itself: real vs real, disjoint sets of {n} of one class")
    for c, name in ((0, "healthy"), (1, "tumour")):
        pairs = [frechet_distance(real[c][0], real[c][j]) for j in (1, 2, 3)]
        print(f"   {name}: set 0 vs sets 1-3 " + ", ".join(f"{v:.3f}" for v in pairs))
    if args.floor_only:
        return
    gen, clf = load_generator("brain-gan"), load_classifier("brain-cnn")
    seg = load_classifier("brain-oracle-seg")

    print("1. one wrong-class frame: real healthy vs real healthy with k tumour slices")
    f_tum = f_t[:16]
    row = [
        f"k={k} {frechet_distance(f_h, torch.cat([f_other[: n - k], f_tum[:k]])):.3f}"
        for k in (0, 1, 2, 4, 6, 13)
    ]
    print("   " + "  ".join(row), flush=True)

    print("2. tumour -> healthy, localised Option 2")
    x = tumour[:n]
    z0 = cached_latents(gen, x, args.cache / f"z0_seed{args.seed}_n{n}.safetensors")
    explainer = MonotonePath(gen, clf, oracle=oracle, localise=True)
    start, end, o_end = _end_frames(explainer, x, z0, 0)
    f_end = feats(end)
    for thr in (None, 0.5, 0.9, 0.97):
        keep = torch.ones(n, dtype=torch.bool) if thr is None else o_end > thr
        k = int(keep.sum())
        floor = frechet_distance(f_h, f_other[:k])
        fd = frechet_distance(f_h, f_end[keep])
        label = "all" if thr is None else f"oracle p(healthy) > {thr}"
        print(f"   {label}: n={k} Fréchet {fd:.3f} floor {floor:.3f} ({fd / floor:.1f}x)")
    refs = [frechet_distance(real[0][j], f_end) for j in range(3)]
    print("   all frames vs three disjoint reference sets: " + ", ".join(f"{r:.3f}" for r in refs))

    print("3. brain-cnn p(healthy) on doubted (oracle < 0.9) vs accepted end frames")
    doubted = o_end < 0.9
    if bool(doubted.any()) and not bool(doubted.all()):
        _doubted(x, end, doubted, p_clf, lambda v: _apply(oracle, v))
    else:
        print("   no split: the oracle doubts none or all of the end frames")

    print("4. healthy -> tumour, localised Option 2")
    xh = healthy[:n]
    zh = cached_latents(gen, xh, args.cache / f"z0_seed{args.seed}_n{n}_healthy.safetensors")
    start_h, end_h, o_h = _end_frames(explainer, xh, zh, 1)
    f_end_h = feats(end_h)
    floor_t = frechet_distance(f_t, f_t2)
    print(
        f"   oracle agrees {float((o_h > 0.5).float().mean()):.3f}; Fréchet vs real tumour "
        f"{frechet_distance(f_t, f_end_h):.3f} (floor {floor_t:.3f})"
    )
    with torch.no_grad():
        area_end = lesion_area(seg, end_h[:, None])[:, 0].float()
        area_real = lesion_area(seg, tumour[:, None])[:, 0].float()
    picks = []
    for _ in range(2):  # two disjoint area-matched real sets: reference and its floor
        used = torch.zeros(len(tumour), dtype=torch.bool)
        if picks:
            used[picks[0]] = True
        pick = []
        for a in area_end:
            gap = (area_real - a).abs().masked_fill(used, float("inf"))
            j = int(gap.argmin())
            used[j] = True
            pick.append(j)
        picks.append(torch.tensor(pick))
    f_m, f_m2 = feats(tumour[picks[0]]), feats(tumour[picks[1]])
    print(
        f"   lesion area (segmenter) median: end frames {area_end.median():.0f} px, matched "
        f"real {area_real[picks[0]].median():.0f} px; Fréchet vs area-matched real "
        f"{frechet_distance(f_m, f_end_h):.3f} (matched floor {frechet_distance(f_m, f_m2):.3f})"
    )
    p_real = p_clf(torch.cat([healthy[:n], tumour[:n]]))
    print(
        f"   brain-cnn median confidence on real slices: healthy "
        f"{p_real[:n, 0].median():.4f}, tumour {p_real[n:, 1].median():.5f}"
    )

    print("5. 100-step inversions against other real slices of their own class")
    fd_t, fd_h = frechet_distance(f_t2, feats(start)), frechet_distance(f_other, feats(start_h))
    floor_h = frechet_distance(f_other, f_h)
    print(f"   tumour {fd_t:.3f} (floor {floor_t:.3f}); healthy {fd_h:.3f} (floor {floor_h:.3f})")


if __name__ == "__main__":
    main()
