"""ONNX export of an ``EngineNetwork``: inputs ``x``, ``[identity]``, ``[w]`` with a dynamic
batch axis, output ``image``; shared by the ``onnxruntime`` and ``tensorrt`` backends.

Exported with torch's dynamo exporter (needs onnxscript). Each node is renamed
``<module path>/<op>_<n>`` from the exporter's name scopes (stack traces dropped), so a
TensorRT layer or a profiler line says which part of the network it belongs to, and
``fp32_node_names`` can pick the numerically sensitive nodes by module (the precision plan
of ``engines.network``) and by op.
"""

from __future__ import annotations

import ast
import contextlib
import logging
import warnings
from pathlib import Path

import torch


OPSET = 20

SENSITIVE_OPS: frozenset[str] = frozenset({
    "ReduceMean", "ReduceSum", "ReduceSumSquare", "ReduceL2", "Pow", "Sqrt", "Reciprocal", "Div",
    "Softmax", "LogSoftmax", "LayerNormalization", "InstanceNormalization",
    "GroupNormalization", "ArgMax", "Exp", "Erf", "Gelu",
})
"""Ops kept in fp32 wherever they are: statistics (AdaIN, GroupNorm, LayerNorm), softmax,
divisions by small numbers, and the code choice."""


def export_onnx(module: torch.nn.Module, path: Path, *, max_batch: int, example_batch: int = 2,
                example: tuple[torch.Tensor, ...] | None = None, input_names: tuple[str, ...] | None = None,
                output_names: tuple[str, ...] = ("image",)) -> Path:
    """Export ``module`` to ``path`` (``.onnx``), batch axis dynamic in ``1..max_batch``.

    The export runs on the module's device with seeded example inputs; weights are stored in
    the file itself (external data only past protobuf's 2 GB limit). ``example`` /
    ``input_names`` / ``output_names``: for modules other than an ``EngineNetwork`` (the
    halves of a split network); by default the ``EngineNetwork``'s io gives them.
    """
    import onnx

    device = next(module.parameters()).device
    if example is None:
        example = module.io.example_inputs(max(2, example_batch), device)
    if input_names is None:
        input_names = module.io.input_names
    batch = torch.export.Dim("batch", min=1, max=max(2, max_batch))
    with warnings.catch_warnings(), _quiet_logger("onnxscript"):
        # the exporter's notes on axis names, deprecations and constant folding
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", FutureWarning)
        program = torch.onnx.export(
            module, example, input_names=list(input_names), output_names=list(output_names),
            dynamo=True, opset_version=OPSET, dynamic_shapes=(tuple({0: batch} for _ in example),),
            verbose=False, optimize=True,
        )
    model = program.model_proto
    name_nodes_by_scope(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(model, str(path), save_as_external_data=model.ByteSize() > 1_900_000_000)
    return path


@contextlib.contextmanager
def _quiet_logger(name: str):
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def node_scope(node) -> str:
    """The module path a node came from (``net.encoder.blocks.1.norm1``), or ``""``."""
    for prop in node.metadata_props:
        if prop.key == "pkg.torch.onnx.name_scopes":
            try:
                scopes = ast.literal_eval(prop.value)
            except (ValueError, SyntaxError):
                return ""
            paths = [s for s in scopes if s.startswith("net")]
            return paths[-1] if paths else ""
    return ""


def name_nodes_by_scope(model) -> None:
    """Rename every node ``<scope>/<op>_<n>`` and drop the bulky stack-trace metadata."""
    for i, node in enumerate(model.graph.node):
        scope = node_scope(node) or "graph"
        node.name = f"{scope}/{node.op_type}_{i}"
        keep = [p for p in node.metadata_props if p.key == "pkg.torch.onnx.name_scopes"]
        del node.metadata_props[:]
        node.metadata_props.extend(keep)


def is_fp32_node(name: str, op_type: str, fp32_modules: tuple[str, ...]) -> bool:
    """Whether a node (named by ``name_nodes_by_scope``) must compute in fp32: it belongs to a
    module the precision plan keeps in fp32 (``network.precision_plan(...).fp32``, paths
    relative to the network) or is a sensitive op (``SENSITIVE_OPS``)."""
    if op_type in SENSITIVE_OPS:
        return True
    scope = name.rsplit("/", 1)[0]
    return any(scope == f"net.{p}" or scope.startswith(f"net.{p}.") for p in fp32_modules)


def fp32_node_names(model, fp32_modules: tuple[str, ...]) -> set[str]:
    """Names of the nodes of an exported model that ``is_fp32_node`` keeps in fp32."""
    return {n.name for n in model.graph.node if is_fp32_node(n.name, n.op_type, fp32_modules)}
