"""``cfx data preview brain|credit|PATH``: look at the built-in data, or at your own images
as cfx reads them."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from cfx.cli.options import given_flags
from cfx.cli.paths import built_in_named, out_file, out_file_path
from cfx.errors import UnknownNameError, check_int, counted
from cfx.files import write_atomic

log = logging.getLogger(__name__)
DATASETS = ("brain", "credit")
FIGURES = (".png", ".pdf", ".svg")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="inspect the built-in datasets")
    dsub = p.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    prev = dsub.add_parser(
        "preview", help="write a preview (PNG for brain, CSV summary for credit)"
    )
    prev.add_argument(
        "dataset",
        help="brain, credit, or your own images (a folder of image files, one image file or a "
        ".npy/.pt batch), shown as cfx reads them",
    )
    prev.add_argument(
        "--n", type=int, default=None, help="brain, your images: images shown (default: 16)"
    )
    prev.add_argument("--seed", type=int, default=None, help="brain: data seed (default: 0)")
    prev.add_argument(
        "--tagged", action="store_true", default=None, help="brain: include scanner markers"
    )
    prev.add_argument(
        "--labels",
        help="your images: their labels (as cfx train --labels takes them), shown in the titles",
    )
    prev.add_argument(
        "--masks",
        help="your images: their masks (as cfx saliency compare --masks takes them), outlined",
    )
    prev.add_argument(
        "--out",
        type=out_file_path,
        default=None,
        help="brain, your images: a .png/.pdf/.svg figure (default: preview.png); credit: a "
        ".csv table (default: preview.csv)",
    )
    prev.set_defaults(run=run_preview)


PREVIEW_MAX = 128
"""Most slices one preview grid shows."""


def _figure(args: argparse.Namespace) -> tuple[Path, int]:
    """``--out`` as a figure (the default preview.png) and ``--n`` (default 16, at most
    :data:`PREVIEW_MAX`), for the image previews."""
    out = Path("preview.png") if args.out is None else Path(args.out)
    if out.suffix.lower() not in FIGURES and not out.is_dir():  # a folder: named below
        what = "brain" if args.dataset == "brain" else "images"
        raise ValueError(
            f"`--out` for {what} is a figure, one of {', '.join(FIGURES)}; got {out.name!r}"
        )
    n = 16 if args.n is None else check_int("--n", args.n)
    if n > PREVIEW_MAX:  # a grid past this is unreadable and slow to render
        raise ValueError(f"`--n` must be at most {PREVIEW_MAX} for a preview, got {n}")
    data = Path(args.dataset)  # your images' folder (the built-in names read no folder)
    if args.dataset not in DATASETS and data.is_dir() and out.resolve().parent == data.resolve():
        raise ValueError(
            f"`--out` must not be in the folder of images previewed ({data}): the next command "
            "would read the preview as one of them"
        )
    return out, n  # made (out_file) once the inputs are read: a refused run leaves no folder


def _shape_verb(given: list[str]) -> str:
    return "only shape" if len(given) > 1 else "only shapes"


def _other_sizes(rest: list[Path], size: tuple[int, ...], first: Path, flag: str) -> None:
    """Warn when files past the ones shown (``rest``) are not ``size`` ``(H, W)``, the first
    file's: the preview passed a folder `cfx train` then refused, having decoded the first
    ``--n`` files only. Their headers are read (an unreadable file is an error, as for every
    command), not their pixels."""
    from cfx.data.image_files import image_size

    other = [(f, s) for f in rest if (s := image_size(f, flag)) != size]
    if other:
        f, (h, w) = other[0]
        log.warning(
            "%d of the %d files not shown %s in size from %s (%dx%d pixels), %s first (%dx%d): "
            "`cfx train` refuses images of several sizes, and the commands that read images at "
            "a model's size stretch each to it; resize them first",
            len(other),
            len(rest),
            "differs" if len(other) == 1 else "differ",
            first.name,
            size[1],
            size[0],
            f.name,
            w,
            h,
        )


def _yours(args: argparse.Namespace) -> Path:
    """Your own images as cfx reads them (the range, channels and size every command
    sees), the first ``--n``, titled by file name and label, masks outlined; what was read
    is said on stderr."""
    import torch

    from cfx.data.image_files import IMAGE_FILES, image_files, load_masks_for, read_images
    from cfx.data.io import load_images, load_labels
    from cfx.inversion import unit_range_notice
    from cfx.viz import image_preview

    given = given_flags(args, "seed", "tagged")
    if given:
        raise ValueError(
            f"{', '.join(f'`{f}`' for f in given)} {_shape_verb(given)} the brain preview; your "
            "images are shown as they are"
        )
    out, n = _figure(args)
    path = Path(args.dataset)
    flag = "dataset"
    if path.is_dir() or (path.is_file() and path.suffix.lower() in IMAGE_FILES):
        # all of them, for labels matched by file name (one image file: itself)
        every = image_files(path, flag) if path.is_dir() else [path]
        first = every[:n]
        x = read_images(first, None, name=flag)  # (n, C, H, W), the first file's channels
        files: list[Path] | None = first
        total = len(every)
        _other_sizes(every[n:], tuple(x.shape[-2:]), every[0], flag)
    elif path.suffix.lower() in (".npy", ".pt"):
        every, files = None, None
        x = load_images(path, name=flag, batch=True)  # (N, H, W) too: grey images
        total = int(x.shape[0])
    else:
        raise UnknownNameError(
            f"unknown dataset {args.dataset!r}; expected one of {DATASETS}, a folder of image "
            "files, an image file or a .npy/.pt batch"
            + ("" if path.exists() else " (no such file or folder)")
        )
    if x.shape[1] not in (1, 3):
        last = x.shape[-1] in (1, 3, 4)  # (N, H, W, C) read as N images of H channels
        hint = (
            "channels last (N, H, W, C)? save x.transpose(0, 3, 1, 2)"
            if last
            else f"these have {x.shape[1]} (the commands take them): save one channel, "
            "x[:, :1], or three to look at them"
        )
        raise ValueError(
            f"`{flag}` {path} holds {tuple(x.shape)}: images of 1 or 3 channels (N, C, H, W) "
            f"are shown; {hint}"
        )
    unit_range_notice(x, flag)
    titles = [f.name for f in every] if every is not None else [f"#{i}" for i in range(total)]
    if args.labels is not None:
        # negative labels are refused as read: bincount failed after the figure was written
        labels = load_labels(args.labels, total, name="--labels", files=every)
        titles = [f"{t}, label {k}" for t, k in zip(titles, labels.tolist(), strict=True)]
    masks = None
    if args.masks is not None:
        rest = None if every is None else every[n:]  # their masks are not "unused"
        masks = load_masks_for(Path(args.masks), x, files, "--masks", images_name=flag, unread=rest)
    shown = x[:n]
    out = image_preview(
        shown,
        out_file(out),
        titles=titles[:n],
        masks=None if masks is None else masks[:n],
        columns=8,
    )
    lo, hi = float(shown.min()), float(shown.max())  # a folder's others are not read
    counts = ""
    if args.labels is not None:
        k = torch.bincount(labels, minlength=2).tolist()
        counts = " (labels: " + ", ".join(f"{c} of class {i}" for i, c in enumerate(k) if c) + ")"
    print(
        f"{path}: {counted(total, 'image')}{counts}; the {shown.shape[0]} shown: {x.shape[1]} "
        f"channel(s), {x.shape[-1]}x{x.shape[-2]} (width x height), values {lo:.2f} to "
        f"{hi:.2f} as cfx reads them (it expects -1 to 1)",
        file=sys.stderr,
    )
    return out


def run_preview(args: argparse.Namespace) -> int:
    if args.dataset not in DATASETS:
        print(_yours(args))
        return 0
    if given_flags(args, "labels", "masks"):
        raise ValueError(
            "`--labels`/`--masks` go with your own images; the built-in datasets bring their own"
        )
    built_in_named(args.dataset, "preview")
    if args.dataset == "brain":
        from cfx.data.brain import MARKER_BOX, make_dataset
        from cfx.viz import brain_preview

        out, n = _figure(args)
        seed = 0 if args.seed is None else args.seed
        d = make_dataset(n, seed=seed, tagged=bool(args.tagged))
        out = brain_preview(
            d.images, d.labels, d.masks, d.tags, out_file(out), marker_box=MARKER_BOX
        )
    elif args.dataset == "credit":
        from cfx.data.credit import load_german, summary_table

        given = given_flags(args, "n", "seed", "tagged")
        if given:  # they would do nothing here
            raise ValueError(
                f"{', '.join(f'`{f}`' for f in given)} {_shape_verb(given)} the brain preview; "
                "the credit summary covers the whole German credit table"
            )
        out = Path("preview.csv") if args.out is None else Path(args.out)
        if out.suffix.lower() != ".csv" and not out.is_dir():  # a folder: out_file names it
            raise ValueError(f"`--out` for credit is a .csv table, got {out.name!r}")
        table = summary_table(load_german()).to_csv()  # read first: a failure makes no folder
        write_atomic(out_file(out, example="preview.csv"), table)
    else:
        raise UnknownNameError(f"unknown dataset {args.dataset!r}; expected one of {DATASETS}")
    print(out)
    return 0
