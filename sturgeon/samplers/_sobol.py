"""Scrambled Sobol points: random-looking, but spread more evenly than independent uniforms."""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.stats import qmc

from sturgeon.samplers.base import Sampler
from sturgeon.space import Space
from sturgeon.trial import Direction, TrialRecord

__all__ = ["SobolSampler"]


class SobolSampler(Sampler):
    """Trial ``number`` gets point ``number`` of SciPy's scrambled Sobol sequence (Owen scrambling, seeded).

    >>> from sturgeon.space import Space, Float
    >>> from sturgeon.trial import Direction
    >>> space = Space(x=Float(0, 1))
    >>> xs = sorted(SobolSampler(seed=0).sample(space, i, [], Direction.MINIMIZE)["x"] for i in range(4))
    >>> [int(x * 4) for x in xs]  # one point in each quarter: that is the low discrepancy
    [0, 1, 2, 3]
    """

    kind = "sobol"

    def __init__(self, seed: int = 0) -> None:
        super().__init__(seed)
        self._engines: dict[int, qmc.Sobol] = {}
        self._points: dict[int, np.ndarray] = {}

    def unit(self, d: int, number: int) -> list[float]:
        points = self._points.get(d)
        if points is None or number >= len(points):
            engine = self._engines.setdefault(d, qmc.Sobol(d, scramble=True, seed=self.seed))
            have = 0 if points is None else len(points)
            need = max(64, 1 << (number + 1 - 1).bit_length(), 2 * have)  # grow by powers of two
            with warnings.catch_warnings():  # balance holds for power-of-two prefixes, which we keep
                warnings.simplefilter("ignore")
                block = engine.random(need - have)
            points = block if points is None else np.vstack([points, block])
            self._points[d] = points
        return points[number].tolist()

    def sample(
        self, space: Space, number: int, history: Sequence[TrialRecord], direction: Direction
    ) -> dict[str, Any]:
        return space.from_unit(self.unit(len(space), number))
