"""Validation probes behind the trajectory defaults (validation split, never the test split).

    python benchmarks/trajectory_validation.py --variants "o2loc;o2loc:blur_check=0.0"
    python benchmarks/trajectory_validation.py --placement   # frame placement error

``--variants``: ``;``-separated explainers, each ``KIND[:kwargs]`` with KIND one of ``o1``,
``o2``, ``o1loc``, ``o2loc``, ``o1judge`` / ``o2judge`` (localised Option 1 / 2 whose regions
a second classifier, ``--judge FOLDER``, must also accept; session 31) and kwargs as
``name=literal`` pairs (``stall=None, margin=0.995``).
Each runs on the first ``--n`` tumour slices of brain seed ``--seed`` (1 = validation) walked to
healthy (``--target 1``: healthy slices walked to tumour), from the same inverted latents
(cached in ``--cache``), and prints the flip rate, the median final target probability,
oracle agreement, localisation (tumour -> healthy only), increasing steps, calibration error,
realism (Fréchet distance of the final frames to real slices of the target class of the same
split in brain-oracle features, printed after the real-vs-real floor), seconds per path, the
slices the oracle rejects, the slices whose reconstruction brain-cnn already puts in the
target class, how many of the other slices the oracle rejects, and the paths with a step
that does not climb.

``--decision-weight W`` inverts the sources with brain-cnn's decision term
(``invert(..., classifier=brain-cnn, classifier_weight=W)``, cached separately) and every run
prints the inversion's PSNR and how many sources and reconstructions brain-cnn puts in the
target.

``--jitter S --jitter-seed K`` adds Gaussian noise (sd ``S`` times the latents' sd, drawn with
seed ``K``) to the inverted latents and prints how far apart the reconstructions are: with a
small ``S`` the starts cannot be told apart, so the spread of the figures over ``K`` is the
noise in them.

``--placement``: how far from its level each frame lands (``|p - t/T|``, max and mean) for
bisection-free linear placement in log-odds and for 1-3 false-position refinements, on
Option 1 paths of 32 slices per direction, with the number of model evaluations.
"""

from __future__ import annotations

import argparse
import ast
import time
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from cfx.calls import class_logits, frozen, target_prob
from cfx.data.brain import make_dataset
from cfx.inversion import invert
from cfx.metrics import frechet_distance
from cfx.metrics.image import psnr
from cfx.metrics.trajectory import increasing_steps, summarise
from cfx.trajectory import GradientAscent, LocalisedAscent, MonotonePath
from cfx.trajectory._common import composite_decoder
from cfx.trajectory.resample import resample_path
from cfx.zoo import load_classifier, load_generator

KINDS = {
    "o1": lambda g, f, o, kw: GradientAscent(g, f, oracle=o, **kw),
    "o2": lambda g, f, o, kw: MonotonePath(g, f, oracle=o, **kw),
    "o1loc": lambda g, f, o, kw: LocalisedAscent(g, f, oracle=o, **kw),
    "o2loc": lambda g, f, o, kw: MonotonePath(g, f, oracle=o, localise=True, **kw),
    "o1judge": lambda g, f, o, kw: JudgedRegions(g, f, oracle=o, **kw),
    "o2judge": lambda g, f, o, kw: JudgedPath(g, f, oracle=o, localise=True, **kw),
}


