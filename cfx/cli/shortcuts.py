"""``cfx shortcuts``: does a classifier flip through the scanner marker instead of the lesion?"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from cfx.cli.console import keeping_warnings, warnings_markdown
from cfx.cli.models import checked_source, load_model
from cfx.cli.options import YES_NO, class_names_flag, given_flags
from cfx.cli.paths import add_output_options, not_a_file, not_the_input_folder, out_folder
from cfx.errors import UnknownNameError, check_int, check_real, counted
from cfx.files import write_atomic

if TYPE_CHECKING:
    from torch import Tensor

    from cfx.shortcuts import MarkerCell, ShortcutReport
    from cfx.types import Classifier

log = logging.getLogger(__name__)
METHODS = ("gradient", "monotone")
CLASS_NAMES = ("healthy", "tumour")
USER_FLAGS = ("labels", "marker_mask", "marker_present", "lesion_masks")
"""The options that describe ``--input`` images (and only them)."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "shortcuts",
        help="report where counterfactual paths change the image: lesion, marker or elsewhere",
        description="Walk tagged brain slices across the classifier's boundary and report "
        "where each path changes the image (the lesion, the scanner-marker corner or "
        "elsewhere) and where the saliency of its decision lies. A classifier is flagged when, "
        "in some group of source images (by class and marker) with --min-paths flipped paths, "
        "at least --flag-rate of them go via the marker (the marker region gets "
        "--min-enrichment times its area share of the change) or have their flip undone by "
        "putting the marker region back. The paths stop once the target probability passes "
        "0.95, close to the boundary (report.md gives where they end). summary.json and "
        "report.md give the counts behind the verdict. Your own "
        "images go in with --input, --labels, --marker-mask (the region you suspect, e.g. a "
        "hospital's tag) and --marker-present (which images carry it).",
    )
    p.add_argument(
        "--classifier",
        default="brain-cnn-tagged",
        help="classifier to audit: a zoo name, a model folder (DIR or DIR/model) or a hub id",
    )
    p.add_argument(
        "--generator",
        default="brain-gan",
        help="generator (its `encode`, if any, starts the inversion; without one the "
        "inversion starts from the zero latent and needs --inversion-steps > 0): a zoo name, "
        "a model folder or a hub id",
    )
    p.add_argument(
        "--method",
        default="monotone",
        choices=METHODS,
        help="path explainer (monotone, Option 2, takes about 1.9x the time of gradient, "
        "Option 1; BENCHMARKS.md)",
    )
    p.add_argument(
        "--saliency",
        default="gradient",
        help="saliency method, one of the cfx saliency compare --methods names",
    )
    p.add_argument("--steps", type=int, default=10, help="frames T after the start")
    p.add_argument(
        "--inversion-steps", type=int, default=100, help="latent optimisation steps (0: encoder)"
    )
    p.add_argument(
        "--n", type=int, default=None, help="tagged test slices, both classes (default: 64)"
    )
    p.add_argument(
        "--seed", type=int, default=None, help="seed of the brain slices (default: 2 = test)"
    )
    p.add_argument(
        "--input",
        type=Path,
        default=None,
        help="your images instead of the built-in slices: an image file, a folder of them "
        "(in name order as text, so slice_10 before slice_2: --labels and --marker-present "
        "follow that order; summary.json lists it) or a .npy/.pt batch, read at the "
        "generator's size as `cfx trajectory --input`; needs --labels, --marker-mask and "
        "--marker-present",
    )
    p.add_argument(
        "--labels",
        type=Path,
        default=None,
        help="--input's classes, 0 or 1 per image; each image is walked into the other "
        "class. A .npy/.pt array in the images' order, or a .csv/.txt: one label per line in "
        "that order, or two columns, file name and label (matched to the files by name)",
    )
    p.add_argument(
        "--marker-mask",
        type=Path,
        default=None,
        help="the region suspected of being a shortcut, one mask shared by every --input "
        "image: a mask file (0 and one other value; drawn at the scans' size, it is resized "
        "with them) or a .npy/.pt (H, W) of bool or 0/1. It must be small: a path goes via "
        "the marker when the region gets --min-enrichment times its area share of the change",
    )
    p.add_argument(
        "--marker-present",
        type=Path,
        default=None,
        help="which --input images carry the suspected feature: 0 or 1 (yes/no, y/n) per image, "
        "given as --labels are (.npy/.pt, or .csv/.txt by order or by file name)",
    )
    p.add_argument(
        "--lesion-masks",
        type=Path,
        default=None,
        help="optional: where the real evidence lies in each --input image (a folder of mask "
        "files named as the images, or a .npy/.pt batch); without it, change outside the "
        "marker region counts as elsewhere",
    )
    p.add_argument(
        "--marker-name",
        default=None,
        help="what the verdict calls the marker region, e.g. 'ruler' or 'hospital tag' "
        "(default: 'scanner marker' for the built-in slices, 'marker' with --input)",
    )
    p.add_argument(
        "--class-names",
        default=None,
        help="the two classes' names, comma-separated, for the report (default: healthy,tumour)",
    )
    p.add_argument(
        "--min-enrichment",
        type=float,
        default=4.0,
        help="a path goes via the marker when the region gets this many times its area share "
        "of the change (the restoring test does not depend on it)",
    )
    p.add_argument(
        "--flag-rate",
        type=float,
        default=0.5,
        help="share of a cell's paths, via the marker or undone by restoring it, that flags",
    )
    p.add_argument("--min-paths", type=int, default=3, help="counted paths a cell needs to flag")
    add_output_options(p, "cfx-shortcuts", "summary.json, report.md and examples.png")
    p.set_defaults(run=run_shortcuts)


