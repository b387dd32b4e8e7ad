"""Update rules against torch.optim, decay schedules against their closed forms."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
import torch

from sturgeon.train import Decay, TrainParams, adam_, decayed_lr, lr_at, momentum_, rmsprop_, sgd_, with_l2

L2 = 0.05
CASES: dict[str, tuple[Callable[..., torch.optim.Optimizer], Callable[..., None]]] = {
    "sgd": (
        lambda groups: torch.optim.SGD(groups, lr=0.1),
        lambda w, g, st, t: sgd_(w, g, lr=0.1),
    ),
    "momentum": (
        lambda groups: torch.optim.SGD(groups, lr=0.05, momentum=0.8),
        lambda w, g, st, t: momentum_(w, g, st["v"], lr=0.05, beta=0.8),
    ),
    "rmsprop": (
        lambda groups: torch.optim.RMSprop(groups, lr=0.01, alpha=0.95, eps=1e-4),
        lambda w, g, st, t: rmsprop_(w, g, st["s"], lr=0.01, beta=0.95, eps=1e-4),
    ),
    "adam": (
        lambda groups: torch.optim.Adam(groups, lr=0.02, betas=(0.8, 0.99), eps=1e-5),
        lambda w, g, st, t: adam_(w, g, st["v"], st["s"], t=t, lr=0.02, beta1=0.8, beta2=0.99, eps=1e-5),
    ),
}


def _model(dtype: torch.dtype) -> torch.nn.Module:
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 2)).to(dtype)
    gen = torch.Generator().manual_seed(0)  # the same weights for both copies, without the global RNG
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=dtype) * 0.5)
    return model


@pytest.mark.parametrize(("dtype", "tol"), [(torch.float32, 1e-6), (torch.float64, 1e-12)])
@pytest.mark.parametrize("name", list(CASES))
def test_rule_matches_torch_optim_with_l2_on_weights_only(name: str, dtype: torch.dtype, tol: float) -> None:
    make_reference, ours = CASES[name]
    ref, mine = _model(dtype), _model(dtype)
    groups = [
        {"params": [p for n, p in ref.named_parameters() if n.endswith("weight")], "weight_decay": L2},
        {"params": [p for n, p in ref.named_parameters() if n.endswith("bias")], "weight_decay": 0.0},
    ]
    optimizer = make_reference(groups)
    state: dict[str, dict[str, torch.Tensor]] = {
        n: {"v": torch.zeros_like(p), "s": torch.zeros_like(p)} for n, p in mine.named_parameters()
    }
    gen = torch.Generator().manual_seed(1)
    for t in range(1, 6):
        x, y = torch.randn(8, 4, generator=gen, dtype=dtype), torch.randint(0, 2, (8,), generator=gen)
        for model in (ref, mine):
            model.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
        for n, p in mine.named_parameters():
            assert p.grad is not None
            g = with_l2(p.grad, p, L2) if n.endswith("weight") else p.grad
            ours(p, g, state[n], t)
        for (n, a), b in zip(ref.named_parameters(), mine.parameters()):
            assert torch.allclose(a, b, rtol=0, atol=tol), (name, t, n, (a - b).abs().max())


def test_rules_accept_stacked_tensor_hyperparameters() -> None:
    # A fused group of K = 2 models: weights (K, 3, 4), hyperparameters (K, 1, 1).
    gen = torch.Generator().manual_seed(0)
    w0 = torch.randn(2, 3, 4, generator=gen, dtype=torch.float64)
    grads = [torch.randn(2, 3, 4, generator=gen, dtype=torch.float64) for _ in range(3)]
    hyper: dict[str, Any] = {
        "lr": [0.1, 0.01], "beta": [0.9, 0.5], "beta1": [0.9, 0.7], "beta2": [0.999, 0.9], "eps": [1e-8, 1e-3],
    }  # fmt: skip

    def run(k: int | None) -> torch.Tensor:
        pick = (lambda v: torch.tensor(v, dtype=torch.float64).view(2, 1, 1)) if k is None else (lambda v: v[k])
        h = {key: pick(v) for key, v in hyper.items()}
        w = (w0 if k is None else w0[k]).clone()
        v, s, m = torch.zeros_like(w), torch.zeros_like(w), torch.zeros_like(w)
        for t, g in enumerate(grads, start=1):
            g = g if k is None else g[k]
            sgd_(w, g, lr=h["lr"])
            momentum_(w, g, m, lr=h["lr"], beta=h["beta"])
            rmsprop_(w, g, s, lr=h["lr"], beta=h["beta"], eps=h["eps"])
            adam_(w, g, v, s, t=t, lr=h["lr"], beta1=h["beta1"], beta2=h["beta2"], eps=h["eps"])
        return w

    fused = run(None)
    for k in range(2):
        assert torch.allclose(fused[k], run(k), rtol=1e-14, atol=0)


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"decay": "none"}, [0.2] * 6),
        ({"decay": "inverse_time", "decay_rate": 0.5}, [0.2, 0.2 / 1.5, 0.1, 0.2 / 2.5, 0.2 / 3, 0.2 / 3.5]),
        ({"decay": "exponential", "decay_base": 0.9}, [0.2, 0.18, 0.162, 0.1458, 0.13122, 0.118098]),
        ({"decay": "step", "decay_rate": 0.5, "decay_every": 2}, [0.2, 0.2, 0.1, 0.1, 0.05, 0.05]),
        ({"decay": "step", "decay_rate": 0.1, "decay_every": 3}, [0.2, 0.2, 0.2, 0.02, 0.02, 0.02]),
        (
            {"decay": "cosine", "epochs": 4},
            [0.2, 0.1 * (1 + math.sqrt(0.5)), 0.1, 0.1 * (1 - math.sqrt(0.5)), 0.0, 0.0],
        ),
    ],
)
def test_decay_schedules_match_closed_forms(settings: dict, expected: list[float]) -> None:
    params = TrainParams.from_dict({"lr": 0.2, **settings})
    got = [lr_at(epoch, params) for epoch in range(6)]
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_decayed_lr_is_the_same_function() -> None:
    assert decayed_lr(0.3, 4, Decay.EXPONENTIAL, decay_base=0.5) == pytest.approx(0.3 / 16, rel=1e-15)
