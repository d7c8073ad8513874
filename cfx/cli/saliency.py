"""``cfx saliency compare|attack|randomise``: saliency methods side by side on brain slices
(:mod:`cfx.cli.saliency_compare`), attacks (:mod:`cfx.cli.saliency_attack`) and the cascading
randomisation check (:mod:`cfx.cli.saliency_randomise`); here the command group and what the
three share (method names, ``--input`` images, the target class)."""

from __future__ import annotations

import argparse
import difflib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from cfx.cli.models import size_notice
from cfx.cli.options import given_flags
from cfx.cli.paths import not_a_file, not_the_input_folder
from cfx.errors import UnknownNameError, check_int

if TYPE_CHECKING:
    import torch

    from cfx.types import Classifier

log = logging.getLogger(__name__)
SALIENCY_METHODS = (
    *("gradient", "gradient_x_input", "smoothgrad", "integrated_gradients", "gradcam"),
    *("occlusion", "rise", "lime", "kernel_shap", "rex"),
)
"""cfx.saliency.compare.METHODS, spelt out here so that --help needs no torch (a test keeps
the two equal)."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "saliency", help="compare saliency methods against lesion masks; attack them"
    )
    ssub = p.add_subparsers(dest="saliency_command", required=True, metavar="ACTION")

    # torch is imported by none of them for --help
    from cfx.cli import saliency_attack, saliency_compare, saliency_randomise

    saliency_compare.register(ssub)
    saliency_attack.register(ssub)
    saliency_randomise.register(ssub)


def add_method_options(parser: argparse.ArgumentParser) -> None:
    """``--methods``, ``--gradcam-layer`` and ``--fast``, as the commands running many
    methods name them."""
    parser.add_argument(
        "--methods",
        default="all",
        help=f"comma-separated names from {', '.join(SALIENCY_METHODS)}; or 'all'",
    )
    parser.add_argument(
        "--gradcam-layer", default=None, help="Grad-CAM layer name (default: last conv)"
    )
    parser.add_argument(
        "--fast", action="store_true", help="small budgets for perturbation methods"
    )


def brain_name_notice(given: object, target: int, classifier: str) -> None:
    """Say that ``--target healthy|tumour`` was read as class 0 / 1 of a classifier not
    trained on brain slices (its classes may be others); other values say nothing."""
    from cfx.cli.trajectory import CLASS_NAMES

    if str(given).strip().lower() in CLASS_NAMES:
        log.warning(
            "`--target %s` is read as class %d of --classifier %s: healthy / tumour are the "
            "brain models' names for classes 0 / 1",
            given,
            target,
            classifier,
        )


def check_target_class(model: object, x: torch.Tensor, target: int, brain: bool) -> None:
    """A ``--target`` beyond the classifier's outputs, named before any work."""
    from cfx.cli.trajectory import _class_count

    classes = _class_count(model, x[:1])
    if classes is not None and target >= classes:
        raise ValueError(
            f"`--target` must be a class of the classifier, 0..{classes - 1}"
            + (" (or healthy / tumour for 0 / 1)" if brain else "")
            + f", got {target}"
        )


def check_gradcam_layer(model: object, names: list[str], layer: str | None) -> None:
    """A ``--gradcam-layer`` typo, named before any method runs; one given without Grad-CAM
    among the methods is said to do nothing."""
    if layer is None:
        return
    if "gradcam" not in names:
        log.warning("`--gradcam-layer %s` does nothing: gradcam is not among the methods", layer)
        return
    from cfx.saliency.gradcam import resolve_layer

    try:
        resolve_layer(model, layer)
    except ValueError as err:
        raise ValueError(f"`--gradcam-layer`: {str(err).removeprefix('`layer` ')}") from None


_ARGUMENT_FLAGS = {"`layer` ": "`--gradcam-layer` ", "`masks` ": "`--masks` "}
"""The library's argument names (an error's first words) by the flag that gave them."""


@contextmanager
def as_flags(layer: str | None) -> Iterator[None]:
    """Around a library call: an error naming ``layer`` or ``masks`` names the flag instead
    (``--gradcam-layer head.2``: "`layer` must output feature maps", which no option is
    called; session 45 audit)."""
    try:
        yield
    except ValueError as err:
        text = str(err)
        for name, flag in _ARGUMENT_FLAGS.items():
            if text.startswith(name):
                given = f"{layer} " if name == "`layer` " and layer else ""
                raise ValueError(flag + given + text.removeprefix(name)) from err
        raise


def _model_channels(model: object) -> int | None:
    """The channels ``model`` takes: its config's ``channels`` (cfx's models, and hub models
    whose config says), else its first registered 2-D convolution's, else None."""
    import torch

    channels = getattr(getattr(model, "config", None), "channels", None)
    if isinstance(channels, int) and channels > 0:
        return channels
    if isinstance(model, torch.nn.Module):
        for module in model.modules():
            if isinstance(module, torch.nn.Conv2d):
                return int(module.in_channels)
    return None


def checked_input(args: argparse.Namespace) -> list[Path] | None:
    """``--input``'s image files (None for a batch), checked before any model loads, and an
    ``--out`` that is not the ``--input`` folder (its outputs would be read as images)."""
    not_a_file(args.out)  # the folder is made once the inputs are read
    if args.input is None:
        return None
    from cfx.data.image_files import check_input_path

    files = check_input_path(args.input)
    not_the_input_folder(args.out, args.input)
    return files


