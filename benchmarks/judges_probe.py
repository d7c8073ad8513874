"""Do brain-cnn's siblings (same data and recipe, other seeds) reject what the oracle rejects?

    python benchmarks/judges_probe.py runs/judges/brain-cnn-s1 runs/judges/brain-cnn-s2 ...
        [--seeds 1 4 6] [--n 128]

Validation slices only; the end frames and oracle verdicts of
``trajectory_validation.localised_ends`` (cached; computed if missing). Sessions 22-27 found
that nothing brain-cnn computes, no anomaly model of healthy slices, and brain-cnn-tagged rank
the localised end frames the oracle rejects (AUC 0.35-0.71). This asks the Rashomon set: other
classifiers trained with brain-cnn's own command and another ``--seed``. Counterfactuals that
must stay valid for several equally good models are the remedy the literature proposes for
model multiplicity (Pawelczyk et al., UAI 2020; Leofante et al., 2023). If the siblings see the
residue the oracle sees, a judged search could use them; if not, the rejected frames are
brain-cnn's data-level decision, not its seed's.

Printed per seed and pooled, for each sibling and for their mean and minimum: the AUC with
which its healthy probability ranks rejected end frames *below* accepted ones (0.5 is chance),
and how many frames a 0.5 threshold on it would refuse, rejected and accepted.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import trajectory_validation as validation  # the sibling script: models for validation
from agreement_probe import auc_low, healthy_prob

from cfx.zoo import load_classifier


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("judges", type=Path, nargs="+", help="save_pretrained classifier folders")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 4, 6])
    parser.add_argument("--n", type=int, default=128)
    parser.add_argument("--cache", type=Path, default=Path("runs/validation"))
    args = parser.parse_args()
    gen, clf, oracle = validation.validation_models(args.seeds)
    judges = {
        (p.parent.name if p.name == "model" else p.name): load_classifier(p) for p in args.judges
    }
    scores: dict[str, list[torch.Tensor]] = {}
    rejected_all = []
    for seed in args.seeds:
        ends = validation.localised_ends(args, seed, gen, clf, oracle)
        end, rejected = ends["end"], ends["oracle_end"] < 0.5
        per = {name: healthy_prob(j, end) for name, j in judges.items()}
        stacked = torch.stack(list(per.values()))
        per["mean of siblings"] = stacked.mean(0)
        per["min of siblings"] = stacked.min(0).values
        per["brain-cnn"] = healthy_prob(clf, end)
        rejected_all.append(rejected)
        print(f"seed {seed}: {int(rejected.sum())} of {len(end)} end frames rejected", flush=True)
        for name, s in per.items():
            scores.setdefault(name, []).append(s)
            refused = s < 0.5
            print(
                f"  {name:>18}: AUC {auc_low(s, rejected):.2f}; p < 0.5 on "
                f"{int((refused & rejected).sum())} rejected, {int((refused & ~rejected).sum())} "
                f"accepted; rejected frames' p: "
                + " ".join(f"{v:.2f}" for v in s[rejected].tolist()),
                flush=True,
            )
    rejected = torch.cat(rejected_all)
    print(f"pooled: {int(rejected.sum())} of {len(rejected)} rejected")
    for name, parts in scores.items():
        s = torch.cat(parts)
        refused = s < 0.5
        print(
            f"  {name:>18}: AUC {auc_low(s, rejected):.2f}; p < 0.5 on "
            f"{int((refused & rejected).sum())} rejected, "
            f"{int((refused & ~rejected).sum())} accepted"
        )


if __name__ == "__main__":
    main()