class JudgedRegions(LocalisedAscent):
    """The region search with a veto (session 31; not adopted): a region counts as flipping
    only when ``judge``, a second classifier, also gives the target at least ``judge_margin``
    on its end frame. The path is still brain-cnn's own ascent; an image no region passes
    falls back to the unmasked path, as without a judge."""

    def __init__(self, *args, judge, judge_margin: float = 0.5, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.judge, self.judge_margin = judge, judge_margin

    def ascend_masked(self, z0, start, mask, target, budget=None, label="region ascent", need=None):
        path, probs = super().ascend_masked(z0, start, mask, target, budget, label, need)
        decode = composite_decoder(self.generator, mask, start)
        rows = torch.arange(z0.shape[0])
        with torch.no_grad():
            p = target_prob(class_logits(self.judge, decode(path[:, -1], rows)), target)
        probs = probs.clone()
        probs[p < self.judge_margin, -1] = 0.0  # vetoed: below the margin, so not chosen
        return path, probs


class JudgedPath(MonotonePath):
    """Localised Option 2 whose region search is :class:`JudgedRegions`."""

    def __init__(self, *args, judge, judge_margin: float = 0.5, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.judge, self.judge_margin = judge, judge_margin

    def _localised(self) -> LocalisedAscent:
        region = super()._localised()  # Option 2's settings, then the veto on top
        region.__class__ = JudgedRegions
        region.judge, region.judge_margin = self.judge, self.judge_margin  # type: ignore[attr-defined]
        return region


def cached_latents(gen, x: torch.Tensor, cache: Path, **kw) -> torch.Tensor:
    """100-step inversions of ``x`` (in batches of 32; ``kw`` passed to ``invert``), read from
    ``cache`` or written to it."""
    if cache.is_file():
        return load_file(cache)["z0"]
    z0 = torch.cat(
        [invert(gen, x[i : i + 32], steps=100, **kw).latents for i in range(0, len(x), 32)]
    )
    cache.parent.mkdir(parents=True, exist_ok=True)
    save_file({"z0": z0.contiguous()}, cache)
    return z0


def validation_models(seeds: list[int]) -> tuple:
    """brain-gan, brain-cnn and brain-oracle from the zoo, after refusing the test split."""
    if 2 in seeds:
        raise SystemExit("seed 2 is the test split: probe on validation (1, 4, 6)")
    return (
        load_generator("brain-gan"),
        load_classifier("brain-cnn"),
        load_classifier("brain-oracle"),
    )


def jittered(z0: torch.Tensor, sd: float, seed: int) -> torch.Tensor:
    """``z0`` plus Gaussian noise of sd ``sd`` times ``z0``'s sd, drawn with ``seed``."""
    noise = torch.Generator().manual_seed(seed)
    return z0 + sd * z0.std() * torch.randn(z0.shape, generator=noise)


def tumour_sources(args, seed: int, gen) -> tuple:
    """The brain slices of ``seed``, the indices of their first ``args.n`` tumour slices, and
    those slices' cached 100-step inversions."""
    data = make_dataset(8 * args.n, seed=seed)
    pick = torch.nonzero(data.labels != 0).flatten()[: args.n]
    z0 = cached_latents(gen, data.images[pick], args.cache / f"z0_seed{seed}_n{args.n}.safetensors")
    return data, pick, z0


def localised_ends(args, seed: int, gen, clf, oracle) -> dict[str, torch.Tensor]:
    """Localised Option 2 (defaults) on the first ``args.n`` tumour slices of ``seed`` walked to
    healthy, cached in ``args.cache``: start and end frames, regions, the oracle's end
    probability, the true lesion masks, and the start and end latents."""
    path = args.cache / f"ends2_seed{seed}_n{args.n}.safetensors"
    if path.exists():
        return load_file(path)
    data, pick, z0 = tumour_sources(args, seed, gen)
    x = data.images[pick]
    explainer = MonotonePath(gen, clf, oracle=oracle, localise=True)
    rs = [explainer.explain(x[i : i + 32], 0, latents=z0[i : i + 32]) for i in range(0, args.n, 32)]
    out = {
        "start": torch.cat([r.frames[:, 0] for r in rs]),
        "end": torch.cat([r.frames[:, -1] for r in rs]),
        "region": torch.cat([r.edit_masks for r in rs]),
        "oracle_end": torch.cat([r.oracle_probs[:, -1] for r in rs]),
        "masks": data.masks[pick],
        "z0": z0,
        "z_end": torch.cat([r.latents[:, -1] for r in rs]),
    }
    save_file({k: v.contiguous() for k, v in out.items()}, path)
    return out


def variants(args, gen, clf, oracle) -> None:
    data = make_dataset(8 * args.n, seed=args.seed)
    pick = torch.nonzero(data.labels != args.target).flatten()[: args.n]
    x, masks = data.images[pick], data.masks[pick] if args.target == 0 else None
    suffix = "" if args.target == 0 else "_healthy"  # the sources: tumour slices by default
    kw, tag = {}, ""
    if args.decision_weight is not None:  # inversion that keeps brain-cnn's decision
        kw, tag = {"classifier": clf, "classifier_weight": args.decision_weight}, "_decision"
        tag += f"{args.decision_weight:g}"
    cache = args.cache / f"z0_seed{args.seed}_n{args.n}{suffix}{tag}.safetensors"
    z0 = cached_latents(gen, x, cache, **kw)
    if args.jitter:  # a start no one could tell apart: how far do the verdicts move?
        moved = jittered(z0, args.jitter, args.jitter_seed)
        with torch.no_grad():
            apart = psnr(gen.decode(moved), gen.decode(z0))
        z0 = moved
        print(
            f"jittered starts (sd {args.jitter:g} x the latents' sd, seed {args.jitter_seed}): "
            f"reconstructions {apart.median():.1f} dB from the unjittered (median; minimum "
            f"{apart.min():.1f})",
            flush=True,
        )
    with torch.no_grad():
        rec = gen.decode(z0)
        psnr_db = psnr(rec, x)
        rec_in_target = torch.nonzero(class_logits(clf, rec).argmax(1) == args.target)
        src_in_target = torch.nonzero(class_logits(clf, x).argmax(1) == args.target)
        plain = args.cache / f"z0_seed{args.seed}_n{args.n}{suffix}.safetensors"
        if tag and plain.is_file():  # how far the decision term moved the reconstructions
            apart = psnr(rec, gen.decode(load_file(plain)["z0"]))
            print(
                f"reconstructions with and without the decision term: {apart.median():.1f} dB "
                f"apart (median; minimum {apart.min():.1f})",
                flush=True,
            )
    print(
        f"inversion: PSNR {psnr_db.mean():.2f} dB (median {psnr_db.median():.2f}); brain-cnn puts "
        f"{len(src_in_target)} sources (rows {src_in_target.flatten().tolist()}) and "
        f"{len(rec_in_target)} reconstructions (rows {rec_in_target.flatten().tolist()}) in the "
        "target",
        flush=True,
    )
    levels = torch.arange(11) / 10
    goal = data.images[data.labels == args.target]
    with torch.no_grad():  # realism: final frames against real target slices of the same split
        f_real = oracle.features(goal[: args.n])
        floor = frechet_distance(f_real, oracle.features(goal[args.n : 2 * args.n]))
    print(f"realism floor (real vs real, n={args.n}): {floor:.4f}", flush=True)
    for spec in args.variants.split(";"):
        kind, _, kwargs = spec.partition(":")
        call = ast.parse(f"f({kwargs})", mode="eval").body
        assert isinstance(call, ast.Call) and not call.args, f"keywords only: {spec!r}"
        kw = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
        if kind in ("o1judge", "o2judge"):  # the --judge classifier
            assert args.judge is not None, f"{kind} needs --judge"
            kw["judge"] = load_classifier(args.judge)
        explainer = KINDS[kind](gen, clf, oracle, kw)
        t0 = time.perf_counter()
        rs = [
            explainer.explain(x[i : i + 32], args.target, latents=z0[i : i + 32])
            for i in range(0, args.n, 32)
        ]
        seconds = (time.perf_counter() - t0) / args.n
        p = torch.cat([r.probs for r in rs])
        o = torch.cat([r.oracle_probs for r in rs])
        frames = torch.cat([r.frames for r in rs])
        s = summarise(p, levels, frames, x, oracle_probs=o, masks=masks)
        bad = torch.nonzero(o[:, -1] < 0.5).flatten().tolist()
        # sources brain-cnn already puts in the target class: no boundary to cross
        started = torch.nonzero(p[:, 0] > 0.5).flatten().tolist()
        flat = torch.nonzero(increasing_steps(p) < 1).flatten().tolist()
        loc = s.get("localisation", float("nan"))
        masks_out = [r.edit_masks for r in rs if r.edit_masks is not None]
        whole = int((torch.cat(masks_out).flatten(1).amin(1) >= 1).sum()) if masks_out else "n/a"
        with torch.no_grad():
            realism = frechet_distance(f_real, oracle.features(frames[:, -1]))
        print(
            f"{spec}: flip {s['flip_rate']:.3f} end p median {p[:, -1].median():.4f} "
            f"agreement {s['oracle_agreement']:.3f} localisation {loc:.3f} "
            f"increasing {s['increasing_steps']:.3f} calibration {s['calibration_error']:.3f} "
            f"realism {realism:.4f} {seconds:.2f} s/path rejected {bad} "
            f"(start in the target: {started}; rejected among the others: "
            f"{len(set(bad) - set(started))} of {args.n - len(started)}) "
            f"paths with a step that does not climb {flat}; unmasked fallbacks {whole}",
            flush=True,
        )


def placement(args, gen, clf) -> None:
    data = make_dataset(8 * 128, seed=args.seed)
    for target in (0, 1):
        x = data.images[torch.nonzero(data.labels != target).flatten()[:32]]
        z0 = invert(gen, x, steps=0).latents
        tgt = torch.full((32,), target)
        ascent = GradientAscent(gen, clf)
        with frozen(gen, clf):
            path, probs = ascent.ascend(z0, tgt)
            path = path.flatten(2)
            lv = ascent.spread_levels(probs, torch.arange(1, 11) / 10)
            rep = tgt.repeat_interleave(10)
            calls = [0]

            def prob_fn(z, index, rep=rep, calls=calls):
                calls[0] += z.shape[0]
                return target_prob(class_logits(clf, gen.decode(z)), rep[index])

            for k in (0, 1, 2, 3):
                calls[0] = 0
                zs = resample_path(path, probs, lv, prob_fn=prob_fn, refine_iters=k)
                logits = class_logits(clf, gen.decode(zs.reshape(-1, zs.shape[-1])))
                err = (target_prob(logits, rep).view(32, 10) - lv).abs()[:, :-1]
                print(
                    f"target {target} refine_iters {k}: max |p - level| {err.max():.4f} "
                    f"mean {err.mean():.4f} evaluations {calls[0]}",
                    flush=True,
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--variants", default="o2loc")
    parser.add_argument(
        "--judge", type=Path, default=None, help="classifier folder for the o1/o2judge variants"
    )
    parser.add_argument("--placement", action="store_true")
    parser.add_argument("--n", type=int, default=128)
    parser.add_argument("--seed", type=int, default=1, help="brain seed (1 = validation)")
    parser.add_argument(
        "--target", type=int, choices=(0, 1), default=0, help="0: tumour -> healthy; 1: reverse"
    )
    parser.add_argument("--cache", type=Path, default=Path("runs/validation"))
    parser.add_argument(
        "--decision-weight",
        type=float,
        default=None,
        help="invert with brain-cnn's decision term at this weight (default: no decision term)",
    )
    parser.add_argument(
        "--jitter",
        type=float,
        default=0.0,
        help="add Gaussian noise of this sd (times the latents' sd) to the inverted latents",
    )
    parser.add_argument("--jitter-seed", type=int, default=0)
    args = parser.parse_args()
    if args.seed == 2:
        raise SystemExit("seed 2 is the test split: tune on validation (1) or another seed")
    gen, clf = load_generator("brain-gan"), load_classifier("brain-cnn")
    if args.placement:
        placement(args, gen, clf)
    else:
        variants(args, gen, clf, load_classifier("brain-oracle"))


if __name__ == "__main__":
    main()
