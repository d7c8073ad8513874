"""Model-parameter randomisation test: Adebayo, Gilmer, Muelly, Goodfellow, Hardt & Kim,
"Sanity Checks for Saliency Maps", NeurIPS 2018 (cascading randomisation).

Starting from the output layer, the parameters of one more layer are re-drawn at each stage
(on a deep copy; the user's model is never touched), and the method's maps on the randomised
model are compared with the original maps by Spearman rank correlation, of the signed maps and
of their absolute values. A method whose maps depend on what the model learned decorrelates
quickly; one whose maps mostly reflect the input (an edge detector, the image itself) does not.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from cfx.errors import MapQualityNotice, check, check_flag, check_integer, counted
from cfx.reprs import short_repr
from cfx.saliency._common import (
    SaliencyMethod,
    check_built_on,
    check_editable,
    check_generator,
    check_input,
    frozen,
    notices_given,
    replayed_maps,
    resolve_all,
)
from cfx.saliency.metrics import spearman, top_k_intersection
from cfx.training.init import drawn
from cfx.types import Target


@dataclass(frozen=True)
class RandomisationResult:
    """Spearman correlations ``(L, B)`` after randomising ``layers[: l + 1]`` (output first)."""

    __repr__ = short_repr  # shapes and counts, not every field in full

    layers: tuple[str, ...]  # parameterised modules, in randomisation order (output first)
    spearman: Tensor  # (L, B) signed maps vs the original maps
    spearman_abs: Tensor  # (L, B) absolute maps vs the original absolute maps
    original: Tensor  # (B, 1, H, W) maps of the trained model
    randomised: Tensor  # (L, B, 1, H, W) maps after each stage: the cascade's figure

    def mean(self) -> tuple[list[float], list[float]]:
        """Mean over examples per stage: ``(signed, absolute)`` lists of length ``L`` (a blank
        map's Spearman counts as 0, see :attr:`blank`)."""
        return self.spearman.mean(1).tolist(), self.spearman_abs.mean(1).tolist()

    @property
    def blank(self) -> Tensor:
        """``(L, B)`` bool: the pair of maps at each stage holds a blank (constant) map, the
        original's or the randomised one's. A blank map ranks nothing, so its Spearman (0 by
        convention) says nothing about the weights: ReX's maps go blank once the model no
        longer predicts the class."""
        return blank_maps(self.original)[None] | blank_maps(self.randomised.flatten(0, 1)).view(
            self.spearman.shape
        )

    @property
    def top_kept(self) -> Tensor:
        """``(L, B)``: the share of the original ``|map|``'s top :data:`TOP_SHARE` of pixels
        still in the top after each stage (:func:`~cfx.saliency.metrics.top_k_intersection`;
        chance is :data:`TOP_SHARE`)."""
        return torch.stack([top_kept(self.original, maps) for maps in self.randomised])

    def verdict(self) -> str:
        """:func:`reading` of the last stage (every listed layer randomised), over the images
        whose maps are not blank (:attr:`blank`), with a caveat when the decorrelated maps
        keep their top pixels (:data:`TOP_SURVIVES`)."""
        return reading_of(
            self.spearman[-1],
            self.spearman_abs[-1],
            self.blank[-1],
            "weight-dependent",
            self.top_kept[-1],
        )


SURVIVES = 0.5
"""A mean Spearman of at least this size (either sign) with the original maps: the map
survived the randomisation."""


TOP_SHARE = 0.02
"""The share of pixels whose survival :func:`top_kept` measures (Ghorbani et al.'s top-k)."""

TOP_SURVIVES = 0.25
"""A mean share of the original top pixels kept of at least this size qualifies a
"weight-dependent" reading: chance is :data:`TOP_SHARE` (2 %), so this is 12.5x chance.
Spearman over every pixel is ruled by the background's ranks, so a map can decorrelate while
its salient structure survives (a session-55 audit saw Integrated Gradients at Spearman 0.09
keep 43 % of its top pixels; that audit quoted chance as 3 %, from its own count). A caveat
threshold, not one calibrated on data; the cascade figure shows what survived."""


def top_kept(original: Tensor, other: Tensor) -> Tensor:
    """``(B,)``: the share of the top :data:`TOP_SHARE` pixels of ``|original|`` that are
    also in the top of ``|other|`` (maps ``(B, 1, H, W)``)."""
    k = max(1, round(TOP_SHARE * original[0].numel()))
    return top_k_intersection(original.abs(), other.abs(), k)


def reading(signed: float, absolute: float, dependent: str) -> str:
    """Adebayo et al.'s reading of mean Spearman correlations with the original maps after a
    randomisation: ``dependent`` (e.g. "weight-dependent") when both the signed and the
    absolute maps decorrelate (``|rho| < SURVIVES``); a map whose absolute values survive
    reflects the input in part (Gradient x Input's ``|map|`` follows ``|x|``), one whose
    signed values survive, the input."""
    if abs(signed) < SURVIVES and abs(absolute) < SURVIVES:
        return dependent
    if abs(signed) < SURVIVES:
        return "partly input-driven (|map| survives randomisation)"
    return "input-driven"


@contextmanager
def quiet_compared_maps() -> Iterator[None]:
    """Hold back what the methods say about the quality of their own maps (Integrated
    Gradients' completeness, RISE's saturated probability): a randomised model's maps are
    compared with the trained model's, not read, and the notices would repeat per stage."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MapQualityNotice)
        yield


def blank_maps(maps: Tensor) -> Tensor:
    """``(B,)`` bool: which maps ``(B, 1, H, W)`` are constant (all zero, say)."""
    flat = maps.flatten(1)
    return flat.amax(1) == flat.amin(1)


def reading_of(
    signed: Tensor, absolute: Tensor, blank: Tensor, dependent: str, kept: Tensor | None = None
) -> str:
    """:func:`reading` of per-image Spearman correlations ``(B,)``, leaving out the images
    whose pair of maps holds a blank one (``blank`` ``(B,)``), which are counted in the text;
    "undefined" when every pair does. ``kept`` ``(B,)``: :func:`top_kept` per image; a
    ``dependent`` reading whose maps keep :data:`TOP_SURVIVES` of their top pixels or more
    says so."""
    n, k = int(blank.numel()), int(blank.sum())
    if k == n:
        return (
            f"undefined: for all {n} images the trained or the randomised model's map is blank "
            "(constant), so no ranking is compared"
        )
    keep = ~blank
    rho, rho_abs = float(signed[keep].mean()), float(absolute[keep].mean())
    said = reading(rho, rho_abs, dependent)
    if said == dependent and kept is not None and float(kept[keep].mean()) >= TOP_SURVIVES:
        said += (
            f" by rank, yet {float(kept[keep].mean()):.0%} of the top {TOP_SHARE:.0%} pixels of "
            f"|map| stay in the top (chance {TOP_SHARE:.0%}): the salient structure survives "
            "in part; look at the maps"
        )
    if k == 0:
        return said
    return (  # the means it read, which differ from those over every image
        f"{said} over {counted(n - k, 'image')} without a blank (constant) map (Spearman "
        f"{rho:.2f}, of |map| {rho_abs:.2f}); {k} left out"
    )


def parameterised_layers(model: nn.Module) -> list[str]:
    """Names of modules that own parameters directly, output side first (reverse registration
    order, the usual forward order of a feed-forward network)."""
    names = [
        name
        for name, module in model.named_modules()
        if any(True for _ in module.parameters(recurse=False))
    ]
    return names[::-1]


@torch.no_grad()
def randomise_layer(module: nn.Module, generator: torch.Generator) -> None:
    """Re-draw ``module``'s own parameters: weights with >1 dims from PyTorch's default
    kaiming-uniform scheme, conv/linear biases uniform in +-1/sqrt(fan_in), other vectors
    (normalisation scales and shifts) from N(0, 1) scaled like the original."""
    weight = getattr(module, "weight", None)
    for name, p in module.named_parameters(recurse=False):
        if p.ndim > 1:  # drawn on the generator's device (a CUDA layer, a CPU generator)
            drawn(p, nn.init.kaiming_uniform_, generator, a=math.sqrt(5))
        elif name == "bias" and isinstance(weight, Tensor) and weight.ndim > 1:
            bound = 1 / math.sqrt(max(1, weight[0].numel()))
            drawn(p, nn.init.uniform_, generator, a=-bound, b=bound)
        else:
            scale = float(p.abs().mean()) or 1.0
            p.copy_(torch.randn(p.shape, generator=generator).to(p) * scale)


def cascading_randomisation(
    make_method: Callable[[nn.Module], SaliencyMethod],
    model: nn.Module,
    x: Tensor,
    target: Target | None,
    *,
    layers: list[str] | None = None,
    generator: torch.Generator | None = None,
    attribute_kwargs: dict[str, Any] | None = None,
) -> RandomisationResult:
    """Run the cascading model-parameter randomisation check.

    Reference: Adebayo, Gilmer, Muelly, Goodfellow, Hardt & Kim, "Sanity Checks for Saliency
    Maps", NeurIPS 2018.

    Args:
        make_method: builds the saliency method for a model, e.g.
            ``lambda m: GradCAM(m, layer="features.3")``; called once for the original and
            once per stage with a randomised deep copy.
        model: the trained ``nn.Module`` (left unchanged).
        x: images ``(B, C, H, W)`` in [-1, 1].
        target: class to explain (int, ``(B,)`` indices, or None for the trained model's
            prediction); the same classes are explained at every stage.
        layers: module names to randomise, in order (default: :func:`parameterised_layers`);
            a block (e.g. ``"features"``) randomises every parameterised layer inside it at
            its stage, and a module without parameters (an activation) is refused.
        generator: source of the new weights and, re-seeded identically at every stage, of
            the method's own randomness (so only the weights differ between stages).
        attribute_kwargs: extra keyword arguments for ``attribute``; a ``generator`` among
            them is replayed like ``generator`` (the same noise at every stage).
    """
    if not callable(make_method):  # a method built for one model cannot follow the copies
        raise TypeError(
            "`make_method` must be a factory building the method for a model (called again on "
            f"each randomised copy), e.g. `lambda m: Gradient(m)`, got a "
            f"{type(make_method).__name__} object"
        )
    if not isinstance(model, nn.Module):
        raise TypeError(f"`model` must be an nn.Module, got {type(model).__name__}")
    check_editable(model, "the check randomises a copy of the model layer by layer")
    x = check_input(x, model)  # the model tried on one image: errors named, not deep inside
    check_generator(generator)
    if isinstance(layers, str):  # would be read letter by letter
        raise TypeError(
            f"`layers` must be a list of module names, got the string {layers!r}; for one "
            f"layer pass [{layers!r}]"
        )
    names = parameterised_layers(model) if layers is None else list(layers)
    known = dict(model.named_modules())
    for name in names:
        if name not in known:
            raise ValueError(f"`layers` names unknown module {name!r}")
        # a stage that re-drew nothing kept every map and read as "input-driven"
        check(
            any(True for _ in known[name].parameters()),
            ValueError,
            f"`layers` entry {name!r} ({type(known[name]).__name__}) has no parameters to "
            f"randomise; the parameterised layers are {parameterised_layers(model)}",
        )
    if not names and layers is not None:
        raise ValueError(
            "`layers` must name at least one module to randomise (None: every parameterised "
            f"layer), got {names!r}"
        )
    if not names:
        raise ValueError("`model` has no parameterised layers to randomise")
    gen = generator if generator is not None else torch.Generator()
    weight_gen = torch.Generator().manual_seed(int(torch.randint(2**62, (1,), generator=gen)))
    kwargs = dict(attribute_kwargs or {})
    # the method's noise is replayed at every stage, from a generator passed in
    # attribute_kwargs too (it would otherwise run on, and the stages draw other noise)
    given = kwargs.pop("generator", None)
    noise = check_generator(given) or gen
    method_state = noise.get_state()

    def maps_of(m: nn.Module) -> Tensor:
        method = make_method(m)
        if not callable(getattr(method, "attribute", None)):  # a raw AttributeError later
            raise TypeError(
                "`make_method` must return a saliency method (an object with `attribute`), "
                f"got {type(method).__name__}"
            )
        check_built_on(method, m, model, "the original model, not the randomised copy")
        layer = getattr(method, "layer", None)  # e.g. GradCAM's hooked layer
        if isinstance(layer, nn.Module) and m is not model and layer in model.modules():
            name = next(n for n, sub in model.named_modules() if sub is layer)
            raise ValueError(
                f"`make_method` must build the method on the model it is given, got `layer` "
                f"= the original model's module {name!r}, which the randomised copy never "
                f"calls; pass the layer by its dotted name, `layer={name!r}`, which survives "
                "the copy"
            )
        # a randomised copy's maps are compared, not read: its methods' notices stay quiet
        # the probe's notices were given once, on entry
        with nullcontext() if m is model else quiet_compared_maps(), notices_given():
            return replayed_maps(
                method, x, tgt, noise, method_state, kwargs, noisy=given is not None
            )

    with frozen(model):
        _, tgt = resolve_all(model, x, target)
    original = maps_of(model)
    work = copy.deepcopy(model)
    modules = dict(work.named_modules())
    signed, absolute, stages = [], [], []
    for name in names:
        for layer in modules[name].modules():  # the layer itself, or each inside a block
            randomise_layer(layer, weight_gen)
        maps = maps_of(work)
        stages.append(maps)
        signed.append(spearman(original, maps))
        absolute.append(spearman(original.abs(), maps.abs()))
    return RandomisationResult(
        layers=tuple(names),
        spearman=torch.stack(signed),
        spearman_abs=torch.stack(absolute),
        original=original,
        randomised=torch.stack(stages),
    )


def randomise_methods(
    model: nn.Module,
    x: Tensor,
    target: Target | None,
    names: Sequence[str],
    *,
    fast: bool = False,
    gradcam_layer: str | None = None,
    seed: int = 0,
    show_progress: bool = False,
) -> dict[str, RandomisationResult]:
    """:func:`cascading_randomisation` for each method named in ``names`` (the
    :data:`cfx.saliency.compare.METHODS` names, built by
    :func:`~cfx.saliency.compare.build_method` with ``fast`` and ``gradcam_layer``), every
    one from a generator seeded with ``seed``: the same new weights for every method."""
    check_flag("show_progress", show_progress)
    check_flag("fast", fast)
    from cfx.progress import tqdm
    from cfx.saliency.compare import build_method

    # before any method runs; a float failed in manual_seed, naming nothing
    seed = check_integer("seed", seed)
    if isinstance(names, str):  # would be read letter by letter
        raise TypeError(
            f"`names` must be a list of method names, got the string {names!r}; for one "
            f"method pass [{names!r}]"
        )
    names = list(names)
    check(len(names) > 0, ValueError, "`names` must name at least one method, got none")
    for name in names:  # an unknown name after minutes of the ones before it
        build_method(name, model, fast=fast, gradcam_layer=gradcam_layer)

    def maker(name: str) -> Callable[[nn.Module], SaliencyMethod]:
        return lambda m: build_method(name, m, fast=fast, gradcam_layer=gradcam_layer)

    results = {}
    bar = tqdm(names, disable=not show_progress, desc="randomise", unit="method")
    for name in bar:
        bar.set_postfix_str(name)
        results[name] = cascading_randomisation(
            maker(name), model, x, target, generator=torch.Generator().manual_seed(seed)
        )
    return results
