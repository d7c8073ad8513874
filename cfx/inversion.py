"""GAN inversion: find latents ``z`` with ``G(z) ~ x``.

Encoder initialisation followed by latent optimisation, as in Zhu et al., "In-Domain GAN
Inversion for Real Image Editing" (ECCV 2020): start from ``E(x)`` when the generator has an
encoder (:class:`~cfx.types.Invertible`), then minimise, per image,

    ||G(z) - x||^2 + l1_weight * |G(z) - x| + perceptual_weight * P(G(z), x)
        + prior_weight * ||z||^2 / dim(z)

with Adam, keeping the best latent seen for each image. Given the classifier being explained,
a decision term ``classifier_weight * KL(f(x) || f(G(z)))`` keeps the reconstruction's class
probabilities on the source's (as StylEx's encoder is trained to, Lang et al., "Explaining in
Style", ICCV 2021), so a counterfactual path starts where the classifier sees the source, and
the best latent is the one with the lowest pixel error plus that term. ``P`` is LPIPS (the
``lpips`` package) when its AlexNet backbone weights are already in the local torch hub cache;
offline, it falls back to distances between the generator's own encoder activations
(``generator.encoder``, an ``nn.Sequential``), and to no perceptual term if there is none. The
result records which was used.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from numbers import Integral
from pathlib import Path
from typing import Literal, get_args

import torch
from torch import Tensor, nn

from cfx.calls import (
    call_named,
    class_logits,
    dtype_device_mismatch,
    frozen,
    gradients_on,
    looks_like_probabilities,
    values_of,
)
from cfx.errors import check_flag, check_int, check_real, shape_or_type
from cfx.images import check_images
from cfx.metrics.image import _psnr
from cfx.types import Classifier, Generator

log = logging.getLogger(__name__)

Perceptual = Literal["lpips", "encoder", "none"]
PerceptualChoice = Literal["auto", "lpips", "encoder", "none"]


@dataclass(frozen=True, repr=False)
class InversionResult:
    """What :func:`invert` found for a batch of ``B`` images: the best latents and their fit.

    Attributes:
        latents: ``(B, *latent_shape)`` the best latent seen per image (by squared pixel
            error, plus the decision term when it was on).
        reconstructions: ``(B, C, H, W)`` in [-1, 1], ``G(latents)``.
        psnr: ``(B,)`` PSNR in dB of the reconstructions against the inputs.
        encoder_psnr: ``(B,)`` PSNR in dB of the encoder-only reconstructions ``G(E(x))``
            (NaN when the generator has no encoder).
        perceptual: which perceptual loss was used: ``"lpips"``, ``"encoder"`` or ``"none"``.
        steps: latent-optimisation steps run (0 = encoder only).
        seconds: wall-clock time of the inversion.
    """

    latents: Tensor  # (B, *latent_shape)
    reconstructions: Tensor  # (B, C, H, W) in [-1, 1]
    psnr: Tensor  # (B,) dB of the reconstructions against the inputs
    encoder_psnr: Tensor  # (B,) dB of the encoder-only reconstructions (nan without encoder)
    perceptual: Perceptual  # which perceptual loss was used
    steps: int
    seconds: float

    def __repr__(self) -> str:
        """A one-line summary (the default would print every tensor in full)."""
        return (
            f"InversionResult(images={self.latents.shape[0]}, "
            f"latents={tuple(self.latents.shape)}, "
            f"psnr_db={float(self.psnr.float().mean()):.1f} (mean), "
            f"perceptual={self.perceptual!r}, steps={self.steps}, seconds={self.seconds:.2f})"
        )


@torch.no_grad()
def zero_image(generator: Generator, like: Tensor | None = None) -> Tensor:
    """``G(0)``: one image ``(1, C, H, W)``, decoded in ``like``'s dtype and device (default
    float32 on the CPU); its shape is the shape of every image the generator makes. An error
    names ``decode`` when it returns anything else (a flat ``(1, C * H * W)``, say)."""
    z = torch.zeros(1, *generator.latent_shape)
    image = generator.decode(z if like is None else z.to(like))
    if not isinstance(image, Tensor) or image.ndim != 4 or image.shape[0] != 1:
        raise ValueError(
            "the generator's `decode` must return images (B, C, H, W), one per latent, got "
            f"{shape_or_type(image)} for 1 latent"
        )
    return image


def check_generator_model(generator: object) -> None:
    """An error naming ``generator`` unless it has ``latent_shape`` (a tuple of positive ints)
    and a callable ``decode``, the :class:`~cfx.types.Generator` protocol."""
    shape = getattr(generator, "latent_shape", None)
    ok_shape = isinstance(shape, (tuple, list)) and all(
        isinstance(n, Integral) and not isinstance(n, bool) and int(n) > 0 for n in shape
    )
    has_decode = callable(getattr(generator, "decode", None))
    if not (ok_shape and shape and has_decode):
        missing = [
            *(
                []
                if ok_shape and shape
                else ["`latent_shape`" if shape is None else "a valid `latent_shape`"]
            ),
            *([] if has_decode else ["`decode`"]),
        ]
        hint = (
            " (a model whose forward maps latents to images: add `def decode(self, z): "
            "return self(z)`)"
            if not has_decode and callable(getattr(generator, "forward", None))
            else ""
        )
        if type(generator).__name__ == "AutoencoderKL":  # diffusers' VAE, unwrapped
            hint = (
                " (a diffusers AutoencoderKL: wrap it, "
                "cfx.models.diffusers_vae.DiffusersAutoencoder(vae), or load it with "
                "DiffusersAutoencoder.from_pretrained)"
            )
        raise TypeError(
            "`generator` must have `latent_shape` (a tuple of positive ints) and `decode(z)` "
            f"(the cfx.types.Generator protocol), got {type(generator).__name__}"
            + (f" with latent_shape {shape!r}" if shape is not None else "")
            + f", missing {' and '.join(missing)}{hint}"
        )


def generator_probe(generator: Generator, x: Tensor, *, name: str = "x") -> Tensor:
    """:func:`zero_image` after checking that the images ``x`` have the shape the generator
    produces (an error calling them ``name`` otherwise). Call it with the generator frozen
    (:func:`~cfx.calls.frozen`).

    Logs a warning (tagged ``cfx_models``, as the other notices about the user's models) when
    that image has no pixel below 0 and some above (a generator ending in a sigmoid, [0, 1]);
    an image of zeros, as a generator without biases decodes the zero latent to, says
    nothing about the range. An explainer probes before inverting, and holds the
    inversion's own copy of the notice."""
    check_generator_model(generator)
    try:
        probe = zero_image(generator, x)
    except RuntimeError as err:  # PyTorch's error names neither x nor the generator
        mismatch = dtype_device_mismatch({"generator": generator}, x, name)
        if mismatch is None:  # e.g. a latent_shape its decode cannot take
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ValueError(
                "the generator's `decode` failed on a latent of its `latent_shape` "
                f"{tuple(generator.latent_shape)}: {first}"
            ) from err
        raise TypeError(mismatch) from err
    shape = tuple(probe.shape[1:])  # (C, H, W) the generator produces
    if shape != tuple(x.shape[1:]):
        raise ValueError(
            f"`{name}` must have the generator's image shape (B, {', '.join(map(str, shape))}), "
            f"got {tuple(x.shape)}"
        )
    lo, hi = float(probe.detach().min()), float(probe.detach().max())
    if lo >= 0.0 and hi > 0.0:
        log.warning(
            "the generator's decoded images have no pixel below 0 (values %.3g..%.3g); cfx "
            "images are in [-1, 1], dark = -1: a generator ending in a sigmoid needs 2x - 1 "
            "(cfx.images.from_unit) after it",
            lo,
            hi,
            extra={"cfx_models": True},
        )
    return probe


def unit_range_notice(x: Tensor, name: str = "input") -> None:
    """Warn (tagged ``cfx_unit_range``) when images ``x`` ``(B, C, H, W)`` have no pixel
    below 0: likely [0, 1] images where cfx expects [-1, 1]. ``name`` says which images
    (e.g. a command-line flag)."""
    lo, hi = float(x.detach().min()), float(x.detach().max())
    if lo < 0.0:
        return
    b = x.shape[0]
    log.warning(
        "no pixel of the %d %s image%s is below 0 (values %.3g..%.3g); cfx images are "
        "in [-1, 1], dark = -1: if these are [0, 1] images, map them with 2x - 1 "
        "(cfx.images.from_unit), and if a model was trained on [0, 1] images, pass it as "
        "cfx.images.UnitInput(model)",
        b,
        name,
        "s" if b != 1 else "",
        lo,
        hi,
        extra={"cfx_unit_range": True},
    )


def lpips_available() -> bool:
    """True when LPIPS can run offline: its AlexNet weights are in the local hub cache and the
    ``lpips`` package imports. The cache is looked at first: importing lpips (and with it
    torchvision's models) took about 3 s of every process that then ran without it."""
    cache = Path(torch.hub.get_dir()) / "checkpoints"
    if not any(cache.glob("alexnet-*.pth")):
        return False
    try:
        import lpips  # noqa: F401
    except ImportError:
        return False
    return True


def _lpips_fn() -> Callable[[Tensor, Tensor], Tensor]:
    import lpips

    # its layers are initialised (from torch's global generator) before the weights load:
    # inversion moved the caller's random stream wherever the AlexNet weights are cached
    with torch.random.fork_rng(devices=[]):
        net = lpips.LPIPS(net="alex", verbose=False).eval()
    for p in net.parameters():
        p.requires_grad_(False)

    def dist(a: Tensor, b: Tensor) -> Tensor:
        if a.shape[1] == 1:
            a, b = a.expand(-1, 3, -1, -1), b.expand(-1, 3, -1, -1)
        return net.to(a)(a, b).flatten(1).mean(1)  # (B,)

    return dist


def _encoder_fn(encoder: nn.Sequential) -> Callable[[Tensor, Tensor], Tensor]:
    taps = [i for i, m in enumerate(encoder) if isinstance(m, (nn.LeakyReLU, nn.ReLU, nn.GELU))]
    if not taps:  # blocks with their activations inside (e.g. a VAE's down blocks): each block
        taps = list(range(len(encoder)))

    def feats(x: Tensor) -> list[Tensor]:
        out = []
        for i, m in enumerate(encoder):
            x = m(x)
            if i in taps:
                out.append(x)
        return out

    def dist(a: Tensor, b: Tensor) -> Tensor:
        total = torch.zeros(a.shape[0], dtype=a.dtype, device=a.device)
        for fa, fb in zip(feats(a), feats(b), strict=True):
            total = total + (fa - fb).pow(2).flatten(1).mean(1)
        return total / max(1, len(taps))

    return dist


def _perceptual(
    generator: Generator, choice: PerceptualChoice
) -> tuple[Perceptual, Callable[[Tensor, Tensor], Tensor] | None]:
    encoder = getattr(generator, "encoder", None)
    if choice == "auto":
        if lpips_available():
            return "lpips", _lpips_fn()
        if isinstance(encoder, nn.Sequential):
            return "encoder", _encoder_fn(encoder)
        return "none", None
    if choice == "lpips":
        if not lpips_available():
            raise ValueError(
                "`perceptual='lpips'` needs the AlexNet weights in the local torch hub cache "
                f"({torch.hub.get_dir()}/checkpoints); run once online or use 'auto'"
            )
        return "lpips", _lpips_fn()
    if choice == "encoder":
        if not isinstance(encoder, nn.Sequential):
            raise ValueError(
                "`perceptual='encoder'` needs a generator with an nn.Sequential `encoder`"
            )
        return "encoder", _encoder_fn(encoder)
    if choice == "none":
        return "none", None
    raise ValueError(f"`perceptual` must be 'auto', 'lpips', 'encoder' or 'none', got {choice!r}")


def _kl(log_p: Tensor, logits: Tensor) -> Tensor:
    """``KL(p || softmax(logits))`` per row, ``p`` given as log-probabilities ``(B, K)``
    (a class with ``p = 0`` adds nothing, even where its log-probability is ``-inf``)."""
    p = log_p.exp()
    return (torch.special.xlogy(p, p) - p * torch.log_softmax(logits, 1)).sum(1)


def _decision_term(classifier: Classifier, weight: float, x: Tensor) -> Callable[[Tensor], Tensor]:
    """``rec -> weight * KL(f(x) || f(rec))`` per row, with the classifier's probabilities on
    the sources ``x`` computed once now, and an error naming the classifier (and the dtype or
    device that differs) when it cannot take them."""
    with torch.no_grad():
        logits = call_named(
            lambda: class_logits(classifier, x),
            {"classifier": classifier},
            x,
            f"`classifier` failed on `x` {tuple(x.shape)}",
        )
    if looks_like_probabilities(logits):
        log.warning(
            "the classifier's outputs look like probabilities (non-negative, summing to 1): "
            "cfx takes them for logits, which makes the decision term weak; drop the final "
            "softmax (or return log-probabilities)",
            extra={"cfx_models": True},
        )
    log_px = torch.log_softmax(logits, 1)
    return lambda rec: weight * _kl(log_px, class_logits(classifier, rec))


def invert(
    generator: Generator,
    x: Tensor,
    *,
    steps: int = 100,
    lr: float = 0.03,
    l1_weight: float = 0.5,
    perceptual: PerceptualChoice = "auto",
    perceptual_weight: float = 0.1,
    prior_weight: float = 1e-3,
    classifier: Classifier | None = None,
    classifier_weight: float = 0.01,
    show_progress: bool = False,
) -> InversionResult:
    """Invert images ``x`` ``(B, C, H, W)`` in [-1, 1] into ``generator``'s latent space.

    Encoder initialisation, then Adam on the latents (pixel, perceptual and prior losses, and
    optionally the classifier's decision), keeping the best latent per image.

    Reference: Zhu et al., "In-Domain GAN Inversion for Real Image Editing", ECCV 2020; the
    decision term follows StylEx's encoder (Lang et al., "Explaining in Style", ICCV 2021).

    Args:
        generator: a :class:`~cfx.types.Generator`; with an ``encode`` method (an
            :class:`~cfx.types.Invertible`) the optimisation starts from ``encode(x)``,
            otherwise from the zero latent.
        x: the images, shaped like the generator's output.
        steps: Adam steps of latent optimisation; ``0`` returns the encoder's latents. The
            default, 100, is the explainers' ``inversion_steps`` and the CLI's, so an inversion
            by hand starts a path where the explainer's own would (it was 200).
        lr: Adam learning rate on the latents.
        l1_weight, perceptual_weight, prior_weight: weights (>= 0) of the L1 pixel term, the
            perceptual term and the ``||z||^2 / dim(z)`` prior, next to the squared error.
        perceptual: ``"auto"`` (LPIPS if its weights are cached locally, else the generator's
            encoder activations, else none), or one of ``"lpips"``, ``"encoder"``, ``"none"``.
        classifier: the classifier a counterfactual will explain (logits ``(B, K)``), or None.
            Given (with ``steps > 0`` and ``classifier_weight > 0``), the loss gains
            ``classifier_weight * KL(f(x) || f(G(z)))`` and the best latent is the one with
            the lowest pixel error plus that term. It is frozen (eval mode, no gradients)
            while it runs: an ``nn.Module``, or the modules a wrapper object, a function or
            lambda (closure or globals), a bound method or a ``functools.partial`` holds one
            level deep (:func:`~cfx.calls.frozen`).
        classifier_weight: weight (>= 0) of that decision term.
        show_progress: tqdm bar over the steps.

    Returns:
        :class:`InversionResult`: the best latent seen per image (by squared pixel error,
        plus the decision term when it is on),
        its reconstruction and PSNR, the encoder-only PSNR and which perceptual loss ran.

    Raises:
        TypeError / ValueError naming the argument: ``x`` not a finite float batch in [-1, 1]
        or not shaped like the generator's images; a bad number; an encoder whose latents do
        not have the generator's ``latent_shape``; ``perceptual`` unknown, or unavailable
        offline (with ``steps > 0`` and ``perceptual_weight > 0``: otherwise no perceptual
        loss runs, and the result reports ``"none"``).

    The generator's parameters, mode and ``requires_grad`` flags are left as they were. Only
    the values of ``x`` are used (not its autograd graph); the optimisation runs with
    gradients on under the caller's ``torch.no_grad()``, not under ``torch.inference_mode()``
    (an error with ``steps > 0``; the encoder alone, ``steps=0``, runs there).
    """
    check_flag("show_progress", show_progress)
    x = check_images(values_of(x), "x")
    unit_range_notice(x)  # [0, 1] images reconstruct at a generator's [-1, 1] poorly
    # an int: InversionResult.steps kept np.int64, which a chunked run's JSON then refused
    steps = check_int("steps", steps, minimum=0)
    check_real("lr", lr, low=0.0, open_low=True)
    for name, weight in (
        ("l1_weight", l1_weight),
        ("perceptual_weight", perceptual_weight),
        ("prior_weight", prior_weight),
        ("classifier_weight", classifier_weight),
    ):
        check_real(name, weight, low=0.0)
    t0 = time.perf_counter()
    if perceptual not in get_args(PerceptualChoice):
        raise ValueError(
            f"`perceptual` must be 'auto', 'lpips', 'encoder' or 'none', got {perceptual!r}"
        )
    # no optimisation steps or a zero weight, no perceptual loss: nothing to load (LPIPS takes
    # ~1 s), run every step or report
    unused = steps == 0 or perceptual_weight == 0
    kind, percep = ("none", None) if unused else _perceptual(generator, perceptual)
    # encoding alone (steps=0) needs no gradients: it also runs under torch.inference_mode()
    with frozen(generator, classifier), gradients_on() if steps > 0 else nullcontext():
        generator_probe(generator, x)  # in eval mode: a BatchNorm must not count the probe
        decision = None  # the decision term, rec -> (B,), when it is on
        if classifier is not None and steps > 0 and classifier_weight > 0:
            decision = _decision_term(classifier, classifier_weight, x)
        encode = getattr(generator, "encode", None)
        with torch.no_grad():
            if callable(encode):
                z0 = encode(x)
                expected = (x.shape[0], *generator.latent_shape)
                got = shape_or_type(z0)
                if got != expected:
                    raise ValueError(
                        f"`generator.encode` must return latents of shape {expected}, got {got}"
                    )
                enc_psnr = _psnr(generator.decode(z0), x)  # generated: scored as it is
            elif steps == 0:
                raise ValueError(
                    "`steps=0` (an explainer's `inversion_steps=0`) needs a generator with an "
                    "`encode` method; without one, inversion starts from z = 0 and needs steps"
                )
            else:
                z0 = torch.zeros(
                    x.shape[0], *generator.latent_shape, dtype=x.dtype, device=x.device
                )
                enc_psnr = torch.full((x.shape[0],), float("nan"), dtype=x.dtype, device=x.device)
        # optimised in float32 at least: Adam's eps (1e-8) is 0 in float16, and every step
        # of a half-precision inversion was NaN (the encoder's latents came back unchanged)
        work = torch.promote_types(z0.dtype, torch.float32)
        z = z0.detach().to(work).clone().requires_grad_(True)
        best_z, best_loss = z0.detach().clone(), torch.full_like(enc_psnr, float("inf"))
        opt = torch.optim.Adam([z], lr=lr)
        dims = tuple(range(1, z.ndim))
        iterator = range(steps)
        if show_progress and steps > 0:  # the encoder alone: no loop to show
            from cfx.progress import tqdm

            iterator = tqdm(iterator, desc="inverting", unit="step")
        for _ in iterator:
            rec = generator.decode(z.to(z0.dtype))  # (B, C, H, W)
            diff = rec - x
            pixel = diff.pow(2).flatten(1).mean(1)  # (B,)
            loss = pixel + l1_weight * diff.abs().flatten(1).mean(1)
            if percep is not None:
                loss = loss + perceptual_weight * percep(rec, x)
            loss = loss + prior_weight * z.pow(2).mean(dims)
            fit = pixel  # what picks the best latent: pixel error, plus the decision term
            if decision is not None:
                term = decision(rec)
                loss, fit = loss + term, pixel + term
            with torch.no_grad():  # keep the best latent per image
                better = fit < best_loss
                best_loss = torch.where(better, fit, best_loss)
                best_z[better] = z.detach()[better].to(best_z.dtype)
            # the latents' gradient alone: backward() left .grad on any weights the freezing
            # could not reach (a classifier holding its models in a plain list)
            (z.grad,) = torch.autograd.grad(loss.sum(), z)
            opt.step()
        with torch.no_grad():
            rec = generator.decode(z.to(z0.dtype))
            pixel = (rec - x).pow(2).flatten(1).mean(1)
            if decision is not None:
                pixel = pixel + decision(rec)
            better = pixel < best_loss
            best_z[better] = z.detach()[better].to(best_z.dtype)
            final = generator.decode(best_z)
            return InversionResult(
                latents=best_z,
                reconstructions=final,
                psnr=_psnr(final, x),
                encoder_psnr=enc_psnr,
                perceptual=kind,
                steps=steps,
                seconds=time.perf_counter() - t0,
            )
