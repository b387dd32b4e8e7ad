"""The network: an MLP or a small CNN, written functionally.

:class:`Network` holds only the architecture. Its weights (``W1, b1, gamma1, beta1, ...``) and batch
norm running statistics (``mean1, var1, ...``) live in plain dicts of tensors that :meth:`Network.init`
creates and :meth:`Network.forward` reads, so the trainer can checkpoint them and apply its own update
rules, and a fused trainer can stack them.

Layout, with l = 1, 2, ... counting layers that have weights:

- mlp: flatten -> [dense -> (batch norm) -> g -> dropout] * len(widths) -> dense (logits)
- cnn: [conv 3, padding 1 -> (batch norm) -> g -> max pool 2] * 2 -> flatten -> the mlp head above.
  Conv1d for 1-D examples (mnist1d, shape (40,)), Conv2d for images (digits, shape (8, 8)) and for
  (C, H, W) inputs. Dropout is applied to dense hidden units only, never to conv feature maps.

Dense weights are (out, in), so row j of ``W1`` holds the incoming weights of hidden unit j.
A layer followed by batch norm has no bias ``b``: batch norm subtracts the mean, and its ``beta`` takes
the bias's role.

>>> net = Network(TrainParams.from_dict({"layers": 1, "units": 5}), shape=(8, 8), n_classes=10)
>>> weights, buffers = net.init(torch.Generator().manual_seed(0), torch.float32)
>>> {k: tuple(v.shape) for k, v in weights.items()}
{'W1': (5, 64), 'b1': (5,), 'W2': (10, 5), 'b2': (10,)}
>>> net.forward(weights, buffers, torch.zeros(3, 8, 8), training=False).shape
torch.Size([3, 10])
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

import torch
import torch.nn.functional as F
from torch import Tensor

from sturgeon.train.layers import Hyper, activate, batch_norm, dropout, init_weight
from sturgeon.train.params import ModelKind, TrainParams

CONV_LAYERS = 2
KERNEL = 3


class LayerKind(str, Enum):
    CONV = "conv"
    DENSE = "dense"
    OUTPUT = "output"


@dataclass(frozen=True)
class Layer:
    index: int  # l in W{l}
    kind: LayerKind
    shape: tuple[int, ...]  # weight shape: (out, in) or (out, in, *kernel)
    batch_norm: bool


class Network:
    """Architecture of the model chosen by ``params`` for examples of ``shape`` and ``n_classes`` classes."""

    def __init__(self, params: TrainParams, shape: tuple[int, ...], n_classes: int) -> None:
        self.params = params
        self.shape = tuple(shape)
        self.n_classes = n_classes
        self.layers: list[Layer] = []
        self.conv_dim = 0  # 1 or 2 for a cnn
        features = math.prod(self.shape)
        if params.model is ModelKind.CNN:
            features = self._add_convs(params)
        for width in params.widths:
            self._add(LayerKind.DENSE, (width, features), params.batch_norm)
            features = width
        self._add(LayerKind.OUTPUT, (n_classes, features), False)

    def _add(self, kind: LayerKind, shape: tuple[int, ...], bn: bool) -> None:
        self.layers.append(Layer(len(self.layers) + 1, kind, shape, bn))

    def _add_convs(self, params: TrainParams) -> int:
        # (L,) -> Conv1d on one channel; (H, W) -> Conv2d on one channel; (C, H, W) -> Conv2d on C channels
        if len(self.shape) not in (1, 2, 3):
            raise ValueError(f"The 'model' parameter 'cnn' needs 1-D, 2-D or 3-D examples. Got shape {self.shape}.")
        spatial = list(self.shape[1:]) if len(self.shape) == 3 else list(self.shape)
        in_channels = self.shape[0] if len(self.shape) == 3 else 1
        self.conv_dim = len(spatial)
        for _ in range(CONV_LAYERS):
            self._add(LayerKind.CONV, (params.channels, in_channels) + (KERNEL,) * self.conv_dim, params.batch_norm)
            in_channels = params.channels
            spatial = [math.ceil(s / 2) for s in spatial]  # max pool 2 with ceil_mode
        return in_channels * math.prod(spatial)

    @property
    def weight_names(self) -> list[str]:
        """Names of the tensors that L2 regularizes: weights only, not biases, gamma or beta."""
        return [f"W{layer.index}" for layer in self.layers]

    def init(self, gen: torch.Generator, dtype: torch.dtype) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """Fresh weights (drawn from ``gen`` layer by layer) and batch norm running statistics.

        Biases and beta start at 0, gamma at 1, running mean at 0 and running variance at 1.
        """
        p = self.params
        weights: dict[str, Tensor] = {}
        buffers: dict[str, Tensor] = {}
        for layer in self.layers:
            l, out = layer.index, layer.shape[0]
            weights[f"W{l}"] = init_weight(layer.shape, p.init, gen=gen, dtype=dtype, init_scale=p.init_scale)
            if layer.batch_norm:
                weights[f"gamma{l}"] = torch.ones(out, dtype=dtype)
                weights[f"beta{l}"] = torch.zeros(out, dtype=dtype)
                buffers[f"mean{l}"] = torch.zeros(out, dtype=dtype)
                buffers[f"var{l}"] = torch.ones(out, dtype=dtype)
            else:
                weights[f"b{l}"] = torch.zeros(out, dtype=dtype)
        for w in weights.values():
            w.requires_grad_(True)
        return weights, buffers

    def forward(
        self,
        weights: dict[str, Tensor],
        buffers: dict[str, Tensor],
        x: Tensor,
        *,
        training: bool,
        keep_prob: Hyper = 1.0,
        bn_beta: Hyper = 0.9,
        bn_eps: Hyper = 1e-5,
        gen: torch.Generator | None = None,
    ) -> Tensor:
        """Logits (N, n_classes) for inputs x (N, *shape).

        In training mode batch norm uses batch statistics and updates ``buffers`` in place, and dropout
        draws its masks from ``gen``; in evaluation mode both are off and nothing is drawn.
        """
        act = self.params.activation
        a = x
        if self.params.model is ModelKind.CNN and len(self.shape) < 3:
            a = a.unsqueeze(1)  # (N, 1, L) or (N, 1, H, W)
        elif self.params.model is ModelKind.MLP:
            a = a.flatten(1)
        for layer in self.layers:
            l = layer.index
            W, b = weights[f"W{l}"], weights.get(f"b{l}")
            if layer.kind is LayerKind.CONV:
                conv = F.conv1d if self.conv_dim == 1 else F.conv2d
                z = conv(a, W, b, padding=KERNEL // 2)
            else:
                a = a.flatten(1)
                z = F.linear(a, W, b)  # a @ W.T + b
            if layer.kind is LayerKind.OUTPUT:
                return z
            if layer.batch_norm:
                z = batch_norm(
                    z, weights[f"gamma{l}"], weights[f"beta{l}"], buffers[f"mean{l}"], buffers[f"var{l}"],
                    training=training, bn_beta=bn_beta, eps=bn_eps,
                )  # fmt: skip
            a = activate(z, act)
            if layer.kind is LayerKind.CONV:
                pool = F.max_pool1d if self.conv_dim == 1 else F.max_pool2d
                a = pool(a, 2, ceil_mode=True)
            elif training:
                a = dropout(a, keep_prob, gen=gen)
        raise AssertionError("unreachable: the last layer is the output layer")
