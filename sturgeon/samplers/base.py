"""The sampler contract: propose the params of trial ``number`` from the space and the history.

Samplers work in the unit cube; the space maps it to values, so no sampler branches on a parameter's type or
scale. Every sampler is seeded and reproducible, and the params of trial ``number`` depend only on the seed,
the number and the finished trials before it (not on wall-clock or call order), so a resumed study continues
the same sequence.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

from sturgeon.space import Space
from sturgeon.trial import Direction, TrialRecord

__all__ = ["Sampler", "SamplerExhausted"]


def is_int(value: Any) -> bool:
    """An int that is not a bool (True would otherwise pass for 1)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """A real number that is not a bool; NaN fails every range check, so it is not one here either."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


class SamplerExhausted(Exception):
    """The sampler has no new point to propose (a grid that has been fully visited)."""


class Sampler(ABC):
    """Proposes parameter values; holds no reference to the study or the store."""

    kind: str = "?"

    def __init__(self, seed: int = 0) -> None:
        if not is_int(seed) or seed < 0:
            raise ValueError(f"The 'seed' parameter must be an integer >= 0. Got {seed!r} instead.")
        self.seed = seed

    @abstractmethod
    def sample(
        self, space: Space, number: int, history: Sequence[TrialRecord], direction: Direction
    ) -> dict[str, Any]:
        """Params for trial ``number``; ``history`` holds the trials before it (finished or running)."""

    def ready(self, number: int, history: Sequence[TrialRecord]) -> bool:
        """Whether trial ``number`` can be proposed now; False while it depends on trials still running
        (a coarse-to-fine round waits for the previous round), so parallel studies stay reproducible."""
        return True

    @property
    def size(self) -> int | None:
        """How many distinct points the sampler can propose; None when unbounded."""
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, "seed": self.seed}

    @staticmethod
    def from_dict(spec: Mapping[str, Any]) -> Sampler:
        from sturgeon.samplers import sampler_from_dict

        return sampler_from_dict(spec)
