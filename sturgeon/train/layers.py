"""Functional building blocks: activations, weight init, batch norm and inverted dropout.

Nothing here owns state. Weights, running statistics and the random generator are passed in, so a
checkpoint can hold all of them and a fused group of K models can pass stacked tensors; the
hyperparameters ``bn_beta``, ``eps`` and ``keep_prob`` may be floats or broadcastable tensors.

>>> z = torch.tensor([[1.0], [3.0]], dtype=torch.float64)
>>> mean, var = torch.zeros(1, dtype=torch.float64), torch.ones(1, dtype=torch.float64)
>>> batch_norm(z, torch.ones(1), torch.zeros(1), mean, var, training=True, bn_beta=0.9, eps=0.0).flatten().tolist()
[-1.0, 1.0]
>>> # running mean 0.9 * 0 + 0.1 * 2; running var 0.9 * 1 + 0.1 * 2 (2 = unbiased variance of 1 and 3)
>>> [round(x, 12) for x in (*mean.tolist(), *var.tolist())]
[0.2, 1.1]
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from sturgeon.train.params import Activation, Init

Hyper = float | Tensor

LEAKY_SLOPE = 0.01  # torch's default negative slope


def activate(z: Tensor, activation: Activation) -> Tensor:
    """g(z) for the chosen activation."""
    if activation is Activation.RELU:
        return torch.relu(z)
    if activation is Activation.TANH:
        return torch.tanh(z)
    if activation is Activation.LEAKY_RELU:
        return F.leaky_relu(z, LEAKY_SLOPE)
    raise ValueError(f"Unknown activation {activation!r}.")


def init_weight(
    shape: tuple[int, ...],
    init: Init,
    *,
    gen: torch.Generator,
    dtype: torch.dtype,
    init_scale: float = 10.0,
) -> Tensor:
    """A weight tensor of ``shape`` (out, in, *kernel); fan_in is the product of all but the first dim.

    - zeros:  all 0, so every unit of a layer computes the same thing forever
    - large:  N(0, 1) * init_scale
    - xavier: N(0, 1) * sqrt(1 / fan_in)
    - he:     N(0, 1) * sqrt(2 / fan_in)

    Only ``large``, ``xavier`` and ``he`` draw from ``gen``.
    """
    if init is Init.ZEROS:
        return torch.zeros(shape, dtype=dtype)
    fan_in = math.prod(shape[1:])
    scale = {Init.LARGE: init_scale, Init.XAVIER: math.sqrt(1 / fan_in), Init.HE: math.sqrt(2 / fan_in)}[init]
    return torch.randn(shape, generator=gen, dtype=dtype) * scale


def batch_norm(
    z: Tensor,
    gamma: Tensor,
    beta: Tensor,
    running_mean: Tensor,
    running_var: Tensor,
    *,
    training: bool,
    bn_beta: Hyper = 0.9,
    eps: Hyper = 1e-5,
) -> Tensor:
    """Batch norm over every dim but the channel dim 1: (N, C) like BatchNorm1d, (N, C, L) and (N, C, H, W) like 2d.

    Training:
      1) mu, sigma2 = mean and biased variance of z over the batch (and positions)
      2) z_norm = (z - mu) / sqrt(sigma2 + eps)
      3) running stats, updated in place: running = bn_beta * running + (1 - bn_beta) * batch statistic,
         using the UNBIASED variance n / (n - 1) * sigma2 as torch.nn.BatchNorm1d does
         (bn_beta = 1 - torch's momentum)
    Evaluation: step 2 with the running averages instead of the batch statistics.
    Then z_tilde = gamma * z_norm + beta. Returns z_tilde; gradients flow through steps 1-2 in training.
    """
    dims = [0, *range(2, z.dim())]
    view = [1, -1] + [1] * (z.dim() - 2)  # (C,) <-> broadcastable against z
    if training:
        # 1) two passes, mean then mean of squared deviations: several times faster than
        #    torch.var over dims (0, 2, ...) on CPU, and as accurate
        mu = z.mean(dim=dims, keepdim=True)
        centered = z - mu
        sigma2 = (centered * centered).mean(dim=dims, keepdim=True)
        # 3) outside autograd: the running averages are statistics, not part of the graph
        with torch.no_grad():
            n = z.numel() // z.shape[1]
            unbiased = sigma2.view(-1) * (n / max(n - 1, 1))
            running_mean.mul_(bn_beta).add_((1 - bn_beta) * mu.view(-1))
            running_var.mul_(bn_beta).add_((1 - bn_beta) * unbiased)
    else:
        centered, sigma2 = z - running_mean.view(view), running_var.view(view)
    # 2)
    z_norm = centered / torch.sqrt(sigma2 + eps)
    return gamma.view(view) * z_norm + beta.view(view)


def dropout(a: Tensor, keep_prob: Hyper, *, gen: torch.Generator | None) -> Tensor:
    """Inverted dropout: keep each unit with probability keep_prob and divide by keep_prob, so that
    the expected activation is unchanged and evaluation needs no rescaling.

    A float keep_prob of 1.0 draws nothing from ``gen`` (the RNG stream then matches a run without dropout).
    """
    if not isinstance(keep_prob, Tensor) and keep_prob >= 1.0:
        return a
    if gen is None:
        raise ValueError("Dropout with keep_prob < 1 needs the generator 'gen' for its masks.")
    keep = torch.rand(a.shape, generator=gen, dtype=a.dtype) < keep_prob
    return a * keep / keep_prob
