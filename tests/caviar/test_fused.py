"""The fused trainer against the unfused reference: each slice k must be model k trained alone."""
from __future__ import annotations

import math

import pytest
import torch

from sturgeon.caviar import FusedTrainer
from sturgeon.train import Trainer

# 8 models: different alpha, optimizer betas and L2 (dropout off: the shared data order then matches)
VARIANTS = [{"lr": lr, "l2": l2, "momentum": m, "rms_beta": r, "beta1": b1, "beta2": b2}
            for lr, l2, m, r, b1, b2 in [(1e-3, 0.0, 0.9, 0.99, 0.9, 0.999), (3e-3, 1e-4, 0.95, 0.9, 0.8, 0.99),
                                         (1e-2, 1e-3, 0.8, 0.95, 0.85, 0.995), (3e-4, 0.0, 0.99, 0.999, 0.95, 0.9999),
                                         (2e-3, 3e-4, 0.5, 0.8, 0.7, 0.98), (5e-3, 1e-5, 0.9, 0.99, 0.9, 0.999),
                                         (7e-4, 2e-3, 0.7, 0.9, 0.99, 0.99), (1.5e-3, 5e-4, 0.85, 0.97, 0.6, 0.999)]]


def alone(data, config, epochs):
    trainer = Trainer(data)
    trainer.setup(config)
    return [trainer.step() for _ in range(epochs)], trainer.weights


def max_diff(data, configs, epochs, relative=False):
    ft = FusedTrainer(data, configs)
    fused = [ft.step() for _ in range(epochs)]
    worst = 0.0
    for k, config in enumerate(configs):
        metrics, weights = alone(data, config, epochs)
        for e in range(epochs):
            for key, v in metrics[e].items():
                worst = max(worst, abs(v - fused[e][k][key]) / (abs(v) if relative and v else 1.0))
        for name, w in weights.items():
            d = w.detach() - ft.weights[name][k].detach()
            # relative: the norm-wise error of each tensor, ||dw|| / ||w||; absolute: the largest element
            worst = max(worst, float(d.norm() / w.detach().norm()) if relative else float(d.abs().max()))
    return worst


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "rmsprop", "adam"])
@pytest.mark.parametrize("batch_norm", [False, True])
def test_float64_group_of_8_matches_each_model_alone(digits64, optimizer, batch_norm):
    base = {"dtype": "float64", "hidden": [32, 16], "optimizer": optimizer, "batch_norm": batch_norm, "batch_size": 64}
    assert max_diff(digits64, [{**base, **v} for v in VARIANTS], epochs=2) < 1e-9


@pytest.mark.parametrize("batch_norm", [False, True])
def test_float64_cnn_group_matches_alone(digits64, mnist1d64, batch_norm):
    for data in (digits64, mnist1d64):
        base = {"dtype": "float64", "model": "cnn", "channels": 4, "units": 16, "batch_norm": batch_norm}
        assert max_diff(data, [{**base, **v} for v in VARIANTS[:3]], epochs=1) < 1e-9


def test_float32_matches_to_1e_4_relative_after_20_steps(digits32):
    # 1,437 training examples in batches of 72: exactly 20 steps in one epoch. Measured: 2.4e-7 (weights,
    # norm-wise) and 6.4e-7 (metrics): float32 rounding, as the kernels differ (wide mm vs linear).
    base = {"hidden": [64, 64], "optimizer": "adam", "batch_size": 72}
    assert max_diff(digits32, [{**base, **v} for v in VARIANTS], epochs=1, relative=True) < 1e-4


def test_per_model_decay_schedules_follow_their_closed_forms(digits32):
    configs = [{"units": 16, "lr": 0.1, "decay": d, "decay_rate": 0.5, "decay_base": 0.9, "decay_every": 2, "epochs": 4}
               for d in ("none", "inverse_time", "exponential", "step", "cosine")]
    ft = FusedTrainer(digits32, configs)
    lrs = [[m["lr"] for m in ft.step()] for _ in range(4)]
    expected = [[0.1, 0.1 / (1 + 0.5 * e), 0.1 * 0.9**e, 0.1 * 0.5 ** (e // 2), 0.1 * (1 + math.cos(math.pi * e / 4)) / 2]
                for e in range(4)]
    for got, want in zip(lrs, expected):
        assert got == pytest.approx(want, rel=1e-12)


def test_dropout_draws_independent_masks_per_model(digits32):
    ft = FusedTrainer(digits32, [{"units": 32, "keep_prob": 0.5, "lr": 1e-3}] * 2)
    ft.step()
    # same config, same init: only the dropout masks differ, so the two models drift apart
    assert not torch.equal(ft.weights["W1"][0], ft.weights["W1"][1])


def test_a_config_that_does_not_fit_the_group_is_refused(digits32):
    with pytest.raises(ValueError, match="^Config 1 cannot join this fused group: its 'batch_norm' is True, the group's is False.$"):
        FusedTrainer(digits32, [{"units": 16}, {"units": 16, "batch_norm": True}])


def test_a_diverging_model_leaves_the_others_bit_identical(digits32):
    base = {"hidden": [64, 64], "optimizer": "sgd", "batch_size": 32}
    lrs = [0.01, 0.02, 50.0, 0.05, 0.03, 0.04, 0.06, 0.07]
    with_it = FusedTrainer(digits32, [{**base, "lr": lr} for lr in lrs])
    without = FusedTrainer(digits32, [{**base, "lr": lr} for lr in lrs if lr != 50.0])
    for _ in range(3):
        metrics = with_it.step()
        without.step()
        gone = with_it.diverged(metrics)
        if gone:
            with_it.keep([m for m in with_it.active if m not in gone])
    assert 2 not in with_it.active  # model 2 (alpha = 50) diverged and was removed
    for name in with_it.weights:
        assert torch.equal(with_it.weights[name].detach(), without.weights[name].detach())


def test_compaction_keeps_survivor_trajectories_identical(digits32):
    configs = [{"hidden": [32, 32], "lr": lr} for lr in (1e-3, 2e-3, 3e-3, 4e-3, 5e-3, 6e-3)]
    full = FusedTrainer(digits32, configs)
    compact = FusedTrainer(digits32, configs)
    full_curves = [full.step() for _ in range(3)]
    compact_curves = [compact.step()]
    compact.keep([1, 4])
    compact_curves += [compact.step() for _ in range(2)]
    for e in (1, 2):
        assert compact_curves[e] == [full_curves[e][1], full_curves[e][4]]
