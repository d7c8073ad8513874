"""A round's folder on disk (``out/round_KK/``): its walk while it waits for labels, its
fine-tune's labels stamp, and the finished round's tensors and ``round.json``.

``round.safetensors`` marks a round done; every file is written whole or not at all, so a
kill at any point leaves either the finished round or a round to do again (its labelling
task, a person's work, is never touched here).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from safetensors import safe_open
from safetensors.torch import load_file
from torch import Tensor, nn

from cfx.augment.result import AugmentRound, round_from_json, round_to_json
from cfx.errors import counted
from cfx.files import save_tensors_atomic, write_atomic
from cfx.run_key import tensors_sha256

log = logging.getLogger(__name__)
DONE = "round.safetensors"
"""A finished round's starts, labelled frames, labels and fine-tuned weights."""

CANDIDATES_FILE = "candidates.safetensors"
"""In a round's folder while it waits for labels: the walk's starts, frames, paths and
suggestions, so that a rerun after a person labelled asks about the same frames without
walking again (minutes per round, and frames a GPU's kernels might not give bit for bit)."""


def save_candidates(
    walked: tuple[Tensor, Tensor, Tensor, Tensor],
    folder: Path,
    made_by: dict[str, str],
    per_path: int,
) -> None:
    """Save a round's walk with what made it (``made_by``: the run key's and the model's
    digests), each path once (the context holds it once per frame level)."""
    starts, frames, context, suggested = walked
    tensors = {
        "starts": starts,
        "frames": frames.contiguous(),
        "paths": context[::per_path].contiguous(),
        "suggested": suggested,
    }
    save_tensors_atomic(tensors, folder / CANDIDATES_FILE, metadata=made_by)


def read_candidates(
    folder: Path, made_by: dict[str, str], per_path: int
) -> tuple[Tensor, Tensor, Tensor, Tensor] | None:
    """The round's saved walk (:data:`CANDIDATES_FILE`) when ``made_by`` made it; None when
    there is none, it no longer reads or something else made it (then the walk is done
    again)."""
    path = folder / CANDIDATES_FILE
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as f:
            if (f.metadata() or {}) != made_by:
                log.info("%s: a walk of another run or model; walked again", path)
                return None
            saved = {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118
        frames = saved["frames"]
        context = saved["paths"].repeat_interleave(per_path, 0)[: frames.shape[0]]
        return saved["starts"], frames, context, saved["suggested"]
    except Exception:  # any damage (safetensors' own error included): walk again
        log.warning("%s does not read; the round's paths are walked again", path)
        return None


LABELS_STAMP = "labels_sha256"
"""In a round's ``train`` folder: the digest of the labels its fine-tune trains on."""


def restart_if_relabelled(train: Path, labels: Tensor, k: int) -> None:
    """Start round ``k``'s fine-tune afresh when its labels changed since an interrupted
    attempt (a person corrected one with ``cfx label``): that checkpoint belongs to this run
    but to labels no longer given, and resuming refused it as "a different run; use a new
    folder", which would have cost every other round. Records the labels' digest."""
    digest = tensors_sha256(labels)
    stamp = train / LABELS_STAMP
    checkpoint = train / "checkpoint.safetensors"
    if checkpoint.exists() and stamp.is_file() and stamp.read_text().strip() != digest:
        log.warning(
            "round %d's labels changed since its fine-tune was interrupted: fine-tuning it "
            "again from the start of the round",
            k,
        )
        checkpoint.unlink()
    train.mkdir(parents=True, exist_ok=True)
    write_atomic(stamp, digest + "\n")


def warn_relabelled(task: Path, trained: Tensor) -> bool:
    """A warning naming the items of a finished round's labelling task whose label now
    differs from the one the round trained on (a correction made after the round finished,
    with ``cfx label``, is not used: the round is not redone); True when there were any."""
    if not task.is_dir():
        return False
    from cfx.label.labels import read_labels
    from cfx.label.store import read_task

    try:
        ids, labels = read_task(task).ids, read_labels(task)
    except (OSError, ValueError):
        return False
    changed = [
        i for i, y in zip(ids, trained.tolist(), strict=False) if i in labels and labels[i] != y
    ]
    if changed:
        log.warning(
            "%s: %s now %s from the labels %s was given (ids %s): a finished round is "
            "not redone; to train on them, copy the task folders of %s into a new output "
            "folder (as OUT/round_KK/task) and run the same command there: those rounds read "
            "every label from them, and the later rounds, whose frames change with the "
            "corrected labels, are labelled again",
            task,
            counted(len(changed), "label"),
            "differs" if len(changed) == 1 else "differ",
            task.parent.name,
            ", ".join(changed[:5]) + (", ..." if len(changed) > 5 else ""),
            "round_00" if task.parent.name == "round_00" else f"round_00 to {task.parent.name}",
        )
    return bool(changed)


def read_round(folder: Path) -> tuple[AugmentRound, Tensor, Tensor, dict[str, Tensor]] | None:
    """A finished round (its record, labelled frames, labels and fine-tuned weights), or
    None when the round is still to do: not finished, or its files cannot be read (a kill or
    a full disk under an older cfx, which wrote them in place), which is logged and the
    round computed again (a ``round.json`` or tensors file missing a field too); its
    labelling task is kept, so a person's labels are read again,
    not asked for twice. A walk left by a kill between saving the round and tidying up is
    deleted."""
    done = folder / DONE
    if not done.is_file():
        return None
    try:
        meta = json.loads((folder / "round.json").read_text())
        saved = load_file(str(done))
        record = round_from_json(meta, saved["starts"])
        frames, labels = saved["images"], saved["labels"]
    except Exception as err:  # any damage: safetensors', JSON's or the file system's
        log.warning("%s cannot be read (%s); computing the round again", folder, err)
        return None
    (folder / CANDIDATES_FILE).unlink(missing_ok=True)
    weights = {n[len("model.") :]: v for n, v in saved.items() if n.startswith("model.")}
    return record, frames, labels, weights


def save_round(
    folder: Path, record: AugmentRound, frames: Tensor, labels: Tensor, model: nn.Module
) -> None:
    """Save a finished round: ``round.json`` first, then :data:`DONE` (its starts, labelled
    ``frames`` and ``labels``, and ``model``'s weights), which marks the round done (a kill
    between the two leaves the round to do again); then the fine-tune's resume point (model
    and optimiser, ~3x the model) and the saved walk, both spent, are deleted."""
    tensors = {"starts": record.starts, "images": frames.contiguous(), "labels": labels}
    tensors |= {f"model.{n}": v.detach().contiguous() for n, v in model.state_dict().items()}
    write_atomic(folder / "round.json", json.dumps(round_to_json(record), indent=1))
    save_tensors_atomic(tensors, folder / DONE)
    (folder / "train" / "checkpoint.safetensors").unlink(missing_ok=True)
    (folder / CANDIDATES_FILE).unlink(missing_ok=True)
