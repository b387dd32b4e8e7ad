"""Random search on each parameter's right scale that zooms in by itself: a GP for the first trials, then a TPE.

It starts as random search (scrambled Sobol points on the unit cube, so log-uniform α and log-uniform 1 − β),
then proposes where a model of the finished trials expects improvement, and keeps a floor of purely random
trials so no region is ever closed. The model is a Gaussian process for the first ``gp_trials`` trials with a
value — when each one is an expensive training and a smooth model of few points finds a narrow optimum
fastest (15 evaluations on the tests' closed-form optimum, against 34 for the TPE and 54 for coarse-to-fine) —
and a TPE after, whose neighbourhood-averaged split copes better with noisy trainings and costs a millisecond
where a GP's O(n³) fit would cost more than the trials (BENCHMARKS.md#search). Both work on the same unit
cube and see the same history, so the hand-over changes the model, not the search space.

>>> from sturgeon import Study, Space, Float
>>> study = Study(space=Space(lr=Float(1e-4, 1, scale="log")), sampler={"type": "auto"})
>>> study.sampler.kind
'auto'
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from sturgeon.samplers._model import Role
from sturgeon.samplers.base import Sampler, is_int
from sturgeon.samplers.coarse_to_fine import Box
from sturgeon.samplers.gp import GPSampler
from sturgeon.samplers.tpe import TPESampler
from sturgeon.space import Space
from sturgeon.trial import Direction, TrialRecord

__all__ = ["AutoSampler"]


class AutoSampler(Sampler):
    """``GPSampler`` until ``gp_trials`` trials have a value, ``TPESampler`` after; the same Sobol start, the
    same random floor (``random_fraction``) and the same ``conditions`` for both."""

    kind = "auto"

    def __init__(
        self,
        gp_trials: int = 25,
        n_startup: int = 10,
        random_fraction: float = 0.05,
        conditions: Mapping[str, Mapping[str, Sequence[Any]]] | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(seed)
        if not is_int(gp_trials) or gp_trials < 0:
            raise ValueError(f"The 'gp_trials' parameter must be an integer >= 0. Got {gp_trials!r} instead.")
        self.gp_trials = gp_trials
        self.gp = GPSampler(n_startup=n_startup, random_fraction=random_fraction, conditions=conditions, seed=seed)
        self.tpe = TPESampler(n_startup=n_startup, random_fraction=random_fraction, conditions=conditions, seed=seed)

    def _model(self, space: Space, number: int, history: Sequence[TrialRecord]) -> GPSampler | TPESampler:
        h = self.gp.history_for(space)
        self.tpe._history = h  # one history for both: synced once per ask
        idx = h.sync(history, number)
        with_value = int(np.count_nonzero(h.role[idx] <= Role.PRUNED))
        return self.gp if with_value < self.gp_trials else self.tpe

    def sample(
        self, space: Space, number: int, history: Sequence[TrialRecord], direction: Direction
    ) -> dict[str, Any]:
        return self._model(space, number, history).sample(space, number, history, direction)

    def focus(self, space: Space, history: Sequence[TrialRecord], direction: Direction) -> Box | None:
        """Where the search concentrates now: the box of the good trials (``TPESampler.focus``)."""
        self._model(space, max((t.number for t in history), default=-1) + 1, history)
        return self.tpe.focus(space, history, direction)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"type": self.kind, "gp_trials": self.gp_trials, "n_startup": self.gp.n_startup,
                             "random_fraction": self.gp.random_fraction, "seed": self.seed}
        if self.gp.conditions:
            d["conditions"] = self.gp.conditions
        return d
