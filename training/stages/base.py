"""What a stage is to the trainer, and the pieces the stages share.

A stage builds its networks and losses from its config, says which networks the trainer
optimises (``g`` always, ``d`` for GAN stages), computes one step's losses calling
``ctx.optimize(name, loss)`` for each optimiser, and restores a validation batch.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable, ClassVar, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from vidrestore.training.archs import PatchDiscriminator
from vidrestore.training.config import AdversarialLosses, TrainConfig
from vidrestore.training.losses.gan import (
    adaptive_weight,
    frozen,
    hinge_d_loss,
    hinge_g_loss,
)
from vidrestore.training.losses.identity import IdentityEncoder, build_identity
from vidrestore.training.losses.perceptual import FrozenModule, build_perceptual

from vidrestore.errors import ConfigError, WeightsMismatchError
from vidrestore.models import (
    CodeFormer,
    CodeFormerPP,
    IDCodeFormer,
    VQAutoEncoder,
    build_model,
    get_spec,
    load_strict,
    read_state_dict,
)
from vidrestore.models.checkpoint import LoadReport
from vidrestore.weights import WeightStore

TRANSFORMER_PREFIXES = ("position_emb", "feat_emb.", "ft_layers.", "idx_pred_layer.", "fuse_convs_dict.")
"""CodeFormer keys a Stage I VQGAN checkpoint does not have."""


class TrainerContext(Protocol):
    """What the trainer offers a stage."""

    device: torch.device
    store: WeightStore
    config: TrainConfig

    def autocast(self) -> Any: ...
    def optimize(self, name: str, loss: Tensor) -> None: ...
    def log(self, line: str) -> None: ...


class Stage:
    """Base of the stage modules (see module doc). Subclasses set ``name`` and ``config_type``.

    Attributes set by subclasses: ``net`` (the network whose weights are exported),
    ``disc`` (or None), ``perceptual`` / ``identity`` (frozen loss networks, or None).
    """

    name: ClassVar[str]
    config_type: ClassVar[type[TrainConfig]]
    needs_identity_layout: bool = False
    net: nn.Module
    disc: nn.Module | None = None
    perceptual: FrozenModule | None = None
    identity: IdentityEncoder | None = None
    with_identity: bool = False
    identity_weight: float = 0.0

    def __init__(self, cfg: TrainConfig, ctx: TrainerContext) -> None:
        self.cfg, self.ctx = cfg, ctx

    def trained(self) -> dict[str, nn.Module]:
        """The optimised networks by optimiser name."""
        return {"g": self.net} | ({"d": self.disc} if self.disc is not None else {})

    def train_mode(self) -> None:
        for module in self.trained().values():
            module.train()

    def train_step(self, batch: dict[str, Tensor], step: int) -> dict[str, Tensor]:
        raise NotImplementedError

    @torch.no_grad()
    def restore(self, net: nn.Module, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Validation: ``{"restored": B×3×S×S, ...extra images for the sample grid}``."""
        raise NotImplementedError

    # -- shared helpers -----------------------------------------------------------------
    def build_perceptual(self, net: str) -> FrozenModule:
        return build_perceptual(net, self.ctx.store, stand_in=self.cfg.smoke, log=self.ctx.log).to(self.ctx.device)

    def build_adversary(self, losses: AdversarialLosses) -> None:
        """The discriminator and the perceptual loss network of a reconstruction + GAN stage."""
        self.disc = PatchDiscriminator(3, losses.disc_channels, losses.disc_layers)
        self.perceptual = self.build_perceptual(losses.perceptual_net)

    def reconstruction(self, out: Tensor, hq: Tensor, losses: AdversarialLosses) -> tuple[Tensor, dict[str, Tensor]]:
        """``l1·L1 + perceptual·LPIPS`` of ``out`` against ``hq``, and its parts for the log."""
        l1 = F.l1_loss(out.float(), hq)
        lp = self.perceptual(out, hq).mean()
        return losses.l1 * l1 + losses.perceptual * lp, {"l1": l1, "lpips": lp}

    def generator_gan(self, out: Tensor, rec: Tensor, last_layer: Tensor,
                      losses: AdversarialLosses) -> tuple[Tensor, dict[str, Tensor]]:
        """The generator's hinge term, balanced against ``rec`` by VQGAN's adaptive weight."""
        with frozen(self.disc):
            g = hinge_g_loss(self.disc(out))
        weight = adaptive_weight(rec, g, last_layer, losses.adaptive_max) * losses.gan
        return weight * g, {"g_gan": g, "gan_weight": weight}

    def discriminator_step(self, real: Tensor, fake: Tensor) -> dict[str, Tensor]:
        """One optimiser step of the discriminator on ``real`` vs (detached) ``fake``."""
        with self.ctx.autocast():
            d = hinge_d_loss(self.disc(real), self.disc(fake.detach()))
        self.ctx.optimize("d", d)
        return {"d_hinge": d}

    def build_identity(self) -> IdentityEncoder:
        return build_identity(self.ctx.store, stand_in=self.cfg.smoke, log=self.ctx.log).to(self.ctx.device)

    def use_identity(self, weight: float | None) -> None:
        """The identity parts of a stage. An ID-CodeFormer ``net`` is conditioned: the
        identity-grouped data layout, and the frozen ArcFace that embeds its references. Any
        network with an identity loss weight ``weight`` > 0 (None: 0.1 for ID-CodeFormer, 0
        otherwise) gets ``λ_ids·L_ids`` through that ArcFace (ablation B trains CodeFormer
        with L_ids alone)."""
        self.with_identity = self.needs_identity_layout = isinstance(self.net, IDCodeFormer)
        self.identity_weight = (0.1 if self.with_identity else 0.0) if weight is None else float(weight)
        if self.with_identity or self.identity_weight > 0:
            self.identity = self.build_identity()

    def condition(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """The network's identity input for ``batch`` (its reference faces' vectors), if any."""
        return {"identity": self.embed(batch["ref"])} if self.with_identity else {}

    def embed(self, faces: Tensor) -> Tensor:
        """Identity vectors ``B×512`` of faces (no gradients)."""
        assert self.identity is not None
        with torch.no_grad():
            return self.identity(faces)


def build_network(cfg: TrainConfig, **changes: Any) -> nn.Module:
    """The registry network of the run (``full`` or ``tiny``), on the CPU; ``changes``
    replace fields of its config (e.g. CodeFormer++'s ``use_dam``)."""
    spec = get_spec(cfg.model)
    config = spec.tiny_config if cfg.network == "tiny" else spec.default_config
    if changes:
        config = dataclasses.replace(config, **changes)
    return build_model(cfg.model, config)


def codeformer_of(net: nn.Module) -> CodeFormer:
    """The CodeFormer inside a network (itself, or CodeFormer++'s ``codeformer``)."""
    return net.codeformer if isinstance(net, CodeFormerPP) else net  # type: ignore[return-value]


def matching_vqgan(cf: CodeFormer) -> VQAutoEncoder:
    """A VQGAN with the sizes of ``cf``'s encoder / codebook / generator (official key layout)."""
    c = cf.config
    return VQAutoEncoder(c.img_size, c.nf, c.ch_mult, "nearest", c.res_blocks, c.attn_resolutions, c.codebook_size, c.emb_dim)


def is_vqgan_state(state: dict[str, Tensor]) -> bool:
    """True for a Stage I checkpoint: only ``encoder.`` / ``quantize.`` / ``generator.`` keys."""
    return all(k.startswith(("encoder.", "quantize.", "generator.")) for k in state)


def load_init(net: nn.Module, path: Path, cfg: TrainConfig, log: Callable[[str], None]) -> dict[str, Tensor]:
    """Load the run's starting weights into ``net``; return the state dict read.

    A Stage I VQGAN file fills CodeFormer's encoder / codebook / generator (the rest stays
    at its initialisation); a CodeFormer file fills an ID-CodeFormer or CodeFormer++ (new
    layers untrained); anything else must fit the network exactly.
    """
    state, key = read_state_dict(path)
    if is_vqgan_state(state) and type(net) is not VQAutoEncoder:  # CodeFormer subclasses it
        cf = codeformer_of(net)
        spec = get_spec(cfg.model)
        allowed = TRANSFORMER_PREFIXES + tuple(spec.own_key_prefixes if cfg.model == "id-codeformer" else ())
        report: LoadReport = load_strict(cf, state, source=str(path), param_key=key, new_prefixes=allowed)
        log(f"init: Stage I VQGAN {report.summary()}")
    elif type(net) is VQAutoEncoder:
        report = load_strict(net, state, source=str(path), param_key=key)
        log(f"init: {report.summary()}")
    else:
        report = get_spec(cfg.model).load_state_dict(net, state, source=str(path), param_key=key)
        log(f"init: {report.summary()}")
    return state


def frozen_vqgan(net: nn.Module, path: Path | None, cfg: TrainConfig, log: Callable[[str], None]) -> VQAutoEncoder:
    """The frozen Stage I VQGAN that gives HQ faces their ground-truth codes.

    From ``path`` (a Stage I checkpoint) when given; otherwise (smoke runs only) a copy of
    ``net``'s own encoder / codebook / generator as they are now.
    """
    vq = matching_vqgan(codeformer_of(net))
    if path is not None:
        state, key = read_state_dict(path)
        if not is_vqgan_state(state):
            raise WeightsMismatchError(f"{path} is not a Stage I VQGAN checkpoint (encoder/quantize/generator only)")
        load_strict(vq, state, source=str(path), param_key=key)
        log(f"ground-truth codes: Stage I VQGAN {path}")
    elif cfg.smoke:
        own = {k: v for k, v in codeformer_of(net).state_dict().items() if is_vqgan_state({k: v})}
        vq.load_state_dict(own, strict=True)
        log("ground-truth codes: the network's own initial VQGAN part (smoke run, no Stage I checkpoint)")
    else:
        raise ConfigError(f"{cfg.name}: set `vqgan` (or `init`) to the Stage I VQGAN checkpoint that gives HQ codes")
    return vq.eval().requires_grad_(False)


def codeformer_pp_network(cfg: TrainConfig, ctx, *, trained: tuple[str, ...], without_init: str,
                          **changes: Any) -> nn.Module:
    """A CodeFormer++ stage's network (config ``changes`` applied): ``init`` loaded, only
    ``trained`` prefixes trainable; a real run without ``init`` logs ``without_init``."""
    net = build_network(cfg, **changes)
    if cfg.init is not None:
        load_init(net, cfg.init, cfg, ctx.log)
    elif not cfg.smoke:
        ctx.log(f"warning: no init: {without_init}")
    freeze_all_but(net, trained)
    return net


def code_networks(cfg: TrainConfig, vqgan: Path | None, ctx) -> tuple[nn.Module, VQAutoEncoder]:
    """A code-predicting stage's network (``init`` loaded) and its frozen ground-truth VQGAN:
    ``vqgan`` when given, else the init when that is a Stage I checkpoint."""
    net = build_network(cfg)
    if cfg.init is not None:
        state = load_init(net, cfg.init, cfg, ctx.log)
        vqgan = vqgan or (cfg.init if is_vqgan_state(state) else None)
    return net, frozen_vqgan(net, vqgan, cfg, ctx.log).to(ctx.device)


def code_losses(net: CodeFormer, logits: Tensor, lq_feat: Tensor, codes: Tensor,
                weights) -> tuple[Tensor, dict[str, Tensor]]:
    """Stage II's code losses: cross-entropy on the HQ codes and the L2 between the LQ
    features and the HQ codes' features, weighted by ``weights.cross_entropy`` / ``.feature``."""
    ce = F.cross_entropy(logits.float().transpose(1, 2), codes)
    feat = F.mse_loss(lq_feat.float(), net.codes_to_features(codes).float())
    return weights.cross_entropy * ce + weights.feature * feat, {"cross_entropy": ce, "feature_l2": feat}


def hq_codes(vq: VQAutoEncoder, hq: Tensor) -> Tensor:
    """Ground-truth code indices ``B×N`` of HQ faces (nearest codes of the frozen encoder)."""
    with torch.no_grad():
        return vq.quantize.nearest_codes(vq.encoder(hq))[0]


def freeze_all_but(net: nn.Module, prefixes: tuple[str, ...]) -> None:
    """Gradients only for parameters whose name starts with one of ``prefixes``."""
    for name, p in net.named_parameters():
        p.requires_grad_(name.startswith(prefixes))
