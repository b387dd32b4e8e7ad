"""A group split into per-core shards trains every model exactly as the whole group does, bit for bit.

Each shard runs on one torch thread, so the reference is the whole group in one shard (``n=1``): the
same thread count. (Across thread counts float32 products may round differently, as for the unfused
trainer.)"""
from __future__ import annotations

import pytest
import torch

from sturgeon.caviar import FusedTrainer, Shards

# Adam with per-model lr, betas and L2 (the benchmark's kind of group), dropout off
CONFIGS = [{"hidden": [32, 32], "optimizer": "adam", "lr": lr, "beta1": b1, "beta2": b2, "l2": l2}
           for lr, b1, b2, l2 in [(1e-3, 0.9, 0.999, 0.0), (3e-3, 0.8, 0.99, 1e-4), (1e-2, 0.85, 0.995, 1e-3),
                                  (3e-4, 0.95, 0.9999, 1e-5), (2e-3, 0.7, 0.98, 3e-4)]]


def same(whole: Shards, sharded: Shards) -> bool:
    fused: FusedTrainer = whole.shards[0]
    rows = {m: i for i, m in enumerate(fused.active)}
    for shard, ids in zip(sharded.shards, _ids(sharded)):
        for name, w in shard.weights.items():
            if not torch.equal(w.detach(), fused.weights[name].detach()[[rows[m] for m in ids]]):
                return False
    return True


def _ids(sharded: Shards) -> list[list[int]]:
    active, out, start = sharded.active, [], 0
    for shard in sharded.shards:
        out.append(active[start:start + len(shard)])
        start += len(shard)
    return out


@pytest.mark.parametrize(("n", "block", "sizes"), [(2, 32, [2, 3]), (3, 32, [1, 2, 2]), (2, 2, [1, 1, 1, 2]),
                                                   (1, 2, [1, 2, 2])])
def test_shards_match_the_whole_group_bit_for_bit(digits32, n, block, sizes):
    whole, sharded = Shards(digits32, CONFIGS, n=1), Shards(digits32, CONFIGS, n=n, block=block)
    try:
        assert [len(s) for s in sharded.shards] == sizes
        for _ in range(2):
            assert sharded.step() == whole.step()  # metrics: equal floats, not merely close
        assert sharded.active == whole.active and sharded.epochs == whole.epochs and same(whole, sharded)
    finally:
        whole.close(), sharded.close()


def test_compaction_and_refill_across_shards_keep_trajectories_identical(digits32):
    whole, sharded = Shards(digits32, CONFIGS, n=1), Shards(digits32, CONFIGS, n=2)
    try:
        whole.step(), sharded.step()
        whole.keep([0, 3, 4]), sharded.keep([0, 3, 4])  # shard 0 keeps model 0, shard 1 keeps 3 and 4
        newcomer = {**CONFIGS[1], "lr": 5e-3}
        assert whole.add([newcomer]) == sharded.add([newcomer]) == [5]
        assert [len(s) for s in sharded.shards] == [2, 2]  # the newcomer went to the smaller shard
        by_model = {m: x for m, x in zip(whole.active, whole.step())}
        assert dict(zip(sharded.active, sharded.step())) == by_model
        assert same(whole, sharded)
    finally:
        whole.close(), sharded.close()


def test_a_diverging_model_is_found_in_its_shard(digits32):
    configs = [{"hidden": [64, 64], "optimizer": "sgd", "batch_size": 32, "lr": lr} for lr in (0.01, 0.02, 50.0, 0.05)]
    sharded = Shards(digits32, configs, n=2)
    try:
        assert sharded.diverged(sharded.step()) == [2]
    finally:
        sharded.close()


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
@pytest.mark.parametrize("name", ["n", "block"])
def test_the_thread_and_block_counts_are_checked(digits32, name, bad):
    with pytest.raises(ValueError, match=rf"^The '{name}' parameter must be an integer >= 1\. Got .* instead\.$"):
        Shards(digits32, CONFIGS, **{name: bad})
