"""Grouping: which trials can be fused, and how many fit in one group's memory budget.

>>> from sturgeon.train import TrainParams
>>> ps = [TrainParams.from_dict({"units": u, "lr": lr}) for u, lr in [(32, 1e-3), (64, 1e-3), (32, 1e-2)]]
>>> make_groups(ps, shape=(8, 8), n_classes=10)
[[0, 2], [1]]
"""
from __future__ import annotations

import math
from collections.abc import Sequence

from sturgeon.caviar.fused import SLOTS, group_key
from sturgeon.train import Network, TrainParams

__all__ = ["make_groups", "model_bytes", "DEFAULT_BUDGET"]

DEFAULT_BUDGET = 2 << 30  # 2 GiB per group


def model_bytes(p: TrainParams, shape: tuple[int, ...], n_classes: int) -> int:
    """A generous estimate of one model's memory inside a group: weights, gradients, optimizer slots and
    update temporaries (4 + slots copies), plus activations of a training batch and an evaluation chunk."""
    net = Network(p, shape, n_classes)
    n_weights = sum(math.prod(layer.shape) + 2 * layer.shape[0] for layer in net.layers)
    units = sum(layer.shape[0] * (math.prod(shape) if layer.kind.value == "conv" else 1) for layer in net.layers)
    itemsize = 8 if p.dtype.value == "float64" else 4
    return itemsize * (n_weights * (4 + len(SLOTS[p.optimizer])) + units * (4 * p.batch_size + 2 * 256))


def make_groups(
    params: Sequence[TrainParams], *, shape: tuple[int, ...], n_classes: int, budget: int = DEFAULT_BUDGET,
    max_models: int | None = None,
) -> list[list[int]]:
    """Indices of ``params`` grouped by what cannot be fused, in order of first appearance; a group is
    split when it would exceed ``budget`` bytes or ``max_models`` models."""
    buckets: dict[tuple[object, ...], list[int]] = {}
    for i, p in enumerate(params):
        buckets.setdefault(group_key(p), []).append(i)
    groups: list[list[int]] = []
    for members in buckets.values():
        per = model_bytes(params[members[0]], shape, n_classes)
        cap = max(1, budget // per)
        if max_models is not None:
            cap = min(cap, max_models)
        groups += [members[i:i + cap] for i in range(0, len(members), cap)]
    return groups
