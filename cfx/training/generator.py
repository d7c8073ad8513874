"""Train :class:`~cfx.models.brain_gan.BrainGAN` (VAE-GAN) on images in [-1, 1].

The loop is written out in the open. Each step, for a real batch ``x``:

* encoder posterior ``q(z|x)``, reparameterised ``z``, reconstruction ``G(z)``;
* prior samples ``G(z_p)``, ``z_p ~ N(0, I)``;
* discriminator: hinge loss, real ``x`` against reconstructions and prior samples;
* encoder + generator: L1 reconstruction + ``kl_weight`` * KL + adaptive-weighted adversarial
  loss on reconstructions and prior samples (weight = ratio of gradient norms at the last layer,
  as in Esser et al., "Taming Transformers", 2021) + ``latent_weight`` * ||E(G(z_p)) - z_p||^2
  (the encoder learns to invert the generator's own samples, as in in-domain inversion).

Checkpoints (safetensors, atomic) are written every ``checkpoint_every`` steps to
``out/checkpoint.safetensors``, and when Ctrl-C stops the run (after the step in progress,
:mod:`cfx.training.interrupt`); rerunning with the same ``out`` resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from cfx.errors import check_flag, check_int, check_real, check_seed, counted
from cfx.files import make_folder
from cfx.images import check_images
from cfx.models.brain_gan import BrainDiscriminator, BrainGAN, BrainGANConfig
from cfx.run_key import tensors_sha256
from cfx.training.checkpoint import (
    diverged,
    not_finite,
    resume_checkpoint,
    save_checkpoint,
)
from cfx.training.init import reset_parameters
from cfx.training.interrupt import held_interrupt

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GeneratorTrainingConfig:
    """Hyperparameters of :func:`train_generator` (the BrainGAN VAE-GAN); checked when built.

    Attributes:
        steps: training steps (> 0); each draws a random batch with replacement.
        batch_size: images per step (> 0).
        lr: Adam learning rate of the encoder + generator and of the discriminator (> 0).
        kl_weight: weight of the KL term of the encoder posterior against ``N(0, I)`` (>= 0).
        adv_factor: scale of the adaptive adversarial weight (>= 0; the weight itself is the
            ratio of the L1 and adversarial gradient norms at the last layer).
        adv_start: step at which the discriminator and the adversarial loss switch on (>= 0).
        latent_weight: weight of ``||E(G(z_p)) - z_p||^2``, the encoder inverting the
            generator's own prior samples (>= 0).
        decay_start: fraction of the steps after which the learning rates fall linearly to
            10% by the last step, in [0, 1].
        checkpoint_every: steps between checkpoints (> 0).
        seed: the source of every random draw (initialisation, batches, noise).
        model: the architecture, a :class:`~cfx.models.brain_gan.BrainGANConfig`.
    """

    steps: int = 6000
    batch_size: int = 64
    lr: float = 2e-4
    kl_weight: float = 1e-5
    adv_factor: float = 0.1
    adv_start: int = 500
    latent_weight: float = 0.01
    decay_start: float = 0.7  # learning rates fall linearly to 10% over the last 30% of steps
    checkpoint_every: int = 200
    seed: int = 0
    model: BrainGANConfig = field(default_factory=BrainGANConfig)

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "checkpoint_every"):  # numpy ints kept as ints
            object.__setattr__(self, name, check_int(name, getattr(self, name)))
        # a float 2.5 or True was taken and compared with the step; "500" failed comparing
        object.__setattr__(self, "adv_start", check_int("adv_start", self.adv_start, minimum=0))
        # what torch's generators take (2**70 failed at the first draw, -1 was taken)
        object.__setattr__(self, "seed", check_seed("seed", self.seed, optional=False, bits=64))
        # finite too: an inf or NaN weight trained an all-NaN model that exited 0
        object.__setattr__(self, "lr", check_real("lr", self.lr, low=0.0, open_low=True))
        for name in ("kl_weight", "latent_weight", "adv_factor"):
            object.__setattr__(self, name, check_real(name, getattr(self, name), low=0.0))
        decay = check_real("decay_start", self.decay_start, low=0.0, high=1.0)
        object.__setattr__(self, "decay_start", decay)
        if not isinstance(self.model, BrainGANConfig):  # a dict or None failed at the first use
            raise TypeError(
                f"`model` must be a BrainGANConfig, got {type(self.model).__name__} "
                f"{self.model!r}: write model=BrainGANConfig(...)"
            )


@dataclass(frozen=True)
class TrainingReport:
    """What a training run did (returned by :func:`train_generator` and
    :func:`~cfx.training.classifier.train_classifier`).

    Attributes:
        steps: optimisation steps taken in total, resumed runs included.
        seconds: training time over all sessions of the run, resumed runs included.
        history: logged rows of metrics: for the generator one every 50 steps and at the end
            (``step``, ``rec_l1``, ``psnr`` in dB, ``kl``, ``latent``, ``d_loss``,
            ``adv_weight``); for classifiers one per epoch (``epoch``, ``step``, ``lr``,
            ``loss``, ``train_acc``/``train_dice`` and, with validation data,
            ``val_acc``/``val_dice``).
    """

    steps: int
    seconds: float
    history: tuple[dict[str, float], ...]


def _hinge_d(real: Tensor, fake: Tensor) -> Tensor:
    return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()


def adversarial_never_starts(cfg: GeneratorTrainingConfig) -> bool:
    """True when ``cfg`` asks for an adversarial loss that no step of the run reaches."""
    return cfg.adv_factor > 0 and cfg.adv_start >= cfg.steps


def _reconstruct(model: BrainGAN, x: Tensor) -> Tensor:
    """``x`` encoded (posterior mean) and decoded: the model's output checked for finiteness."""
    return model.decode(model.posterior(x)[0])


