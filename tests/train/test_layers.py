"""Batch norm by hand and against torch.nn.BatchNorm, dropout, inits and activations."""

from __future__ import annotations

import math

import pytest
import torch

from sturgeon.train.layers import activate, batch_norm, dropout, init_weight
from sturgeon.train.params import Activation, Init

D = torch.float64


def test_train_mode_normalizes_with_batch_statistics_by_hand() -> None:
    z = torch.tensor([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0], [6.0, 60.0]], dtype=D)
    gamma, beta = torch.tensor([2.0, 0.5], dtype=D), torch.tensor([1.0, -1.0], dtype=D)
    mean, var = torch.zeros(2, dtype=D), torch.ones(2, dtype=D)
    out = batch_norm(z, gamma, beta, mean, var, training=True, bn_beta=0.9, eps=1e-5)
    # column 0: mu = 3, biased sigma2 = (4 + 1 + 0 + 9) / 4 = 3.5, unbiased = 14 / 3
    expected0 = 2.0 * (torch.tensor([1.0, 2.0, 3.0, 6.0], dtype=D) - 3) / math.sqrt(3.5 + 1e-5) + 1.0
    expected1 = 0.5 * (torch.tensor([10.0, 20.0, 30.0, 60.0], dtype=D) - 30) / math.sqrt(350 + 1e-5) - 1.0
    assert torch.allclose(out[:, 0], expected0, atol=1e-12)
    assert torch.allclose(out[:, 1], expected1, atol=1e-12)
    # running = 0.9 * running + 0.1 * batch statistic, with the unbiased variance
    assert torch.allclose(mean, torch.tensor([0.3, 3.0], dtype=D), atol=1e-12)
    assert torch.allclose(var, torch.tensor([0.9 + 0.1 * 14 / 3, 0.9 + 0.1 * 1400 / 3], dtype=D), atol=1e-12)


def test_eval_mode_uses_running_averages_and_leaves_them_alone() -> None:
    z = torch.tensor([[1.0, 10.0], [2.0, 20.0]], dtype=D)
    gamma, beta = torch.tensor([2.0, 0.5], dtype=D), torch.tensor([1.0, -1.0], dtype=D)
    mean, var = torch.tensor([0.5, 12.0], dtype=D), torch.tensor([4.0, 25.0], dtype=D)
    out = batch_norm(z, gamma, beta, mean, var, training=False, eps=0.0)
    expected = torch.tensor([[2 * 0.5 / 2 + 1, 0.5 * -2 / 5 - 1], [2 * 1.5 / 2 + 1, 0.5 * 8 / 5 - 1]], dtype=D)
    assert torch.allclose(out, expected, atol=1e-12)
    assert mean.tolist() == [0.5, 12.0] and var.tolist() == [4.0, 25.0]


@pytest.mark.parametrize(
    ("shape", "reference"),
    [((16, 5), torch.nn.BatchNorm1d), ((8, 5, 7), torch.nn.BatchNorm1d), ((4, 5, 3, 3), torch.nn.BatchNorm2d)],
)
def test_matches_torch_batchnorm_over_several_steps(shape: tuple[int, ...], reference: type) -> None:
    bn_beta, eps = 0.8, 1e-3
    ref = reference(5, eps=eps, momentum=1 - bn_beta)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        ref.weight.copy_(torch.rand(5, generator=gen) + 0.5)
        ref.bias.copy_(torch.randn(5, generator=gen))
    gamma = ref.weight.detach().clone().requires_grad_(True)
    beta = ref.bias.detach().clone().requires_grad_(True)
    mean, var = torch.zeros(5), torch.ones(5)
    for _ in range(4):
        z = (torch.randn(shape, generator=gen) * 3 + 2).requires_grad_(True)
        z_ref = z.detach().clone().requires_grad_(True)
        ref.train()
        out_ref = ref(z_ref)
        out = batch_norm(z, gamma, beta, mean, var, training=True, bn_beta=bn_beta, eps=eps)
        assert torch.allclose(out, out_ref, atol=1e-6)
        assert torch.allclose(mean, ref.running_mean, atol=1e-6)
        assert torch.allclose(var, ref.running_var, atol=1e-6)
        # gradients through the batch statistics agree too
        weights = torch.randn(shape, generator=gen)
        (out * weights).sum().backward()
        (out_ref * weights).sum().backward()
        assert z.grad is not None and z_ref.grad is not None and gamma.grad is not None
        assert torch.allclose(z.grad, z_ref.grad, atol=1e-5)
        assert torch.allclose(gamma.grad, ref.weight.grad, atol=1e-5)
        gamma.grad, ref.weight.grad = None, None
        ref.eval()
        z_test = torch.randn(shape, generator=gen)
        out_eval = batch_norm(z_test, gamma, beta, mean, var, training=False, eps=eps)
        assert torch.allclose(out_eval, ref(z_test), atol=1e-6)


def test_inverted_dropout_scales_kept_units_and_replays_from_the_generator() -> None:
    a = torch.ones(200, 50, dtype=D)
    gen = torch.Generator().manual_seed(3)
    before = gen.get_state()
    out = dropout(a, 0.8, gen=gen)
    kept = out != 0
    assert torch.all(out[kept] == 1 / 0.8)
    assert abs(kept.double().mean().item() - 0.8) < 0.01
    gen.set_state(before)
    assert torch.equal(dropout(a, 0.8, gen=gen), out)
    state = gen.get_state()
    assert dropout(a, 1.0, gen=gen) is a
    assert torch.equal(gen.get_state(), state)  # keep_prob 1 draws nothing


@pytest.mark.parametrize(
    ("init", "shape", "std"),
    [
        (Init.HE, (400, 300), math.sqrt(2 / 300)),
        (Init.XAVIER, (400, 300), math.sqrt(1 / 300)),
        (Init.LARGE, (400, 300), 10.0),
        (Init.HE, (64, 16, 3, 3), math.sqrt(2 / (16 * 9))),
    ],
)
def test_init_scales(init: Init, shape: tuple[int, ...], std: float) -> None:
    w = init_weight(shape, init, gen=torch.Generator().manual_seed(0), dtype=D, init_scale=10.0)
    assert w.shape == shape
    assert abs(w.std().item() / std - 1) < 0.02
    assert abs(w.mean().item()) < 0.05 * std  # 5 standard errors for the smallest case


def test_zero_init_is_zero_and_draws_nothing() -> None:
    gen = torch.Generator().manual_seed(0)
    state = gen.get_state()
    assert torch.count_nonzero(init_weight((3, 4), Init.ZEROS, gen=gen, dtype=D)) == 0
    assert torch.equal(gen.get_state(), state)


def test_activations() -> None:
    z = torch.tensor([-2.0, 0.0, 3.0], dtype=D)
    assert activate(z, Activation.RELU).tolist() == [0.0, 0.0, 3.0]
    assert activate(z, Activation.LEAKY_RELU).tolist() == [-0.02, 0.0, 3.0]
    assert torch.allclose(activate(z, Activation.TANH), torch.tanh(z))
