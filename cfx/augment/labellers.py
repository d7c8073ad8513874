"""Who labels the near-boundary images: an oracle model, or a person through a task folder.

A labeller has one verb, ``label(images, *, context, suggested, workdir) -> (N,)`` int64 class
indices. The oracle answers at once; a person answers through a labelling task folder
(:mod:`cfx.label.store`), filled in the web page (``cfx label serve``) or a CSV round trip
(``cfx label export`` / ``cfx label import``). Until every image has a label the task labeller
raises :class:`LabelsPending`, so the loop stops cleanly and continues on the next run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

from cfx.calls import class_logits, frozen, to_model
from cfx.errors import ForeignRunError, LabelsPending, check_int
from cfx.images import check_images
from cfx.reprs import settings_repr
from cfx.types import Classifier


@runtime_checkable
class Labeller(Protocol):
    """Images ``(N, C, H, W)`` in [-1, 1] -> class indices ``(N,)`` (int64), or -1
    (:data:`cfx.label.UNSURE`) for an image the labeller cannot call, which
    :class:`~cfx.augment.ActiveLearner` keeps with its round but does not train on.

    A labeller may also have ``run_key() -> dict``, who labels (JSON values), which a
    resumable run records and compares; without it only its class is recorded, so a rerun
    with another labeller of the same class (other settings) resumes the rounds."""

    def label(
        self,
        images: Tensor,
        *,
        context: Tensor | None = None,
        suggested: Tensor | None = None,
        workdir: Path | None = None,
    ) -> Tensor: ...


class OracleLabeller:
    """Labels from an independent model (e.g. ``brain-oracle``): its arg-max class.

    Args:
        classifier: images in [-1, 1] -> logits ``(B, K)``; left exactly as it was.
        batch_size: images per forward pass.
    """

    __repr__ = settings_repr  # the arguments given, defaults left out

    def __init__(self, classifier: Classifier, *, batch_size: int = 256) -> None:
        self.classifier = classifier
        self.batch_size = check_int("batch_size", batch_size)

    def run_key(self) -> dict[str, object]:
        """Who labels, for a resumable run's key: the oracle's weights and its modules'
        classes and settings (None for a model that is not an ``nn.Module``)."""
        from cfx.run_key import module_sha256
        from cfx.trajectory.identity import module_settings

        return {
            "kind": "oracle",
            "oracle_sha256": module_sha256(self.classifier),
            "oracle_settings": module_settings(self.classifier),
        }

    def label(
        self,
        images: Tensor,
        *,
        context: Tensor | None = None,
        suggested: Tensor | None = None,
        workdir: Path | None = None,
    ) -> Tensor:
        """Arg-max class of ``images`` ``(N, C, H, W)`` in [-1, 1] -> ``(N,)`` int64 on the
        images' device; each batch goes to the classifier's device and dtype (frames on the
        CPU with an oracle on a GPU failed after the walk)."""
        images = check_images(images, "images")
        out = []
        with frozen(self.classifier), torch.no_grad():
            for i in range(0, images.shape[0], self.batch_size):
                batch = to_model(images[i : i + self.batch_size], self.classifier)
                out.append(class_logits(self.classifier, batch).argmax(1).to(images.device))
        return torch.cat(out)


class TaskLabeller:
    """Labels from a person, through a labelling task folder in ``workdir``.

    The first call writes the task (images, their path context, the classifier's suggestion)
    and raises :class:`LabelsPending`; once every image is labelled (web page or CSV), the same
    call returns the labels in the order of the images.

    Args:
        class_names: names shown to the labeller, index = class.
    """

    __repr__ = settings_repr  # the arguments given, defaults left out

    def __init__(self, *, class_names: tuple[str, ...] = ("healthy", "tumour")) -> None:
        from cfx.label.classes import check_class_names

        # checked now, not once a round's paths are walked and its task is written
        self.class_names = check_class_names(class_names)

    def run_key(self) -> dict[str, object]:
        """Who labels, for a resumable run's key: a person, shown these class names."""
        return {"kind": "person", "class_names": list(self.class_names)}

    def label(
        self,
        images: Tensor,
        *,
        context: Tensor | None = None,
        suggested: Tensor | None = None,
        workdir: Path | None = None,
    ) -> Tensor:
        """Write or read the task in ``workdir``; ``(N,)`` int64 once all are labelled
        (-1 where the person answered "can't tell"). A
        task already there must be these images' (labels go by position): one written for
        other images is a :class:`~cfx.errors.ForeignRunError`."""
        from cfx.label.labels import pending, read_labels
        from cfx.label.store import MANIFEST, write_task

        if workdir is None:
            raise ValueError("`workdir` must be a folder for the labelling task, got None")
        workdir = Path(workdir)
        images = check_images(images, "images")
        ids = [f"{i:06d}" for i in range(images.shape[0])]
        try:  # the same task again is a no-op that keeps its labels
            write_task(
                workdir,
                images,
                ids=ids,
                context=context,
                class_names=self.class_names,
                suggested=None if suggested is None else [int(s) for s in suggested],
            )
        except FileExistsError as err:
            if not (workdir / MANIFEST).is_file():  # no task: files of one's own
                raise  # a FileExistsError, which nothing deletes on (a ForeignRunError may be)
            raise ForeignRunError(
                f"`workdir` {workdir} holds a labelling task for other images than these "
                f"{len(ids)}, so its labels would go to the wrong images; move that folder "
                "away (its labels stay in it) and run again, or label these in another folder"
            ) from err
        waiting = pending(workdir)
        if waiting:
            raise LabelsPending(workdir, len(waiting), len(ids))
        labels = read_labels(workdir)
        return torch.tensor([labels[i] for i in ids], dtype=torch.long)
