"""Analytic objectives with known optima, on the scales the method cares about: for tests, demos and
benchmarks (they cost microseconds, so they measure the tuner, not the model).

>>> round(training_surface({"lr": 3e-3, "beta": 0.995, "units": 128, "dropout": 0.0}), 6)
0.02
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["training_surface", "curve_objective", "OPTIMUM"]

#: Where ``training_surface`` is best: a narrow valley in log10(lr) and log10(1 − beta).
OPTIMUM = {"lr": 3e-3, "beta": 0.995}


def _params(trial_or_params: Any) -> Mapping[str, Any]:
    return getattr(trial_or_params, "params", trial_or_params)


def training_surface(trial_or_params: Any) -> float:
    """A dev error that looks like a real one: best (0.02) at lr = 3e-3, beta = 0.995, narrow in both
    (a width of 0.25 decade), mildly better with more units, indifferent to anything else.

    1. distance in decades from the optimum, on the parameters' natural scales (log α, log(1 − β));
    2. a bowl of half-width 0.25 decade, saturating at 0.9 (chance level for 10 classes);
    3. a small bonus for width (units), so an unimportant-but-real parameter exists.
    """
    p = _params(trial_or_params)
    d_lr = (math.log10(p["lr"]) - math.log10(OPTIMUM["lr"])) / 0.25  # 1)
    d_beta = (math.log10(1 - p.get("beta", OPTIMUM["beta"])) - math.log10(1 - OPTIMUM["beta"])) / 0.25
    bowl = 0.88 * (1 - math.exp(-(d_lr**2 + d_beta**2) / 2))  # 2)
    width = 0.02 * (1 - math.log2(p.get("units", 128)) / 7) if "units" in p else 0.0  # 3)
    return 0.02 + bowl + max(width, 0.0)


def curve_objective(trial: Any, epochs: int = 10) -> float:
    """``training_surface`` as a learning curve: reports ``dev_error`` each epoch (decaying towards the
    surface's value), so schedulers and the CLI have curves to show."""
    final = training_surface(trial)
    value = 0.9
    for epoch in range(epochs):
        value = final + (0.9 - final) * math.exp(-(epoch + 1) / 2.5)
        trial.report(epoch, dev_error=value, train_cost=value * 1.1)
        if getattr(trial, "should_stop", False):
            break
    return value