def _finite(value: float) -> float | None:
    """JSON has no NaN: undefined numbers become null; the rest keep 6 significant digits
    (a float32 share of 1/6 was written 0.1666666716337204)."""
    if isinstance(value, int):  # a count stays a count
        return value
    return None if math.isnan(value) else float(f"{float(value):.6g}")


def _cell(value: float, digits: int = 2) -> str:
    return "–" if math.isnan(value) else f"{value:.{digits}f}"


def _percent(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.0%}"


def path_rows(
    report: ShortcutReport, labels: Tensor, files: list[Path] | None, names: tuple[str, ...]
) -> list[dict[str, object]]:
    """One entry per image, in the inputs' order: which image, its class and marker, where
    its path started and ended, and whether it counted, went via the marker and was undone by
    restoring the marker region (NaN as null)."""
    probs = report.paths.probs  # (B, T+1) target probability along the path
    rows: list[dict[str, object]] = []
    for i in range(len(labels)):
        rows.append(
            {
                "image": i if files is None else files[i].name,
                "label": names[int(labels[i])],
                "classified_as": names[int(report.source_class[i])],
                "target": names[int(report.target[i])],
                "marker_present": bool(report.marker_present[i]),
                "p_target_start": _finite(round(float(probs[i, 0]), 4)),
                "p_target_end": _finite(round(float(probs[i, -1]), 4)),
                "counted": bool(report.counted[i]),
                "via_marker": bool(report.via_marker[i] & report.counted[i]),
                "undone": bool(report.undone[i] & report.counted[i]),
                "marker_share_of_change": _finite(round(float(report.change.marker[i]), 4)),
                "marker_enrichment": _finite(round(float(report.change_enrichment.marker[i]), 3)),
            }
        )
    return rows


def cell_json(
    cell: MarkerCell, names: dict[int, str]
) -> dict[str, float | int | bool | str | None]:
    """One cell for ``summary.json`` (NaN as null), with its direction spelled out (``names``:
    :func:`cfx.shortcuts.report.direction_names`)."""
    fields = asdict(cell)
    del fields["marker_name"]  # once, at the top of summary.json
    out = {k: _finite(v) if isinstance(v, float) else v for k, v in fields.items()}
    return {"direction": names.get(cell.target, f"target {cell.target}")} | out


