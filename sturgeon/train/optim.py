"""Functional update rules and learning-rate decay.

Each rule updates one parameter tensor ``w`` in place from its gradient ``g`` and its state tensors.
Hyperparameters may be python floats or tensors that broadcast against ``w``: a fused group of K
models stores weights as (K, ...) and passes ``lr`` as a (K, 1, ...) tensor, and gets exactly the
numbers K separate calls would give. We do not use ``torch.optim`` for that reason, but we follow
its conventions so that results match it (tests check SGD, SGD(momentum), RMSprop and Adam):

- momentum: ``v = beta * v + g; w -= lr * v`` (torch's form). The course's EWA form
  ``v = beta * v + (1 - beta) * g`` is the same rule with lr scaled by ``1 / (1 - beta)``.
- RMSprop: ``s = beta * s + (1 - beta) * g**2; w -= lr * g / (sqrt(s) + eps)`` (torch's ``alpha`` is our beta).
- Adam: bias-corrected moments, ``eps`` added after the square root of the corrected ``s``, as torch.
- L2: :func:`with_l2` adds ``l2 * w`` to the gradient of weights (torch's ``weight_decay``), which is
  the gradient of the cost term ``(l2 / 2) * ||W||^2``; the course's ``lambda / (2m)`` is our ``l2 = lambda / m``.

>>> w, g, v = (torch.tensor([x, x], dtype=torch.float64) for x in (1.0, 0.5, 0.0))
>>> momentum_(w, g, v, lr=0.1, beta=0.9); momentum_(w, g, v, lr=0.1, beta=0.9)
>>> v.tolist(), [round(x, 6) for x in w.tolist()]
([0.95, 0.95], [0.855, 0.855])
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from sturgeon.train.params import Decay, TrainParams

Hyper = float | Tensor  # a python float, or a tensor broadcastable against the parameter


@torch.no_grad()
def with_l2(g: Tensor, w: Tensor, l2: Hyper) -> Tensor:
    """``g + l2 * w``: the gradient of ``(l2 / 2) * ||w||^2`` added; for weights only, not biases, gamma or beta.

    Not in place, because autograd may hand out a gradient that shares memory with another one.
    """
    if not isinstance(l2, Tensor) and l2 == 0.0:
        return g
    return g + l2 * w


@torch.no_grad()
def sgd_(w: Tensor, g: Tensor, *, lr: Hyper) -> None:
    """Plain gradient descent: ``w -= lr * g``."""
    w.sub_(lr * g)


@torch.no_grad()
def momentum_(w: Tensor, g: Tensor, v: Tensor, *, lr: Hyper, beta: Hyper) -> None:
    """Gradient descent with momentum, torch's form: ``v = beta * v + g; w -= lr * v``."""
    v.mul_(beta).add_(g)
    w.sub_(lr * v)


@torch.no_grad()
def rmsprop_(w: Tensor, g: Tensor, s: Tensor, *, lr: Hyper, beta: Hyper, eps: Hyper) -> None:
    """RMSprop: ``s = beta * s + (1 - beta) * g**2; w -= lr * g / (sqrt(s) + eps)``."""
    s.mul_(beta).add_((1 - beta) * g * g)
    w.sub_(lr * g / (s.sqrt() + eps))


@torch.no_grad()
def adam_(
    w: Tensor,
    g: Tensor,
    v: Tensor,
    s: Tensor,
    *,
    t: int,
    lr: Hyper,
    beta1: Hyper,
    beta2: Hyper,
    eps: Hyper,
) -> None:
    """Adam step number ``t`` (1-based), laid out as torch.optim.Adam computes it.

    1) v = beta1 * v + (1 - beta1) * g           first moment (momentum)
    2) s = beta2 * s + (1 - beta2) * g**2        second moment (RMSprop)
    3) w -= lr / (1 - beta1**t) * v / (sqrt(s) / sqrt(1 - beta2**t) + eps)
    """
    # 1) and 2): torch's lerp_ computes v + (1 - beta1) * (g - v); the same to rounding.
    v.mul_(beta1).add_((1 - beta1) * g)
    s.mul_(beta2).add_((1 - beta2) * g * g)
    # 3) bias correction; ** works for floats and tensors alike
    correction1 = 1 - beta1**t
    correction2 = 1 - beta2**t
    step_size = lr / correction1
    denom = s.sqrt() / correction2**0.5 + eps
    w.sub_(step_size * v / denom)


def decayed_lr(
    lr0: float,
    epoch: int,
    decay: Decay,
    *,
    decay_rate: float = 0.5,
    decay_base: float = 0.95,
    decay_every: int = 10,
    epochs: int = 10,
) -> float:
    """Learning rate for the 0-based ``epoch`` from the initial rate ``lr0``.

    - none:         lr0
    - inverse_time: lr0 / (1 + decay_rate * epoch)
    - exponential:  lr0 * decay_base**epoch
    - step:         lr0 * decay_rate**floor(epoch / decay_every)
    - cosine:       lr0 * (1 + cos(pi * epoch / epochs)) / 2, reaching 0 at ``epochs`` and staying there

    >>> decayed_lr(0.1, 2, Decay.INVERSE_TIME, decay_rate=1.0)
    0.03333333333333333
    """
    if decay is Decay.NONE:
        return lr0
    if decay is Decay.INVERSE_TIME:
        return lr0 / (1 + decay_rate * epoch)
    if decay is Decay.EXPONENTIAL:
        return lr0 * decay_base**epoch
    if decay is Decay.STEP:
        return lr0 * decay_rate ** (epoch // decay_every)
    if decay is Decay.COSINE:
        progress = min(epoch, epochs) / epochs
        return lr0 * 0.5 * (1 + math.cos(math.pi * progress))
    raise ValueError(f"Unknown decay {decay!r}.")


def lr_at(epoch: int, params: TrainParams) -> float:
    """Learning rate for the 0-based ``epoch`` under ``params``' schedule, with ``params.lr`` as lr0.

    >>> lr_at(3, TrainParams.from_dict({"lr": 0.1, "decay": "step", "decay_rate": 0.5, "decay_every": 2}))
    0.05
    """
    return decayed_lr(
        params.lr,
        epoch,
        params.decay,
        decay_rate=params.decay_rate,
        decay_base=params.decay_base,
        decay_every=params.decay_every,
        epochs=params.epochs,
    )
