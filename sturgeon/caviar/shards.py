"""A fused group split into shards trained side by side: one thread per core, one torch thread each.

Why: the products of a fused group are small batched matrices (K × (64, 128) @ (128, 128)) and much of
the rest is memory-bound elementwise work and per-model optimizer calls; two torch threads inside each op
share that work poorly on 2 cores, while independent sub-groups, one thread per core, keep both cores busy
the whole step (PyTorch releases the GIL inside its kernels, so Python threads run them in parallel).
Each thread trains its shards ("blocks" of at most ``BLOCK`` models) one after another, so a block's
tensors stay in cache.

Each model's trajectory depends only on its own configuration and on the group's data order, which every
shard draws from its own generator seeded alike (``FusedTrainer``), and each model's products have the
same shapes in any block: so how a group is split changes no model's numbers, bit for bit
(tests/caviar/test_shards.py). Two exceptions: dropout masks are drawn for a whole shard at once (each
model still gets an independent mask), and a different torch thread count may round products differently.

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

__all__ = ["Shards", "default_threads"]


def default_threads(n_models: int, n_jobs: int = 1) -> int:
    """One thread per core left to this group (cores / groups side by side), never more than models."""
    return max(1, min(n_models, (os.cpu_count() or 1) // max(n_jobs, 1)))


# Models per block (FusedTrainer): a thread trains its blocks one after another, each epoch, and a small
# block's weights, gradients, Adam moments and activations stay in cache. Measured (2 threads, MLP 2x128,
# Adam, model-epochs/s, blocks of 8 / 16 / 32 / 64): digits K = 64: 256 / 273 / 270 / 237; K = 256:
# 324 / 322 / 281 / -, 128 models per block: ~175; mnist1d K = 64: 98 / 101 / 103; K = 256: 117 / 133 / 123.
BLOCK = 16


def _one_thread() -> None:
    torch.set_num_threads(1)  # per thread: each shard owns one core


class Shards:
    """The ``FusedTrainer`` interface (``step``, ``keep``, ``add``, ``update``, ``diverged``, ``active``, ``epochs``,
    ``key``) over fused sub-groups ("shards", ``FusedTrainer`` blocks of at most ``block`` consecutive
    configurations) trained by ``n`` threads side by side, each on one torch thread.

    ``add`` gives newcomers to the least loaded thread. ``active`` lists model ids in the order of
    ``step()``'s result: shard by shard.
    """

    def __init__(self, data: Dataset, configs: Sequence[Mapping[str, Any] | TrainParams], n: int = 1,
                 block: int = BLOCK) -> None:
        for name, value in (("n", n), ("block", block)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"The '{name}' parameter must be an integer >= 1. Got {value!r} instead.")
        if not configs:
            raise ValueError("The 'configs' parameter must hold at least one configuration. Got none instead.")
        n = min(n, len(configs))
        m = n * -(-len(configs) // (n * block))  # blocks: a multiple of the threads, each <= block models
        m = min(m, len(configs))
        bounds = [len(configs) * i // m for i in range(m + 1)]
        self.shards = [FusedTrainer(data, configs[a:b]) for a, b in zip(bounds, bounds[1:])]
        # thread t trains blocks lanes[t], one after another: consecutive blocks, so results stay in order
        self.lanes = [list(range(m * t // n, m * (t + 1) // n)) for t in range(n)]
        self.key = self.shards[0].key
        self.data = data
        # global id <-> (shard, the shard's own id)
        self._where: dict[int, tuple[int, int]] = {}
        self._ids: list[dict[int, int]] = [{} for _ in self.shards]
        for s, (a, shard) in enumerate(zip(bounds, self.shards)):
            for j, local in enumerate(shard.active):
                self._link(a + j, s, local)
        self._next_id = len(configs)
        # even one thread is a thread of its own: every shard on one torch thread, so a model's numbers
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
        futures = [self._pool.submit(self._step_lane, lane) for lane in self.lanes]
        return [m for future in futures for m in future.result()]

    def _step_lane(self, lane: list[int]) -> list[dict[str, float]]:
        return [m for s in lane for m in self.shards[s].step()]

    def keep(self, ids: Sequence[int]) -> None:
        wanted = set(ids)
        unknown = wanted - set(self.active)
        if unknown:
            raise ValueError(f"The 'ids' parameter names models not in this group: {sorted(unknown)}.")
        for s, shard in enumerate(self.shards):
            shard.keep([m for m in shard.active if self._ids[s][m] in wanted])

    def add(self, configs: Sequence[Mapping[str, Any] | TrainParams]) -> list[int]:
        """Give each new model to the smallest block of the thread with the fewest models; returns their ids."""
        ids = []
        for config in configs:
            lane = min(self.lanes, key=lambda blocks: sum(len(self.shards[b]) for b in blocks))
            s = min(lane, key=lambda b: len(self.shards[b]))
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