def cells_markdown(cells: tuple[MarkerCell, ...], min_paths: int, names: dict[int, str]) -> str:
    """The table of ``report.md`` with one row per (direction, marker on the source) cell."""
    lines = [
        "| direction | source images | paths | counted | via marker | restoring the marker "
        "region undoes | median marker enrichment | median lesion-mask enrichment | |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for c in cells:
        if c.flagged:
            note = "**flags**"
        elif c.enough_paths:
            note = "below the flag rate"
        else:
            note = f"under {min_paths} counted"
        row = [
            names.get(c.target, f"target {c.target}"),
            c.source,
            str(c.n_paths),
            str(c.n_counted),
            f"{c.n_via_marker} ({_percent(c.via_rate)})",
            f"{c.n_undone} ({_percent(c.undo_rate)})",
            _cell(c.median_marker_enrichment, 1),
            _cell(c.median_lesion_enrichment, 1),
            note,
        ]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def direction_markdown(
    name: str, summary: dict[str, float], verdict: str, dilation: int, lesions: bool = True
) -> str:
    """One direction's section of ``report.md``: counts, verdict and the region table
    (``lesions``: lesion masks were given, else that row says none were)."""
    s = summary
    lines = [
        f"## {name}",
        "",
        f"{counted(s['n_paths'], 'path')}: {counted(int(s['n_input_in_target']), 'input')} "
        "already in the "
        f"target class, {int(s['n_reconstruction_in_target'])} more whose reconstruction "
        f"G(z_0) already is, {int(s['n_started_outside'])} started outside it, "
        f"{int(s['n_counted'])} counted (flipped). Flip rate {_percent(s['flip_rate'])}, "
        f"via the marker {_percent(s['marker_rate'])} (both cells pooled), restoring the "
        f"marker alone undoes {_percent(s['marker_undo_rate'])} of the counted flips.",
        "",
        f"**{verdict}**",
        "",
        "| region | area | change share | change enrichment | saliency share "
        "| saliency enrichment |",
        "|---|---|---|---|---|---|",
    ]
    labels = {  # "lesion mask": a class may be called "lesion" too
        "lesion": f"lesion mask (+{dilation} px)" if lesions else "lesion mask (none given)",
        "marker": "marker region",
        "elsewhere": "elsewhere",
    }
    for region, label in labels.items():
        cells = [
            _cell(s[f"median_area_{region}"], 3),
            _cell(s[f"median_change_{region}"]),
            _cell(s[f"median_change_enrichment_{region}"], 1),
            _cell(s[f"median_saliency_{region}"]),
            _cell(s[f"median_saliency_enrichment_{region}"], 1),
        ]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Medians per region (so a column need not sum to 1); change over the counted paths, "
        "saliency and area over all paths. Enrichment = share / area (1 = what a uniform "
        "change gives).",
        "",
    ]
    return "\n".join(lines)


GAP = 0.5
"""A class's accuracy with the marker this far from its accuracy without is said beside a
verdict that does not flag the classifier."""


GAP_P = 0.01
"""...and Fisher's exact test puts the chance of a gap that large, were the marker irrelevant,
below this."""


def marker_accuracy_gaps(
    pred: Tensor, labels: Tensor, present: Tensor, names: tuple[str, ...]
) -> list[str]:
    """Each class whose images with the marker are classified right at least :data:`GAP`
    more or less often than those without, where Fisher's exact test gives such a gap a
    chance below :data:`GAP_P` (it needed 10 images a group: 9 of 9 against 1 of 15 went
    unsaid), in words: "healthy images with the marker are classified right in 0% (4
    images), without it in 100% (5)"."""
    from scipy.stats import fisher_exact

    from cfx.metrics import group_accuracies  # the report's own accuracies by group

    acc = group_accuracies(
        pred, labels, present, class_names=names, attribute_names=("no_marker", "marker")
    )
    out = []
    for k, name in enumerate(names):
        groups = [(labels == k) & present, (labels == k) & ~present]
        sizes = [int(g.sum()) for g in groups]
        if min(sizes) == 0:
            continue
        right = [int((pred[g] == k).sum()) for g in groups]
        table = [[right[0], sizes[0] - right[0]], [right[1], sizes[1] - right[1]]]
        marked, unmarked = acc[f"{name}_marker"], acc[f"{name}_no_marker"]
        if abs(marked - unmarked) >= GAP and float(fisher_exact(table).pvalue) < GAP_P:
            out.append(
                f"{name} images with the marker are classified right in {marked:.0%} "
                f"({sizes[0]} images), without it in {unmarked:.0%} ({sizes[1]})"
            )
    return out