def read_input(args: argparse.Namespace, files: list[Path] | None, model: object) -> torch.Tensor:
    """``--input`` as images in [-1, 1]: image files with the channels ``model`` takes (the
    first file's, grey or colour, when it has no convolution to tell), at their own size."""
    if files is None:
        from cfx.data.io import load_images

        x = load_images(args.input, name="--input", channels=_model_channels(model))
    else:
        from cfx.data.image_files import read_images

        x = read_images(files, _model_channels(model))  # None: the first file's channels
    size_notice(model, x.shape, "--classifier", "--input images")
    if float(x.min()) >= 0.0:
        _unit_range_in_flags(x)
    return x


def _unit_range_in_flags(x: torch.Tensor) -> None:
    """The library's notice about images with no pixel below 0 names `x` and a Python
    wrapper; on the command line it names ``--input`` and what to do with the file. The
    library's own notice is then silenced for the rest of the command (the filter lives in
    the command's ``warnings.catch_warnings``, :func:`cfx.cli.console.console`)."""
    import re
    import warnings

    from cfx.saliency._common import PROBE_NOTICES

    log.warning(
        "no pixel of the %d --input image(s) is below 0 (values %.3g..%.3g): cfx reads image "
        "files into [-1, 1] itself (dark = -1), but a .npy/.pt batch must be in [-1, 1] "
        "already: save 2x - 1 of [0, 1] data",
        x.shape[0],
        float(x.min()),
        float(x.max()),
    )
    warnings.filterwarnings("ignore", message=re.escape(PROBE_NOTICES[1]), category=UserWarning)


def default_classifier(args: argparse.Namespace) -> None:
    """Fill ``--classifier`` (brain-cnn); with ``--input``, say that the default is a model of
    the built-in brain slices, which would explain any image as one."""
    if args.classifier is None:
        args.classifier = "brain-cnn"
        if args.input is not None:
            log.warning(
                "with --input, --classifier is brain-cnn (the default), trained on the "
                "built-in brain slices; name your own unless your images are such slices"
            )


def built_in(args: argparse.Namespace, n: int) -> None:
    """Fill ``--n``/``--seed`` for the built-in slices; with ``--input`` they would do nothing,
    so giving them is an error rather than silently ignored."""
    if args.input is not None:
        given = given_flags(args, "n", "seed")
        if given:
            verb = "chooses" if len(given) == 1 else "choose"
            raise ValueError(
                f"{' and '.join(f'`{f}`' for f in given)} {verb} the built-in slices; with "
                f"`--input` the images are yours, so drop {' and '.join(given)}"
            )
        return
    args.n = n if args.n is None else args.n
    args.seed = 2 if args.seed is None else args.seed
    check_int("--n", args.n)


def method_name(text: str) -> str:
    """A saliency method's name as cfx spells it (:func:`cfx.saliency.compare.method_key`)."""
    from cfx.saliency.compare import method_key

    return method_key(text)


def method_names(text: str) -> list[str]:
    from cfx.saliency.compare import METHODS

    if text.strip().lower() == "all":
        return list(METHODS)
    given = [t.strip() for t in text.split(",") if t.strip()]
    if not given:
        raise UnknownNameError(
            f"`--methods` names no method, got {text!r}: give some of {', '.join(METHODS)}, "
            "comma-separated, or all"
        )
    names = [method_name(n) for n in given]  # GradCAM, integrated-gradients
    unknown = [g for g, n in zip(given, names, strict=True) if n not in METHODS]
    if unknown:
        close = {g: difflib.get_close_matches(method_name(g), METHODS, n=1) for g in unknown}
        hint = "; ".join(f"{g!r}: did you mean {m[0]!r}?" for g, m in close.items() if m)
        raise UnknownNameError(
            f"`--methods`: unknown saliency method(s) {unknown}; expected some of {METHODS}"
            + (f" ({hint})" if hint else "")
        )
    return names


def predicted_classes(model: Classifier, x: torch.Tensor) -> torch.Tensor:
    """The class ``model`` predicts for each image of ``x``, ``(N,)``; a model that fails on
    the images is named as the saliency methods name it."""
    import torch

    from cfx.calls import call_named, class_logits, frozen

    with frozen(model), torch.no_grad():
        return call_named(
            lambda: class_logits(model, x, name="model"),
            {"model": model},
            x,
            f"`model` failed on `x` shaped {tuple(x.shape[1:])} per image (C, H, W)",
        ).argmax(1)


def no_image_in_target_notice(model: Classifier, x: torch.Tensor, target: int) -> None:
    """Warn when the classifier puts some or all of the images in another class than
    ``--target``: their maps explain evidence for a class it did not choose (e.g. a target
    left at its default, or one class given for images of many). A model that fails on the
    images is named as the saliency methods name it."""
    import torch

    from cfx.errors import first_names

    predicted = predicted_classes(model, x)
    other = predicted != target
    if not bool(other.any()):
        return
    classes = " or ".join(map(str, sorted(set(predicted[other].tolist()))))
    if bool(other.all()):
        log.warning(
            "the classifier puts none of the %d images in class %d (--target); it predicts "
            "class %s for them, so every map explains evidence for a class it did not choose",
            x.shape[0],
            target,
            classes,
        )
    else:
        log.warning(
            "the classifier puts %d of the %d images in another class than %d (--target): "
            "class %s; their maps explain evidence for a class it did not choose (rows %s, "
            "counted from 0; --target predicted explains each image's own class)",
            int(other.sum()),
            x.shape[0],
            target,
            classes,
            first_names([str(i) for i in torch.nonzero(other).flatten().tolist()]),
        )
