"""Where the localised region search spends its iterations, and which give-up rules would save.

    python benchmarks/region_search_probe.py [--seed 1] [--n 128]

Validation slices only (brain seed 1 by default; never the test split 2), the cached 100-step
inversions of ``trajectory_validation.py`` (``runs/validation``). For each direction
(tumour -> healthy at margin 0.99, healthy -> tumour at 0.999) every candidate region of
:class:`~cfx.trajectory.localised.LocalisedAscent` (defaults) is ascended for *every* image to
its budget with ``give_up=None``, and the target log-odds of each iteration are kept. An
image's trace does not depend on the other images of its batch (normalised per-image steps;
up to the models' batch-size-dependent rounding, see ``batch_invariance_probe.py``), so any
give-up rule can then be replayed on the traces: which region each image would
keep and how many decode + classify forward/backward passes of one image ("row-iterations")
the search would cost. Prints, per direction: the row-iterations and chosen regions of the
shipped rule (mean-rate extrapolation over the rest of the budget, from iteration 10,
``give_up=1.0``), where they go (successful vs failed candidates), and the same for variants:
an earlier start, a smaller or larger factor, a rate over a recent window only, and a shorter
projection horizon. Every rule is replayed with the candidates tried from the smallest (the
search before session 15); the last line is the shipped search, which bisects them (the
middle one first). The traces are kept in ``--cache`` (``region_traces_seed*.safetensors``),
so a second run only replays. A variant that changes an image's region changes its frames (a
larger region lowers localisation), so only a saving with no changed region is free.
"""

from __future__ import annotations

import argparse
import itertools
import math
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from trajectory_validation import cached_latents  # the sibling script: the same latent cache

from cfx.calls import frozen, in_chunks
from cfx.data.brain import make_dataset
from cfx.trajectory.gradient_ascent import EXAGGERATION, GIVE_UP_AFTER
from cfx.trajectory.localised import LocalisedAscent, region_masks
from cfx.zoo import load_classifier, load_generator

Rule = tuple[int, float | None, int | None, float | None]
"""(first iteration checked, factor on the rate (None: never give up), rate window (None: mean
since the start), horizon as a multiple of the iterations run (None: the rest of the budget))."""

SHIPPED: Rule = (GIVE_UP_AFTER, 1.0, None, None)


def traces(explainer: LocalisedAscent, z0, target) -> dict:
    """Per candidate region: log-odds traces ``(B, max_iter + 1)`` (an image's last value
    repeats once it stops; NaN after the batch's longest), with each image's budget ``(B,)``,
    as :meth:`LocalisedAscent.choose_regions` sets it. The log-odds are recomputed from the
    float32 probabilities, which resolve them to about +-16; the goals here (log-odds 4.6 and
    6.9) sit well inside that."""
    gen, margin = explainer.generator, explainer.margin
    out: dict = {"budget": [], "traces": {q: [] for q in explainer.mask_fractions}}
    with frozen(gen, explainer.classifier):
        for i in range(0, len(z0), 32):
            zb, tb = z0[i : i + 32], target[i : i + 32]
            with torch.no_grad():
                start = in_chunks(gen.decode, zb)
            path1, probs1 = explainer._ascent().ascend(zb, tb)
            needed = (probs1 < margin).sum(1)
            budget = (explainer.patience * needed + 10).ceil().clamp(max=explainer.max_iter)
            change = explainer.change_map(path1, start, tb)
            out["budget"].append(budget)
            for q in explainer.mask_fractions:
                m = region_masks(change, q, soften=explainer.soften)
                _, p = explainer.ascend_masked(zb, start, m, tb, budget)
                s = torch.full((len(zb), explainer.max_iter + 1), float("nan"), dtype=torch.float64)
                s[:, : p.shape[1]] = torch.logit(p.double().clamp(1e-12, 1 - 1e-12))
                out["traces"][q].append(s)
            print(f"   traced {i + len(zb)} / {len(z0)}", flush=True)
    return {"budget": torch.cat(out["budget"]).tolist()} | {
        q: torch.cat(v) for q, v in out["traces"].items()
    }


def replay(s: torch.Tensor, goal: float, cap: float, rule: Rule) -> tuple[int, bool]:
    """The iteration at which one candidate stops under ``rule``, and whether it succeeded."""
    first, factor, window, horizon = rule
    n = int(torch.isfinite(s).sum())
    for it in range(n):
        if s[it] >= goal:
            return it, True
        if it >= cap:
            return it, False
        if factor is not None and it >= first:
            back = 0 if window is None else max(0, it - window)
            rate = max(float(s[it] - s[back]) / (it - back), 0.0)
            ahead = cap - it if horizon is None else min(cap - it, horizon * it)
            if s[it] + factor * rate * ahead < goal:
                return it, False
    return n - 1, bool(s[n - 1] >= goal)