def reachable_enrichment(share: float, min_enrichment: float, region: str) -> None:
    """An error when a marker region covering ``share`` of the image cannot reach
    ``--min-enrichment`` even holding all of a path's change (enrichment is share of the
    change / ``share``, at most 1 / ``share``): then no path could go via the marker."""
    if share * min_enrichment >= 1:
        raise ValueError(
            f"`--min-enrichment` {min_enrichment:g} cannot be reached: {region} covers "
            f"{share:.1%} of the image, so a path changing only it gets {1 / share:.3g}x its "
            "area share at most, and none could go via the marker"
            + ("; mark the suspected region only (inverted, 0 = region?)" if share > 0.5 else "")
        )


def class_count(classifier: Classifier, image: Tensor) -> int | None:
    """How many classes ``classifier`` scores, read off one ``image``; None when it cannot
    read it (the audit names that error)."""
    import torch

    from cfx.calls import class_logits, frozen

    try:
        with frozen(classifier), torch.no_grad():
            return int(class_logits(classifier, image).shape[1])
    except (RuntimeError, ValueError, TypeError):
        return None


def class_names(text: str | None) -> tuple[str, str]:
    """``--class-names``: two non-empty names, comma-separated."""
    if text is None:
        return CLASS_NAMES
    first, second = class_names_flag(text)
    return first, second


def check_sources(args: argparse.Namespace) -> list[Path] | None:
    """Built-in slices (``--n``/``--seed`` filled in) or ``--input`` images with what describes
    them; a flag that would do nothing with the others is an error. Returns ``--input``'s image
    files (None for a batch or the built-in slices)."""
    if args.input is None:
        given = given_flags(args, *USER_FLAGS)
        if given:
            raise ValueError(
                f"{', '.join(given)} {'describes' if len(given) == 1 else 'describe'} your "
                "images: give them with --input, or drop "
                f"{'it' if len(given) == 1 else 'them'} for the built-in slices"
            )
        args.n = 64 if args.n is None else args.n
        args.seed = 2 if args.seed is None else args.seed
        check_int("--n", args.n)
        return None
    given = given_flags(args, "n", "seed")
    if given:
        raise ValueError(
            f"{' and '.join(f'`{g}`' for g in given)} "
            f"{'chooses' if len(given) == 1 else 'choose'} the built-in "
            f"slices; with `--input` the images are yours, so drop {' and '.join(given)}"
        )
    what = {
        "labels": "the images' classes, each walked into the other",
        "marker_mask": "the region suspected of being a shortcut",
        "marker_present": "which images carry that region",
    }
    missing = [d for d in what if getattr(args, d) is None]
    if missing:
        raise ValueError(
            "`--input` needs "
            + " and ".join(f"--{d.replace('_', '-')} ({what[d]})" for d in missing)
        )
    from cfx.data.image_files import check_input_path

    files = check_input_path(args.input)
    not_the_input_folder(args.out, args.input)
    not_the_input_folder(args.out, args.lesion_masks, "--lesion-masks")
    not_a_file(args.out)  # the folder is made once the inputs are read
    return files


