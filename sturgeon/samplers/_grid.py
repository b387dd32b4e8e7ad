"""Grid search — kept for comparison and teaching: with 5×5 points it tries only 5 learning rates."""
from __future__ import annotations

import itertools
import random
from collections.abc import Mapping, Sequence
from typing import Any

from sturgeon.samplers.base import Sampler, SamplerExhausted, is_int
from sturgeon.space import Space
from sturgeon.trial import Direction, TrialRecord

__all__ = ["GridSampler"]


class GridSampler(Sampler):
    """Evenly spaced points per parameter (on its scale), every combination once.

    ``points`` is one count for all parameters or a count per name; choices and small integers give each
    value once. ``shuffle=True`` visits the grid in a seeded random order.

    >>> from sturgeon.space import Space, Float
    >>> from sturgeon.trial import Direction
    >>> g = GridSampler(points=3)
    >>> [g.sample(Space(lr=Float(1e-3, 1e-1, scale="log")), i, [], Direction.MINIMIZE)["lr"] for i in range(3)]
    [0.001, 0.01, 0.1]
    """

    kind = "grid"

    def __init__(self, points: int | Mapping[str, int] = 5, shuffle: bool = False, seed: int = 0) -> None:
        super().__init__(seed)
        counts = points.values() if isinstance(points, Mapping) else [points]
        names_ok = not isinstance(points, Mapping) or all(isinstance(name, str) for name in points)
        if not names_ok or not all(is_int(k) and k >= 1 for k in counts):
            raise ValueError(f"The 'points' parameter of GridSampler must be integers >= 1. Got {points!r} instead.")
        if not isinstance(shuffle, bool):  # "no" is truthy: it would shuffle
            raise ValueError(f"The 'shuffle' parameter of GridSampler must be true or false. Got {shuffle!r} instead.")
        self.points = points
        self.shuffle = shuffle
        self._grid: list[tuple[float, ...]] | None = None
        self._space_key: Any = None

    def grid(self, space: Space) -> list[tuple[float, ...]]:
        key = space.to_json()  # a grid belongs to one space; the same sampler may serve another
        if self._grid is None or key != self._space_key:
            if isinstance(self.points, Mapping):  # a misspelt name would silently get the default 5 points
                unknown = [name for name in self.points if name not in space.params]
                if unknown:
                    known = ", ".join(space.names)
                    raise ValueError(f"Unknown parameter '{unknown[0]}' in the grid sampler's points. Known: {known}.")
            per = [
                p.grid(self.points.get(name, 5) if isinstance(self.points, Mapping) else self.points)
                for name, p in space.params.items()
            ]
            grid = list(itertools.product(*per))
            if self.shuffle:
                random.Random(self.seed).shuffle(grid)
            self._grid, self._space_key = grid, key
        return self._grid

    def sample(
        self, space: Space, number: int, history: Sequence[TrialRecord], direction: Direction
    ) -> dict[str, Any]:
        grid = self.grid(space)
        if number >= len(grid):
            raise SamplerExhausted(f"the grid has {len(grid)} points and all were proposed")
        return space.from_unit(grid[number])

    def to_dict(self) -> dict[str, Any]:
        return {"type": "grid", "points": self.points, "shuffle": self.shuffle, "seed": self.seed}
