"""Thin wrappers that give a network the plain signature an exporter or engine wants."""

from __future__ import annotations

from torch import Tensor, nn


class ImageOnly(nn.Module):
    """Call a registry network and return only its first output, the restored image.

    ``forward(*inputs)`` passes the inputs through positionally: ``(x, w)`` for CodeFormer,
    ``(x, identity, w)`` for ID-CodeFormer, ``(x,)`` for CodeFormer++. With ``w`` a tensor
    (0-d or ``(B,)``) it stays an input of an exported graph. Export with the default
    (dynamo) ``torch.onnx.export``; for a batch axis on ``(x, w)``:
    ``dynamic_shapes=(({0: batch}, {0: batch}),)`` with ``batch = torch.export.Dim("batch")``.

    Args:
        net: the network to wrap (its parameters are shared, not copied; its train / eval
            mode is taken over).
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.train(net.training)  # a wrapper of an eval-mode network is in eval mode

    def forward(self, *inputs: Tensor) -> Tensor:
        return self.net(*inputs)[0]