def user_sources(
    args: argparse.Namespace, shape: tuple[int, int, int], files: list[Path] | None
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """``--input`` images at the generator's ``shape`` ``(C, H, W)``, their labels, lesion
    masks (all False without ``--lesion-masks``), the marker region ``(1, 1, H, W)`` and
    which images carry the marker."""
    import torch

    from cfx.cli.trajectory import load_input
    from cfx.data.image_files import image_size, load_masks_for, load_region_for
    from cfx.data.io import load_labels

    x = load_input(args.input, shape, files=files)
    n, size = x.shape[0], (shape[1], shape[2])
    labels = load_labels(args.labels, n, name="--labels", files=files)
    present = load_labels(
        args.marker_present, n, name="--marker-present", files=files, words=YES_NO
    )  # yes/no read too: the first "yes" was taken for a header, then "no" for a class name
    for flag, values in (("--labels", labels), ("--marker-present", present)):
        bad = ~((values == 0) | (values == 1))
        if bool(bad.any()):
            rows = torch.nonzero(bad).flatten().tolist()
            where = ", ".join(
                f"{'row ' + str(i) if files is None else files[i].name} ({values[i].item():g})"
                for i in rows[:5]
            ) + (", ..." if len(rows) > 5 else "")
            raise ValueError(
                f"`{flag}` must be 0 or 1 per image, got values "
                f"{sorted(set(values.unique().tolist()))}: {where}"
            )
    drawn_on = None if files is None else image_size(files[0])  # the scans' own size
    marker = load_region_for(
        args.marker_mask, size, "--marker-mask", resize=True, drawn_on=drawn_on
    )
    if args.lesion_masks is None:
        lesion = torch.zeros(n, 1, *size, dtype=torch.bool)
    else:
        lesion = load_masks_for(args.lesion_masks, x, files, "--lesion-masks", resize=True)
    return x, labels, lesion, marker, present.bool()


@keeping_warnings  # report.md and summary.json repeat what the run warned
def run_shortcuts(args: argparse.Namespace, notes: list[str]) -> int:
    from cfx.cli.saliency import method_name
    from cfx.data.brain import make_dataset
    from cfx.metrics import group_accuracies
    from cfx.saliency.compare import METHODS as SALIENCY_METHODS
    from cfx.saliency.compare import build_method
    from cfx.shortcuts import ShortcutAudit
    from cfx.shortcuts.audit import CROSSING_MARGIN
    from cfx.shortcuts.report import direction_names
    from cfx.trajectory import GradientAscent, MonotonePath
    from cfx.viz.shortcuts import shortcut_examples

    # named as typed, before any model loads (the audit's own checks say `flag_rate`, ...)
    files = check_sources(args)
    names = class_names(args.class_names)
    dirs = direction_names(names)
    marker_name = args.marker_name
    if marker_name is None:
        marker_name = "scanner marker" if args.input is None else "marker"
    elif not marker_name.strip():
        raise ValueError("`--marker-name` must name the region, got an empty name")
    check_int("--steps", args.steps)
    check_int("--inversion-steps", args.inversion_steps, minimum=0)
    check_real("--min-enrichment", args.min_enrichment, low=0.0, open_low=True)
    check_real("--flag-rate", args.flag_rate, low=0.0, high=1.0, open_low=True)
    check_int("--min-paths", args.min_paths)
    if method_name(args.saliency) not in SALIENCY_METHODS:
        raise UnknownNameError(
            f"`--saliency`: unknown saliency method {args.saliency!r}; expected one of "
            f"{SALIENCY_METHODS}"
        )
    args.saliency = method_name(args.saliency)  # GradCAM reads as gradcam
    t0 = time.perf_counter()
    # both checked before either loads; resolved once (loading a name again repeats notices)
    generator_source = checked_source("--generator", args.generator, "generator")
    classifier_source = checked_source("--classifier", args.classifier, "classifier")
    generator = load_model("--generator", generator_source)
    classifier = load_model("--classifier", classifier_source)
    from cfx.inversion import zero_image

    k = class_count(classifier, zero_image(generator))
    if k is not None and k != 2:  # it said `class_names` must name 3, and --class-names takes 2
        raise ValueError(
            f"`--classifier` {args.classifier} has {k} classes; cfx shortcuts walks each image "
            "into the other of two classes, so it audits two-class classifiers (from Python, "
            "cfx.shortcuts.ShortcutAudit takes a target class per image)"
        )

    # a classifier trained at another size than the generator's frames: the explainer says so
    common = {
        "steps": args.steps,
        "margin": CROSSING_MARGIN,  # as ShortcutAudit's own explainers
        "inversion_steps": args.inversion_steps,
        "show_progress": not args.no_progress,
    }
    if args.method == "gradient":
        explainer: GradientAscent | MonotonePath = GradientAscent(generator, classifier, **common)
    elif args.method == "monotone":
        explainer = MonotonePath(generator, classifier, **common)
    else:
        raise UnknownNameError(f"unknown method {args.method!r}; expected one of {METHODS}")
    audit = ShortcutAudit(
        generator,
        classifier,
        explainer=explainer,
        saliency=build_method(args.saliency, classifier),
        min_enrichment=args.min_enrichment,
        flag_rate=args.flag_rate,
        min_paths=args.min_paths,
        class_names=names,
        marker_name=marker_name,
    )
    if args.input is not None:
        c, h, w = zero_image(generator).shape[1:]
        x, labels, lesion, marker, present = user_sources(args, (c, h, w), files)
        reachable_enrichment(float(marker.float().mean()), args.min_enrichment, "`--marker-mask`")
        out_folder(args.out)  # the inputs read: an unwritable --out fails before the work
        report = audit.audit(
            x, 1 - labels, lesion_masks=lesion, marker_masks=marker, marker_present=present
        )
        n = x.shape[0]
        source = (
            f"{n} images of `{args.input}` (classes from `{args.labels}`), each walked into "
            f"the other class. The marker region is `{args.marker_mask}` ({int(marker.sum())} "
            f"of {h * w} pixels), carried by {int(present.sum())} of the images "
            f"(`{args.marker_present}`); "
            + (
                f"lesions from `{args.lesion_masks}`."
                if args.lesion_masks is not None
                else "no lesion masks, so change outside the marker region counts as elsewhere."
            )
        )
    else:
        from cfx.data.brain import marker_mask

        box = float(marker_mask().float().mean())
        reachable_enrichment(box, args.min_enrichment, "the built-in slices' marker box")
        out_folder(args.out)  # before the work: an unwritable --out fails now
        # marker independent of the label: a clean classifier has no reason to touch it
        data = make_dataset(
            args.n,
            seed=args.seed,
            tagged=True,
            tag_correlation=0.5,
            show_progress=not args.no_progress,
        )
        labels, present, n = data.labels, data.tags, args.n
        report = audit.audit(
            data.images, 1 - labels, lesion_masks=data.masks, marker_present=present
        )
        source = (
            f"{n} tagged test slices (brain seed {args.seed}, marker independent of the label), "
            "each walked into the other class."
        )

    groups = group_accuracies(
        report.source_class,
        labels,
        present,
        class_names=names,
        attribute_names=("no_marker", "marker"),
    )

    if report.status() != "flagged":
        for gap in marker_accuracy_gaps(report.source_class, labels, present, names):
            log.warning(
                "the verdict reads the paths only, but %s: the classifier may read something "
                "that comes with the marker, which the paths did not show%s",
                gap,
                " (is --marker-mask where the marker is?)" if args.input is not None else "",
            )

    out: Path = args.out
    verdict = f"{args.classifier}: {report.verdict}"  # "...: no shortcut found: ..." reads
    by_direction: dict[str, dict[str, float | str | None]] = {}
    sections = []
    for t, name in dirs.items():
        where = report.target == t
        summary = report.summary(where)
        text = report.describe(where)
        by_direction[name] = {k: _finite(v) for k, v in summary.items()} | {
            "status": report.status(where),
            "verdict": text,
        }
        lesions = args.input is None or args.lesion_masks is not None
        sections.append(direction_markdown(name, summary, text, audit.lesion_dilation, lesions))
    # the figure first: the files below keep every warning of the run, its own too
    shortcut_examples(report, out / "examples.png", directions=dirs, files=files)
    ends = report.paths.probs[report.counted, -1]  # (n_counted,)
    end_median = _finite(round(float(ends.median()), 4)) if len(ends) else None
    result = {
        "classifier": args.classifier,
        "generator": args.generator,
        "method": args.method,
        "saliency": args.saliency,
        "steps": args.steps,
        "margin": CROSSING_MARGIN,  # the target probability the paths stop past
        "p_target_end_median": end_median,  # where the counted paths' last frames are
        "inversion_steps": args.inversion_steps,
        "n": n,
        "seed": args.seed,
        "input": None if args.input is None else str(args.input),
        "input_files": None if files is None else [f.name for f in files],  # the rows' order
        **{d: None if getattr(args, d) is None else str(getattr(args, d)) for d in USER_FLAGS},
        "class_names": list(names),
        "marker_name": marker_name.strip(),
        "min_enrichment": args.min_enrichment,
        "flag_rate": args.flag_rate,
        "min_paths": args.min_paths,
        "n_counted": int(report.counted.sum()),
        "marker_rate": _finite(report.marker_rate),
        "flagged": report.flagged,
        "status": report.status(),  # flagged, clean, inconclusive or no verdict
        "verdict": verdict,
        "cells": [cell_json(c, dirs) for c in report.cells()],
        "accuracy_by_group": {k: _finite(v) for k, v in groups.items()},
        "directions": by_direction,
        "paths": path_rows(report, labels, files, names),
        "warnings": list(notes),  # what the run printed to stderr, e.g. about its inputs
        "seconds": time.perf_counter() - t0,
    }
    write_atomic(out / "summary.json", json.dumps(result, indent=2) + "\n")
    ending = ""  # where the paths end: past the margin, a monotone path's by more
    if end_median is not None:
        ending = f": the counted paths' last frames are at a median of {end_median:.3f}"
        if args.method == "monotone":
            ending += " (a monotone path's last frame must stay past it also when blurred)"
    header = [
        f"# Shortcut report: `{args.classifier}`",
        "",
        f"Generator `{args.generator}`, paths `{args.method}` (T = {args.steps}), saliency "
        f"`{args.saliency}`; {source}",
        "",
        # --marker-name names the region in the verdict; the tables, figure and JSON keys
        # say "marker"
        (
            ""
            if args.marker_name is None or marker_name.strip().lower() == "marker"
            else f"The marker below is the {marker_name.strip()}. "
        )
        + "A path goes via the marker when the marker region holds at least "
        f"{args.min_enrichment:g}x "
        "its area share of the pixel change |G(z_T) - G(z_0)|. Paths count when they start "
        "outside the target class and flip into it; they are split by direction and by whether "
        "the source image carries the marker (it can only be removed where it is, or added "
        "where it is not), and the classifier is flagged when, in some cell with at least "
        f"{args.min_paths} counted paths, at least {args.flag_rate:.0%} of them go via the "
        "marker, or have their flip undone by restoring the marker region (pasting the "
        "reconstruction G(z_0)'s region back into the last frame): the same question asked "
        f"by intervention. Paths stop once the target probability passes {CROSSING_MARGIN:g}, "
        f"close to the boundary{ending}.",
        "",
        f"**Verdict: {verdict}**",
        "",
        cells_markdown(report.cells(), args.min_paths, dirs),
        "",
        "Accuracy on these images by group (paths start only where the classifier is not "
        "already in the target class, so a marker that alone flips a prediction shows here "
        "rather than in the paths): "
        + ", ".join(f"{k} {_percent(v)}" for k, v in groups.items())
        + ".",
        "",
        "![examples](examples.png)",
        "",
    ]
    header[2:2] = warnings_markdown(notes)  # for whoever reads the report later
    write_atomic(out / "report.md", "\n".join(header + sections))
    print(verdict)
    print(f"wrote {out}/summary.json, report.md, examples.png")
    return 0
