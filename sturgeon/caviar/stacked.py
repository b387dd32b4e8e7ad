"""Stacked layers and update rules: K models in one set of tensors with a leading model axis.

Weights are (K, out, in) for dense layers and (K, out, in, *kernel) for conv layers; activations of dense
layers are (K, N, H) — every model sees the same mini-batch of N examples. Per-model hyperparameters are
length-K tensors viewed as (K, 1, ..., 1) so they broadcast against a stacked tensor.

The arithmetic is laid out exactly as the unfused trainer's (``sturgeon.train``), operation for operation,
so that each slice k of a fused run equals model k trained alone (to rounding; tests/caviar check 1e-9 in
float64).
"""
from __future__ import annotations

import torch
from torch import Tensor

# Plain SGD and momentum are single passes already; the unfused rules take (K, 1, ...) tensors as they are.
from sturgeon.train.optim import momentum_, sgd_

__all__ = ["chunks", "per_model", "batch_norm_stacked", "dropout_stacked", "sgd_", "momentum_", "rmsprop_"]


CHUNK_ELEMENTS = 1 << 17  # 128 Ki elements (512 KiB in float32): an update's temporaries stay in L2 cache


def chunks(n_models: int, per_model_elements: int) -> list[slice]:
    """Slices of the model axis whose tensors hold about CHUNK_ELEMENTS each.

    A stacked optimizer update is memory bound: done over all K models at once its temporaries spill out
    of cache on every pass; chunk by chunk they stay in it.
    """
    rows = max(1, CHUNK_ELEMENTS // max(per_model_elements, 1))
    return [slice(i, min(i + rows, n_models)) for i in range(0, n_models, rows)]


def per_model(h: Tensor, like: Tensor) -> Tensor:
    """View a (K,) hyperparameter as (K, 1, ..., 1) to broadcast against ``like`` (K, ...)."""
    return h.view(-1, *([1] * (like.dim() - 1)))


def batch_norm_stacked(
    z: Tensor,
    gamma: Tensor,
    beta: Tensor,
    running_mean: Tensor,
    running_var: Tensor,
    *,
    training: bool,
    bn_beta: Tensor,
    eps: Tensor,
) -> Tensor:
    """Batch norm of dense pre-activations z (K, N, H), each model over its own batch statistics.

    gamma, beta, running_mean, running_var are (K, H); bn_beta and eps are (K,). Same steps as
    ``sturgeon.train.layers.batch_norm``: two-pass mean and biased variance for normalizing, the unbiased
    variance for the running average, updated in place outside autograd.
    """
    if training:
        mu = z.mean(dim=1, keepdim=True)  # (K, 1, H)
        centered = z - mu
        sigma2 = (centered * centered).mean(dim=1, keepdim=True)
        with torch.no_grad():
            n = z.shape[1]
            unbiased = sigma2.squeeze(1) * (n / max(n - 1, 1))
            b = bn_beta.view(-1, 1)
            running_mean.mul_(b).add_((1 - b) * mu.squeeze(1))
            running_var.mul_(b).add_((1 - b) * unbiased)
    else:
        centered, sigma2 = z - running_mean.unsqueeze(1), running_var.unsqueeze(1)
    z_norm = centered / torch.sqrt(sigma2 + eps.view(-1, 1, 1))
    return gamma.unsqueeze(1) * z_norm + beta.unsqueeze(1)


def dropout_stacked(a: Tensor, keep_prob: Tensor, gen: torch.Generator) -> Tensor:
    """Inverted dropout with an independent mask per model; keep_prob is (K,). A model with keep_prob 1
    keeps every unit exactly (``rand < 1`` always holds)."""
    k = per_model(keep_prob, a)
    keep = torch.rand(a.shape, generator=gen, dtype=a.dtype) < k
    return a * keep / k


# Update rules: the same formulas as sturgeon.train.optim, with every hyperparameter a (K, 1, ...) tensor.
# (Adam runs PyTorch's fused kernel once per model instead: flat.FlatParams.step.)


@torch.no_grad()
def rmsprop_(w: Tensor, g: Tensor, s: Tensor, *, lr: Tensor, beta: Tensor, one_minus_beta: Tensor, eps: Tensor) -> None:
    s.mul_(beta).addcmul_(one_minus_beta * g, g)
    denom = s.sqrt().add_(eps)
    w.addcdiv_(lr * g, denom, value=-1)