def _adaptive_weight(rec: Tensor, adv: Tensor, last: Tensor) -> Tensor:
    g_rec = torch.autograd.grad(rec, last, retain_graph=True)[0]
    g_adv = torch.autograd.grad(adv, last, retain_graph=True)[0]
    return (g_rec.norm() / (g_adv.norm() + 1e-4)).clamp(0.0, 1e3).detach()


def _fingerprint(images: Tensor, cfg: GeneratorTrainingConfig) -> dict:
    """What a resumed run must share with the checkpoint: the data and every setting but
    ``steps`` (a run may be extended or shortened) and ``checkpoint_every``."""
    run = dataclasses.asdict(cfg)
    for free in ("steps", "checkpoint_every"):
        run.pop(free)
    key = {"n": images.shape[0], "data_sha256": tensors_sha256(images), "config": run}
    return json.loads(json.dumps(key))  # as the checkpoint stores it (tuples become lists)


def train_generator(
    images: Tensor,
    out: str | Path,
    config: GeneratorTrainingConfig | None = None,
    *,
    show_progress: bool = True,
) -> tuple[BrainGAN, TrainingReport]:
    """Train (or resume) a BrainGAN on ``images`` ``(N, C, 64, 64)`` in [-1, 1].

    Writes ``out/checkpoint.safetensors`` during training and returns the model in eval mode,
    on the device and in the dtype of ``images`` (drawn from the seed on the CPU, then moved).
    """
    check_flag("show_progress", show_progress)
    cfg = config or GeneratorTrainingConfig()
    check_images(images, "images")  # a finite float batch in [-1, 1]
    if images.ndim != 4 or tuple(images.shape[-2:]) != (64, 64):
        raise ValueError(f"`images` must have shape (N, C, 64, 64), got {tuple(images.shape)}")
    if images.shape[1] != cfg.model.channels:
        raise ValueError(
            f"`images` has {images.shape[1]} channel(s) but the model config expects "
            f"{cfg.model.channels}"
        )
    if adversarial_never_starts(cfg):  # a short run at the default 500
        log.warning(
            "`adv_start` %d is not below `steps` %d: the adversarial loss never switches on, "
            "and the generator learns from the reconstruction loss alone (lower adv_start, or "
            "set adv_factor=0 to say so)",
            cfg.adv_start,
            cfg.steps,
            extra={"cfx_adv_never": True},  # the command line says it by its flags
        )
    out = make_folder(out, "out")
    ckpt = out / "checkpoint.safetensors"

    gen = torch.Generator().manual_seed(cfg.seed)
    # drawn on the CPU from the seed, then moved: trained where (and as) the images live
    model = reset_parameters(BrainGAN(cfg.model), gen).to(images)
    disc = reset_parameters(BrainDiscriminator(cfg.model), gen).to(images)
    opt_g = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=(0.5, 0.9))
    opt_d = torch.optim.Adam(disc.parameters(), lr=cfg.lr, betas=(0.5, 0.9))
    modules = {"model": model, "disc": disc}
    optims = {"opt_g": opt_g, "opt_d": opt_d}
    step, seconds, history = 0, 0.0, []
    fingerprint = _fingerprint(images, cfg)
    state = resume_checkpoint(
        ckpt,
        fingerprint=fingerprint,
        names={"data_sha256": "the training images"},
        added_later=tuple(fingerprint),  # the first checkpoints kept none of it
        modules=modules,
        optimizers=optims,
        generators={"gen": gen},
    )
    if state is not None:
        step, seconds, history = state["step"], state["seconds"], state["history"]
        if step < cfg.steps:
            log.warning("resuming generator training in %s at step %d of %d", out, step, cfg.steps)
        elif step == cfg.steps:
            done = counted(step, "step")
            log.warning("generator training in %s already finished (%s)", out, done)
        else:  # a rerun that asks for fewer steps: nothing trains
            log.warning(
                "the checkpoint in %s is at step %d, past `steps` %d: nothing is trained and "
                "the model is the checkpoint's (raise `steps` to go on)",
                out,
                step,
                cfg.steps,
            )

    n = images.shape[0]
    last = model.to_image.weight
    bar = None
    if show_progress:
        from cfx.progress import tqdm

        bar = tqdm(total=cfg.steps, initial=step, desc="train generator", unit="step")
    model.train()
    disc.train()
    t0 = time.perf_counter()
    # Ctrl-C finishes the step, saves it and stops; the bar ends before any message
    with held_interrupt() as interrupted, bar if bar is not None else nullcontext():
        while step < cfg.steps:
            idx = torch.randint(0, n, (cfg.batch_size,), generator=gen)
            x = images[idx]  # (B, C, 64, 64)
            mu, logvar = model.posterior(x)
            z = mu + torch.randn(mu.shape, generator=gen).to(mu) * (0.5 * logvar).exp()
            z_p = torch.randn(mu.shape, generator=gen).to(mu)
            x_rec = model.decode(z)
            x_p = model.decode(z_p)
            use_adv = step >= cfg.adv_start
            frac = step / cfg.steps
            scale = 1.0 - 0.9 * max(0.0, frac - cfg.decay_start) / max(1e-8, 1.0 - cfg.decay_start)
            for opt in (opt_g, opt_d):
                for group in opt.param_groups:
                    group["lr"] = cfg.lr * scale

            # --- discriminator ----------------------------------------------------------------
            if use_adv:
                fake = torch.cat([x_rec.detach(), x_p.detach()])
                d_loss = _hinge_d(disc(x), disc(fake))
                opt_d.zero_grad(set_to_none=True)
                d_loss.backward()
                opt_d.step()
            else:
                d_loss = torch.zeros(())

            # --- encoder + generator ----------------------------------------------------------
            rec = (x_rec - x).abs().mean()
            kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(1).mean()
            z_back = model.posterior(x_p.detach())[0]
            latent = (z_back - z_p).pow(2).mean()
            loss = rec + cfg.kl_weight * kl + cfg.latent_weight * latent
            weight = torch.zeros(())
            if use_adv:
                adv = -0.5 * (disc(x_rec).mean() + disc(x_p).mean())
                weight = cfg.adv_factor * _adaptive_weight(rec, adv, last)
                loss = loss + weight * adv
            if not bool(torch.isfinite(loss)):  # a NaN step would carry into every weight
                raise diverged(step + 1, float(loss.detach()), ckpt)
            opt_g.zero_grad(set_to_none=True)
            loss.backward()
            opt_g.step()
            step += 1

            if step % 50 == 0 or step == cfg.steps:
                psnr = 10 * torch.log10(4.0 / (x_rec.detach() - x).pow(2).mean()).item()
                row = {
                    "step": float(step),
                    "rec_l1": rec.item(),
                    "psnr": psnr,
                    "kl": kl.item(),
                    "latent": latent.item(),
                    "d_loss": d_loss.item(),
                    "adv_weight": float(weight),
                }
                history.append(row)
                log.info("step %d %s", step, row)
                if bar is not None:
                    bar.set_postfix(
                        psnr=f"{psnr:.1f}", kl=f"{kl.item():.0f}", d=f"{d_loss.item():.2f}"
                    )
            if bar is not None:
                bar.update(1)
            if step % cfg.checkpoint_every == 0 or step == cfg.steps or interrupted():
                # the last update is checked too (the loss check sees it only a step later):
                # the weights, and at the end this batch's reconstruction
                final = step == cfg.steps
                probe = partial(_reconstruct, model, x) if final else None
                if any(not_finite(m, probe if m is model else None) for m in modules.values()):
                    raise diverged(step, None, ckpt)
                elapsed = seconds + time.perf_counter() - t0
                save_checkpoint(
                    ckpt,
                    modules=modules,
                    optimizers=optims,
                    generators={"gen": gen},
                    state={
                        "step": step,
                        "seconds": elapsed,
                        "history": history,
                        "fingerprint": fingerprint,
                    },
                )
            if interrupted():
                log.warning(
                    "interrupted at step %d of %d; saved in %s; rerun with the same arguments "
                    "to resume",
                    step,
                    cfg.steps,
                    out,
                )
                raise KeyboardInterrupt
    seconds = seconds + time.perf_counter() - t0
    model.eval()
    return model, TrainingReport(steps=step, seconds=seconds, history=tuple(history))
