"""The networks the CLI can name, as an explicit table (no scanning of files).

Each ``ModelSpec`` gives a network's config type with its full default and a ``tiny``
config for tests, how to build it, whether it needs an identity vector, which weights
entries it uses, and how a checkpoint file is loaded into it (strictly; see ``checkpoint``).

    >>> net = build_model("codeformer")                      # the official architecture
    >>> report = load_checkpoint(net, "weights/codeformer.pth")
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from torch import Tensor, nn

from vidrestore.errors import UsageError
from vidrestore.names import NetworkName, check_covers

from .checkpoint import LoadReport, load_strict, read_state_dict
from .codeformer import CodeFormer, CodeFormerConfig
from .codeformer_pp import CodeFormerPP, CodeFormerPPConfig
from .dam import DAMConfig
from .idcodeformer import NEW_LAYER_PREFIXES, IDCodeFormer, IDCodeFormerConfig
from .tgrn import TGRNConfig

TINY_CODEFORMER = CodeFormerConfig(
    dim_embd=32, n_head=2, n_layers=2, codebook_size=32, latent_size=256,
    connect_list=("32", "64"), img_size=64, nf=32, ch_mult=(1, 1, 2), res_blocks=1,
    attn_resolutions=(16,), emb_dim=32,
)
"""A 64×64, ~0.85 M-parameter CodeFormer with every code path of the full one."""

Loader = Callable[[nn.Module, dict[str, Tensor], str, "str | None"], LoadReport]


@dataclass(frozen=True)
class ModelSpec:
    """One named network.

    name: the CLI name. network_type: the class built. config_type / default_config / tiny_config: its typed config.
    build: config -> network. needs_identity: forward takes a ``B×512`` identity vector.
    takes_fidelity: forward takes CodeFormer's fidelity ``w`` (CodeFormer++ fuses both ends itself).
    base_weights: the weights entry it starts from (official ``codeformer`` for all three).
    trained_weights: the entry of its own trained checkpoint (None: base_weights is it).
    extends_base: loads base weights alone (new layers reported untrained), if allowed.
    own_key_prefixes: key prefixes only the model's own checkpoints have; a checkpoint
    without any of them is loaded as base weights.
    """

    name: str
    network_type: type[nn.Module]
    config_type: type
    default_config: Any
    tiny_config: Any
    build: Callable[[Any], nn.Module]
    needs_identity: bool
    base_weights: str
    takes_fidelity: bool = True
    trained_weights: str | None = None
    extends_base: Loader | None = field(default=None, repr=False)
    own_key_prefixes: tuple[str, ...] = ()

    def is_base_checkpoint(self, state_dict: dict[str, Tensor]) -> bool:
        """True if ``state_dict`` has none of the keys only this model's own checkpoints have."""
        return self.extends_base is not None and not any(
            k.startswith(self.own_key_prefixes) for k in state_dict
        )

    def load_state_dict(
        self, net: nn.Module, state_dict: dict[str, Tensor], *, source: str = "state dict",
        param_key: str | None = None,
    ) -> LoadReport:
        """Load the model's own checkpoint, or base weights where allowed, strictly."""
        if self.is_base_checkpoint(state_dict):
            assert self.extends_base is not None
            return self.extends_base(net, state_dict, source, param_key)
        return load_strict(net, state_dict, source=source, param_key=param_key)


def _load_idcodeformer_base(net: nn.Module, sd: dict[str, Tensor], source: str, key: str | None) -> LoadReport:
    assert isinstance(net, IDCodeFormer)
    return net.load_codeformer_state_dict(sd, source=source, param_key=key)


def _load_codeformer_pp_base(net: nn.Module, sd: dict[str, Tensor], source: str, key: str | None) -> LoadReport:
    assert isinstance(net, CodeFormerPP)
    return net.load_codeformer_state_dict(sd, source=source, param_key=key)


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            "codeformer", CodeFormer, CodeFormerConfig, CodeFormerConfig(), TINY_CODEFORMER,
            CodeFormer.from_config, needs_identity=False, base_weights="codeformer",
        ),
        ModelSpec(
            "id-codeformer", IDCodeFormer, IDCodeFormerConfig, IDCodeFormerConfig(),
            IDCodeFormerConfig(TINY_CODEFORMER, identity_tokens=2, adain_hidden=32),
            IDCodeFormer.from_config, needs_identity=True, base_weights="codeformer",
            trained_weights="id-codeformer", extends_base=_load_idcodeformer_base,
            own_key_prefixes=NEW_LAYER_PREFIXES,
        ),
        ModelSpec(
            "codeformer++", CodeFormerPP, CodeFormerPPConfig, CodeFormerPPConfig(),
            CodeFormerPPConfig(TINY_CODEFORMER, DAMConfig(8, 3), TGRNConfig(32, (1, 2), 2)),
            CodeFormerPP.from_config, needs_identity=False, base_weights="codeformer",
            takes_fidelity=False, trained_weights="codeformer++", extends_base=_load_codeformer_pp_base,
            own_key_prefixes=("codeformer.", "dam.", "tgrn."),
        ),
    )
}


check_covers(NetworkName, MODELS, "models.registry")


def model_names() -> list[str]:
    """The names ``build_model`` accepts, in table order."""
    return list(MODELS)


def get_spec(name: str) -> ModelSpec:
    """The spec of ``name``; UsageError listing the known names if there is none."""
    try:
        return MODELS[name]
    except KeyError:
        raise UsageError(f"unknown model {name!r}; known: {', '.join(MODELS)}") from None


def spec_for(net: nn.Module) -> ModelSpec:
    """The spec whose builder makes networks of ``net``'s exact type."""
    for spec in MODELS.values():
        if type(net) is spec.network_type:
            return spec
    raise UsageError(f"{type(net).__name__} is not a registered model")


def build_model(name: str, config: Any = None, *, tiny: bool = False) -> nn.Module:
    """Build network ``name`` from ``config`` (default: the full config; ``tiny`` for tests)."""
    spec = get_spec(name)
    if config is None:
        config = spec.tiny_config if tiny else spec.default_config
    if not isinstance(config, spec.config_type):
        raise UsageError(f"{name} needs a {spec.config_type.__name__}, got {type(config).__name__}")
    return spec.build(config)


def load_checkpoint(net: nn.Module, path: str | Path, *, name: str | None = None) -> LoadReport:
    """Load a checkpoint file into ``net`` strictly (``params_ema`` / ``params`` / bare / safetensors).

    ``name`` picks the registry entry (default: found from ``net``'s type). A plain CodeFormer
    checkpoint is accepted for id-codeformer and codeformer++: the report lists the new
    layers as untrained. Raises MissingWeightsError, WeightsError or WeightsMismatchError.
    """
    spec = get_spec(name) if name else spec_for(net)
    state_dict, param_key = read_state_dict(path)
    return spec.load_state_dict(net, state_dict, source=str(path), param_key=param_key)
