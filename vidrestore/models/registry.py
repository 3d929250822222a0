"""The networks the CLI can name, as an explicit table (no scanning of files).

Each ``ModelSpec`` gives a network's config type with its full default and a ``tiny``
config for tests, how to build it, whether it needs an identity vector, which weights
entries it uses, how a checkpoint file is loaded into it (strictly; see ``checkpoint``),
and, for the two models built on CodeFormer, how to tell that their own layers were never
trained and what runs in their place then (``untrained_parts``, ``base_network``).

    >>> net = build_model("codeformer")                      # the official architecture
    >>> report = load_checkpoint(net, "weights/codeformer.pth")
    >>> net, report = load_model("id-codeformer", "runs/ia_cft/checkpoints/net_g_final.pth")
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal

from torch import Tensor, nn

from vidrestore.config import from_mapping
from vidrestore.errors import ConfigError, UsageError, WeightsMismatchError
from vidrestore.names import NetworkName, check_covers

from .checkpoint import CheckpointMetadata, LoadReport, load_strict, read_checkpoint
from .codeformer import CodeFormer, CodeFormerConfig
from .codeformer_pp import CodeFormerPP, CodeFormerPPConfig, CodeFormerPPFaithful
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
    from_base_config: the model's config around a base (CodeFormer) config.
    refuse_when: ``"any"`` / ``"all"`` of the network's ``untrained_parts()`` being listed
    makes it no better than its base model (CodeFormer++ needs DAM and TGRN; ID-CodeFormer
    is CodeFormer only while every identity path is untrained).
    base_network: the network ``--allow-untrained`` runs instead, and the name of the spec
    whose inputs it takes: ``(module, spec name)``; it holds no untrained layer.
    own_parts: the names ``untrained_parts`` may list.
    training: the ``python -m training`` commands that make the model's own weights.
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
    from_base_config: Callable[[CodeFormerConfig], Any] | None = field(default=None, repr=False)
    refuse_when: Literal["any", "all"] = "any"
    own_parts: tuple[str, ...] = ()
    base_network: Callable[[nn.Module], tuple[nn.Module, str]] | None = field(default=None, repr=False)
    training: tuple[str, ...] = ()

    def config_for(self, metadata: CheckpointMetadata | None, source: str = "checkpoint") -> Any:
        """The config to build for a checkpoint: the network its metadata records (the
        model's own, or a base CodeFormer's inside this model), else the default.

        Raises WeightsMismatchError when the metadata names another model.
        """
        if metadata is None:
            return self.default_config
        try:
            if metadata.model == self.name:
                return from_mapping(self.config_type, metadata.network, where=f"{source} network")
            if self.from_base_config is not None and metadata.model == "codeformer":
                return self.from_base_config(from_mapping(CodeFormerConfig, metadata.network,
                                                          where=f"{source} network"))
        except ConfigError as exc:
            raise WeightsMismatchError(f"{source}: its recorded network does not fit {self.name} ({exc})") from None
        raise WeightsMismatchError(f"{source} holds a {metadata.model} network (its metadata says), not {self.name}")

    def untrained_parts(self, net: nn.Module) -> tuple[str, ...]:
        """The network's own parts still at their initial values (``()`` for CodeFormer)."""
        parts = getattr(net, "untrained_parts", None)
        return tuple(parts()) if callable(parts) else ()

    def refuses(self, parts: tuple[str, ...]) -> bool:
        """Whether ``parts`` (from ``untrained_parts(net)``) leave the model untrained."""
        if not parts:
            return False
        return self.refuse_when == "any" or set(parts) >= set(self.own_parts)

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


def _idcodeformer_as_codeformer(net: nn.Module) -> tuple[nn.Module, str]:
    """ID-CodeFormer without its (untrained) identity layers: CodeFormer, same weights."""
    assert isinstance(net, IDCodeFormer)
    base = CodeFormer.from_config(net.config)
    keys = set(base.state_dict())
    base.load_state_dict({k: v for k, v in net.state_dict().items() if k in keys}, strict=True)
    return base.eval(), "codeformer"


def _codeformer_pp_as_faithful(net: nn.Module) -> tuple[nn.Module, str]:
    """CodeFormer++ with an identity warp and a zero residual: its faithful output I_F."""
    assert isinstance(net, CodeFormerPP)
    return CodeFormerPPFaithful(net.codeformer, net.config.faithful_w).eval(), "codeformer++"


_ID_TRAINING = ("python -m training transformer --config configs/training/id_transformer.yaml",
                "python -m training cft --config configs/training/ia_cft.yaml")
_PP_TRAINING = ("python -m training dam --config configs/training/dam.yaml",
                "python -m training tgrn --config configs/training/tgrn.yaml")


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
            own_key_prefixes=NEW_LAYER_PREFIXES, from_base_config=lambda cf: IDCodeFormerConfig(cf),
            refuse_when="all", own_parts=("identity cross-attention", "IA-CFT"), base_network=_idcodeformer_as_codeformer, training=_ID_TRAINING,
        ),
        ModelSpec(
            "codeformer++", CodeFormerPP, CodeFormerPPConfig, CodeFormerPPConfig(),
            CodeFormerPPConfig(TINY_CODEFORMER, DAMConfig(8, 3), TGRNConfig(32, (1, 1, 2), 2, 4)),
            CodeFormerPP.from_config, needs_identity=False, base_weights="codeformer",
            takes_fidelity=False, trained_weights="codeformer++", extends_base=_load_codeformer_pp_base,
            own_key_prefixes=("codeformer.", "dam.", "tgrn."), from_base_config=lambda cf: CodeFormerPPConfig(cf),
            refuse_when="any", own_parts=("DAM", "TGRN"), base_network=_codeformer_pp_as_faithful, training=_PP_TRAINING,
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
    checkpoint = read_checkpoint(path)
    report = spec.load_state_dict(net, checkpoint.state_dict, source=str(path), param_key=checkpoint.param_key)
    return dataclasses.replace(report, metadata=checkpoint.metadata)


def load_model(name: str, path: str | Path) -> tuple[nn.Module, LoadReport]:
    """Network ``name`` built as ``path``'s metadata records it (default config without
    metadata) with the checkpoint loaded strictly, in eval mode, and the load's report."""
    spec = get_spec(name)
    checkpoint = read_checkpoint(path)
    net = build_model(name, spec.config_for(checkpoint.metadata, str(path)))
    report = spec.load_state_dict(net, checkpoint.state_dict, source=str(path), param_key=checkpoint.param_key)
    return net.eval(), dataclasses.replace(report, metadata=checkpoint.metadata)
