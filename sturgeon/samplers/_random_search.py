"""Random search: a uniform point of the unit cube per trial — the method's default, never a grid."""
from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from sturgeon.samplers.base import Sampler
from sturgeon.space import Space
from sturgeon.trial import Direction, TrialRecord

__all__ = ["RandomSampler"]


class RandomSampler(Sampler):
    """Uniform ``u`` in [0, 1]^d, mapped by the space (so log-uniform α, log-uniform 1 − β, ...).

    Trial ``number`` draws from its own stream seeded by ``(seed, number)``: reproducible, and independent of
    how many trials ran before or in which order (a resumed or parallel study proposes the same points).

    >>> from sturgeon.space import Space, Float
    >>> from sturgeon.trial import Direction
    >>> s = RandomSampler(seed=1)
    >>> space = Space(x=Float(0, 1))
    >>> s.sample(space, 7, [], Direction.MINIMIZE) == s.sample(space, 7, [], Direction.MINIMIZE)
    True
    """

    kind = "random"

    def unit(self, d: int, number: int) -> list[float]:
        # Mersenne Twister seeded by one integer that packs (seed, number) without collisions; seeding it is
        # ~2 µs, far below a numpy Generator's setup, and this runs once per trial.
        rng = random.Random((self.seed << 40) | number)
        return [rng.random() for _ in range(d)]

    def sample(
        self, space: Space, number: int, history: Sequence[TrialRecord], direction: Direction
    ) -> dict[str, Any]:
        return space.from_unit(self.unit(len(space), number))
