"""Coarse-to-fine made automatic: a density ratio of good vs. bad trials over the unit cube (a TPE).

The method's coarse-to-fine samples at random, sees where the good points cluster and samples more densely
there. This sampler does the same without hard boxes: it models where the good trials are, ``l(u)``, and
where the others are, ``g(u)``, and proposes the point that maximises ``l(u) / g(u)`` — the expected
improvement of a tree-structured Parzen estimator (Bergstra et al. 2011; Watanabe 2023 studies its parts).

It works in the unit cube only, so each parameter's right scale (log for α, log of 1 − β for averaging betas)
is the model's coordinate for free, and a Gaussian kernel of width 0.1 there is a tenth of the decades of α.

Per proposal, once the model has started (``sturgeon.samplers._model``: a Sobol start and a random floor):

1. Split the history: complete trials ranked by value, then pruned trials (those that got further first),
   and the best ``min(ceil(gamma · n), 25)`` of them are *good* — among the best complete ones, those whose
   neighbourhood scored best (``smoothing``: a training is one noisy draw, and the luckiest draw is often
   a mediocre region's). Everything else is *bad*, including
   diverged trials and the trials still running: a constant liar, so parallel workers and a fused caviar
   batch are pushed apart instead of proposing one point K times. Failed and interrupted trials are left out
   (a failure says nothing of the objective; an interrupted trial runs again).
2. Two mixtures over the cube, each with a uniform prior component: truncated Gaussians (Scott's rule
   bandwidth, at least one cell of a discrete parameter) for ordered parameters, a smoothed indicator for
   unordered choices. A parameter the trial did not use (``conditions``: ``momentum`` under Adam) is
   uniform in that trial's component, so values nobody trained with do not steer the model.
3. Draw ``n_candidates`` points from ``l`` and keep the one with the largest ``log l − log g``.

>>> from sturgeon import Study, Space, Float
>>> study = Study(space=Space(x=Float(-5, 5)), sampler={"type": "tpe", "seed": 0})
>>> study.optimize(lambda t: (t["x"] - 1.0) ** 2, n_trials=40)
>>> abs(study.best.params["x"] - 1.0) < 0.2
True
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from sturgeon.samplers._model import History, ModelSampler
from sturgeon.samplers._parzen import Parzen
from sturgeon.samplers.base import is_int, is_number
from sturgeon.trial import Direction

__all__ = ["TPESampler"]


class TPESampler(ModelSampler):
    """Proposes where good trials are dense and bad ones sparse; random search until it has seen enough.

    ``n_startup``: Sobol trials before the model. ``n_candidates``: draws from the good density per proposal
    (more exploit harder). ``random_fraction``: share of uniform random trials kept for good. ``gamma``: share
    of the trials counted good. ``smoothing``: the width (unit coordinates) of the neighbourhood average that
    ranks complete trials for the split, so a lucky draw in a poor region is not taken for a good one (0: rank
    by the raw values). ``conditions``: ``{param: {other: [values]}}``, when ``param`` is used only
    under some values of another (``{"momentum": {"optimizer": ["momentum"]}}``).
    """

    kind = "tpe"

    def __init__(
        self,
        n_startup: int = 10,
        n_candidates: int = 24,
        random_fraction: float = 0.1,
        gamma: float = 0.1,
        smoothing: float = 0.2,
        conditions: Mapping[str, Mapping[str, Sequence[Any]]] | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(n_startup, random_fraction, conditions, seed)
        if not is_int(n_candidates) or n_candidates < 1:
            raise ValueError(f"The 'n_candidates' parameter must be an integer >= 1. Got {n_candidates!r} instead.")
        if not is_number(gamma) or not 0 < gamma <= 1:
            raise ValueError(f"The 'gamma' parameter must be a number in (0, 1]. Got {gamma!r} instead.")
        if not is_number(smoothing) or not 0 <= smoothing <= 1:
            raise ValueError(f"The 'smoothing' parameter must be a number in [0, 1]. Got {smoothing!r} instead.")
        self.n_candidates, self.gamma, self.smoothing = n_candidates, float(gamma), float(smoothing)
        self.focus_gamma = self.gamma
        self.prior, self.bw_factor = 1.0, 0.2

    def parzen(self, h: History, idx: np.ndarray) -> Parzen:
        return Parzen(h.rows[idx], h.used[idx], h.layout, self.prior, self.bw_factor)

    def propose(self, h: History, idx: np.ndarray, number: int, rng: np.random.Generator,
                direction: Direction) -> np.ndarray:
        good, bad = h.split(idx, direction, self.gamma, self.smoothing)  # 1)
        below, above = self.parzen(h, good), self.parzen(h, bad)  # 2)
        cand = h.layout.snapped(below.sample(rng, self.n_candidates))  # 3)
        score = below.log_pdf(cand) - above.log_pdf(cand)
        return cand[int(np.argmax(score))]

    def focus_pad(self, h: History, good: np.ndarray) -> np.ndarray:
        return self.parzen(h, good).h  # one kernel width past the good trials

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"type": self.kind, "n_startup": self.n_startup, "n_candidates": self.n_candidates,
                             "random_fraction": self.random_fraction, "gamma": self.gamma,
                             "smoothing": self.smoothing, "seed": self.seed}
        if self.conditions:
            d["conditions"] = self.conditions
        return d
