"""A fused group split into per-core shards, trained side by side: one thread and one torch thread each.

Why: the products of a fused group are small batched matrices (K × (64, 128) @ (128, 128)) and most of the
rest is memory-bound elementwise work and per-model optimizer calls; two torch threads inside each op
share that work poorly on 2 cores, while two independent sub-groups, one per core, keep both cores busy
the whole step (PyTorch releases the GIL inside its kernels, so Python threads run them in parallel).

Each model's trajectory depends only on its own configuration and on the group's data order, which every
shard draws from its own generator seeded alike (``FusedTrainer``): so sharding changes no model's numbers
(tests/caviar check sharded == unsharded, bit for bit), except with dropout, whose masks are drawn for the
whole shard at once (each model still gets an independent mask).

>>> from sturgeon.train import load_data
>>> group = Shards(load_data("digits"), [{"lr": 1e-3, "units": 32}, {"lr": 1e-2, "units": 32}], n=2)
>>> [round(m["lr"], 3) for m in group.step()], group.active
([0.001, 0.01], [0, 1])
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import torch

from sturgeon.caviar.fused import FusedTrainer
from sturgeon.train import Dataset, TrainParams

__all__ = ["Shards", "default_shards"]


def default_shards(n_models: int, n_jobs: int = 1) -> int:
    """One shard per core left to this group (cores / groups side by side), never more than models."""
    return max(1, min(n_models, (os.cpu_count() or 1) // max(n_jobs, 1)))


def _one_thread() -> None:
    torch.set_num_threads(1)  # per thread: each shard owns one core


class Shards:
    """The ``FusedTrainer`` interface (``step``, ``keep``, ``add``, ``update``, ``diverged``, ``active``, ``epochs``,
    ``key``) over ``n`` fused sub-groups, each trained in a thread of its own on one torch thread.

    Models are dealt to shards in blocks of consecutive configurations; ``add`` gives newcomers to the
    smallest shards. ``active`` lists model ids in the order of ``step()``'s result: shard by shard.
    """

    def __init__(self, data: Dataset, configs: Sequence[Mapping[str, Any] | TrainParams], n: int = 1) -> None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"The 'n' parameter must be an integer >= 1. Got {n!r} instead.")
        if not configs:
            raise ValueError("The 'configs' parameter must hold at least one configuration. Got none instead.")
        n = min(n, len(configs))
        bounds = [len(configs) * i // n for i in range(n + 1)]
        self.shards = [FusedTrainer(data, configs[a:b]) for a, b in zip(bounds, bounds[1:])]
        self.key = self.shards[0].key
        self.data = data
        # global id <-> (shard, the shard's own id)
        self._where: dict[int, tuple[int, int]] = {}
        self._ids: list[dict[int, int]] = [{} for _ in self.shards]
        for s, (a, shard) in enumerate(zip(bounds, self.shards)):
            for j, local in enumerate(shard.active):
                self._link(a + j, s, local)
        self._next_id = len(configs)
        # even one shard runs in a thread of its own: every shard on one torch thread, so a model's numbers
        # do not depend on how many shards, models or threads the caller has (tests/caviar/test_shards.py)
        self._pool: ThreadPoolExecutor | None = ThreadPoolExecutor(n, thread_name_prefix="sturgeon-shard",
                                                                   initializer=_one_thread)

    def _link(self, model: int, shard: int, local: int) -> None:
        self._where[model] = (shard, local)
        self._ids[shard][local] = model

    # -- the FusedTrainer interface ------------------------------------------------------------------------
    @property
    def active(self) -> list[int]:
        return [self._ids[s][m] for s, shard in enumerate(self.shards) for m in shard.active]

    @property
    def epochs(self) -> list[int]:
        return [e for shard in self.shards for e in shard.epochs]

    def __len__(self) -> int:
        return sum(len(shard) for shard in self.shards)

    def step(self) -> list[dict[str, float]]:
        """One epoch of every active model, the shards side by side."""
        if self._pool is None:
            raise RuntimeError("This group was closed; its shards can no longer train.")
        futures = [self._pool.submit(shard.step) for shard in self.shards]
        return [m for future in futures for m in future.result()]

    def keep(self, ids: Sequence[int]) -> None:
        wanted = set(ids)
        unknown = wanted - set(self.active)
        if unknown:
            raise ValueError(f"The 'ids' parameter names models not in this group: {sorted(unknown)}.")
        for s, shard in enumerate(self.shards):
            shard.keep([m for m in shard.active if self._ids[s][m] in wanted])

    def add(self, configs: Sequence[Mapping[str, Any] | TrainParams]) -> list[int]:
        """Give each new model to the currently smallest shard; returns their ids."""
        ids = []
        for config in configs:
            s = min(range(len(self.shards)), key=lambda i: len(self.shards[i]))
            (local,) = self.shards[s].add([config])
            self._link(self._next_id, s, local)
            ids.append(self._next_id)
            self._next_id += 1
        return ids

    def update(self, model: int, params: Mapping[str, Any]) -> None:
        s, local = self._where[model]
        self.shards[s].update(local, params)

    def diverged(self, metrics: Sequence[Mapping[str, float]], explode: float = 1e3) -> list[int]:
        out, start = [], 0
        for s, shard in enumerate(self.shards):
            part = metrics[start:start + len(shard)]
            out += [self._ids[s][m] for m in shard.diverged(part, explode)]
            start += len(shard)
        return out

    def close(self) -> None:
        """Stop the shard threads (idle between steps; also stopped when the object is collected)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def __del__(self) -> None:
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.shutdown(wait=False)
