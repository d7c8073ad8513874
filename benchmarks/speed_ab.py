"""Paired timing of localised Option 2 against an earlier commit, alternating the two.

    python benchmarks/speed_ab.py --ref 216cf07 [--pairs 3]

This machine's speed drifts by 20-50 % within an hour (neighbours on the host), so a timing
of the working tree taken after a timing of an older commit cannot tell a slower change from
a slower machine. This script alternates them instead: for each pair it runs the working tree
and ``--ref`` (checked out in a temporary git worktree) one after the other, each in a fresh
process, and prints both. Each run: 32 tumour slices of validation seed 1 (never the test
split) from encoder latents, walked to healthy by ``MonotonePath(localise=True)`` at
batch 32 (the variant nearest its time bar), then ten iterations of Option 2's joint
optimisation against a bare decode + classify forward/backward of the same 320 frames (the
loop overhead, as in ``trajectory.py``).
"""

from __future__ import annotations

import argparse
import inspect
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# run in a child process with the chosen checkout first on the path; the editable install's
# import hook would otherwise always serve the working tree's cfx
CHILD = """
import runpy, sys
sys.meta_path = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
sys.path.insert(0, sys.argv[1])
sys.argv = [sys.argv[2], "--child"]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def bare_step_seconds(generator, classifier, batch: int, latent_dim: int) -> float:
    """Median of three bare decode + classify forward/backward passes in chunks of 32."""
    import torch

    z = torch.randn(batch, latent_dim, requires_grad=True)
    times = []
    for _ in range(4):
        t0 = time.perf_counter()
        for i in range(0, batch, 32):
            out = classifier(generator.decode(z[i : i + 32]))[:, 1].sum()
            torch.autograd.grad(out, z)
        times.append(time.perf_counter() - t0)
    return statistics.median(times[1:])


def child() -> None:
    """One timing with whichever cfx is first on the path; prints one line."""
    import torch

    import cfx
    from cfx.calls import frozen
    from cfx.data.brain import make_dataset
    from cfx.inversion import invert
    from cfx.trajectory import MonotonePath
    from cfx.zoo import load_classifier, load_generator

    gen, clf = load_generator("brain-gan"), load_classifier("brain-cnn")
    data = make_dataset(8 * 128, seed=1)
    x = data.images[torch.nonzero(data.labels == 1).flatten()[:32]]
    z0 = invert(gen, x, steps=0).latents
    t0 = time.perf_counter()
    MonotonePath(gen, clf, steps=10, localise=True).explain(x, 0, latents=z0)
    per_path = (time.perf_counter() - t0) / 32
    with frozen(gen, clf):
        # all 10 iterations for every image (the loop divides by 11): z_init is never valid,
        # and the stop rules (where this commit has them) would end the loop early
        stops = {"stall": None, "hopeless_after": None}
        known = inspect.signature(MonotonePath).parameters
        stops = {k: v for k, v in stops.items() if k in known}
        mp = MonotonePath(gen, clf, steps=10, iterations=10, **stops)
        z_init = z0[:, None].repeat(1, 10, 1)
        target = torch.zeros(32, dtype=torch.long)
        t0 = time.perf_counter()
        mp.optimise(z0, z_init, torch.zeros(32), target, torch.arange(11) / 10)
        loop = (time.perf_counter() - t0) / 11
        bare = bare_step_seconds(gen, clf, 320, z0.shape[1])
    where = Path(cfx.__file__).resolve().parent.parent
    print(f"{per_path:.3f} {loop / bare:.3f} {where}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ref", help="the commit to compare the working tree with")
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child()
        return
    if not args.ref or args.pairs < 1:
        raise SystemExit("--ref REV is required and --pairs must be >= 1")
    with tempfile.TemporaryDirectory() as tmp:
        ref_tree = Path(tmp) / "ref"
        git = ["git", "-C", str(ROOT)]
        subprocess.run(
            [*git, "worktree", "add", "-q", "--detach", str(ref_tree), args.ref], check=True
        )
        try:
            rows = {"working tree": [], args.ref: []}
            for _ in range(args.pairs):
                for label, tree in (("working tree", ROOT), (args.ref, ref_tree)):
                    script = tree / "benchmarks" / "speed_ab.py"
                    if not script.is_file():  # an older commit: time it with this script
                        script = Path(__file__).resolve()
                    out = subprocess.run(
                        [sys.executable, "-c", CHILD, str(tree), str(script)],
                        check=True,
                        capture_output=True,
                        text=True,
                    ).stdout.split()
                    rows[label].append((float(out[0]), float(out[1])))
                    print(
                        f"{label:>14}: localised Option 2 {out[0]} s/path, loop overhead "
                        f"{out[1]}x  (cfx from {out[2]})",
                        flush=True,
                    )
        finally:
            subprocess.run([*git, "worktree", "remove", "--force", str(ref_tree)], check=True)
    for label, runs in rows.items():
        per_path = statistics.median(r[0] for r in runs)
        overhead = statistics.median(r[1] for r in runs)
        print(f"median, {label}: {per_path:.3f} s/path, loop overhead {overhead:.3f}x")


if __name__ == "__main__":
    main()