def attempt(s: torch.Tensor, margin: float, cap: int, rule: Rule) -> tuple[int, bool]:
    """Row-iterations one candidate costs under ``rule``, and whether the region search
    accepts it (its trace ``s`` reaches ``margin``)."""
    accept = math.log(margin / (1 - margin))  # the region search's test, in log-odds
    # the ascent's goal, max(sigmoid(s_0 + EXAGGERATION), margin), in log-odds
    goal = max(float(s[0]) + EXAGGERATION, accept)
    it, _ = replay(s, goal - 1e-9, cap, rule)
    return it + 1, bool(s[it] >= accept - 1e-9)


def search(
    tr: dict, margin: float, fractions, rule: Rule, order: str = "ascending"
) -> tuple[list[int], list[float], dict]:
    """Row-iterations and chosen region per image under ``rule``; row-iterations spent on
    candidates that succeeded / failed. ``order``: ``"ascending"`` tries the candidates from
    the smallest (the search before session 15); ``"bisect"`` bisects for the smallest that succeeds
    (the same choice where success grows with the region)."""
    cost, chosen, spent = [], [], {"succeeded": 0, "failed": 0}
    for i, cap in enumerate(tr["budget"]):
        tried = [attempt(tr[q][i], margin, cap, rule) for q in fractions]  # (cost, ok) each
        if order == "ascending":
            k = next((j for j, (_, ok) in enumerate(tried) if ok), len(fractions))
            visited = list(range(min(k + 1, len(fractions))))
        else:
            lo, hi, k, visited = 0, len(fractions) - 1, len(fractions), []
            while lo <= hi:
                mid = (lo + hi) // 2
                visited.append(mid)
                if tried[mid][1]:
                    k, hi = mid, mid - 1
                else:
                    lo = mid + 1
        for j in visited:
            spent["succeeded" if tried[j][1] else "failed"] += tried[j][0]
        cost.append(sum(tried[j][0] for j in visited))
        chosen.append(fractions[k] if k < len(fractions) else 1.0)
    return cost, chosen, spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--n", type=int, default=128)
    parser.add_argument("--cache", type=Path, default=Path("runs/validation"))
    args = parser.parse_args()
    if args.seed == 2:
        raise SystemExit("seed 2 is the test split: probe on validation (1) or another seed")
    gen, clf = load_generator("brain-gan"), load_classifier("brain-cnn")
    data = make_dataset(8 * args.n, seed=args.seed)
    variants: list[Rule] = [(10, None, None, None)]
    variants += [(a, g, None, None) for a, g in itertools.product((3, 5), (0.5, 1.0))]
    variants += [(a, g, w, None) for a, g, w in itertools.product((5, 10), (1.0, 2.0), (5, 8))]
    variants += [(10, g, None, h) for g, h in itertools.product((1.0, 1.5), (2, 4, 6))]
    for target, margin in ((0, 0.99), (1, 0.999)):
        print(f"target {target} (margin {margin}), seed {args.seed}, n {args.n}", flush=True)
        pick = torch.nonzero(data.labels != target).flatten()[: args.n]
        suffix = "" if target == 0 else "_healthy"
        cache = args.cache / f"z0_seed{args.seed}_n{args.n}{suffix}.safetensors"
        z0 = cached_latents(gen, data.images[pick], cache)
        explainer = LocalisedAscent(gen, clf, margin=margin, give_up=None)
        fractions = sorted(explainer.mask_fractions)
        e = explainer  # the settings the traces depend on name the file: a change re-traces
        knobs = f"m{e.margin}_p{e.patience}_i{e.max_iter}_s{e.soften}_b{e.change_blur}_e{e.eta}"
        saved = args.cache / f"region_traces_seed{args.seed}_n{args.n}{suffix}_{knobs}.safetensors"
        if saved.exists():  # the traces of an earlier run: replays need no model evaluation
            flat = load_file(saved)
            tr = {"budget": flat.pop("budget").tolist()} | {float(q): v for q, v in flat.items()}
        else:
            tr = traces(explainer, z0, torch.full((args.n,), target))
            flat = {str(q): v.contiguous() for q, v in tr.items() if q != "budget"}
            save_file(flat | {"budget": torch.tensor(tr["budget"])}, saved)
        cost, chosen, spent = search(tr, margin, fractions, SHIPPED)
        total = sum(cost)
        counts = {q: chosen.count(q) for q in [*fractions, 1.0]}
        print(
            f"   shipped rule, from the smallest: {total} row-iterations, {spent}, "
            f"regions chosen {counts}"
        )
        for rule in variants:
            c, ch, _ = search(tr, margin, fractions, rule)
            changed = sum(a != b for a, b in zip(ch, chosen, strict=True))
            larger = sum(a > b for a, b in zip(ch, chosen, strict=True))
            print(
                f"   first={rule[0]} factor={rule[1]} window={rule[2]} horizon={rule[3]}: "
                f"{sum(c) / total:.2f}x, regions changed {changed} (larger {larger})"
            )
        c, ch, sp = search(tr, margin, fractions, SHIPPED, order="bisect")
        changed = sum(a != b for a, b in zip(ch, chosen, strict=True))
        larger = sum(a > b for a, b in zip(ch, chosen, strict=True))
        print(
            f"   shipped rule, bisected (shipped search): {sum(c) / total:.2f}x, {sp}, "
            f"regions changed {changed} (larger {larger})"
        )


if __name__ == "__main__":
    main()
