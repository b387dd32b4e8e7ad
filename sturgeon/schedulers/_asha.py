"""Successive halving inside a fused group: at each rung epoch, keep the best 1/η of the models there.

Rungs are epochs counted from 1 (a model reaches rung 3 when it has completed 3 epochs). The rule is
asynchronous successive halving (ASHA): a model that reaches a rung continues if it ranks among the best
``max(1, n // eta)`` of the ``n`` models that have reached that rung so far, itself included — in a group
that starts together, this is exactly synchronous successive halving; in a group refilled with newcomers,
late models are judged against everything recorded at their rung.

>>> sh = SuccessiveHalving(rungs=(1, 3, 9), eta=3)
>>> sorted(sh.judge(1, {m: float(m) for m in range(9)}, minimize=True))   # the 9 - 9 // 3 = 6 worst stop
[3, 4, 5, 6, 7, 8]
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

__all__ = ["SuccessiveHalving", "Stop"]


@dataclass(frozen=True)
class Stop:
    """A model stopped at a rung, with the reason recorded as an event."""

    model: int
    epoch: int
    rank: int  # 1 = best among those at the rung
    of: int
    kept: int

    @property
    def reason(self) -> str:
        return f"successive halving at epoch {self.epoch}: rank {self.rank} of {self.of}, the best {self.kept} continue"


@dataclass
class SuccessiveHalving:
    """Rung epochs and the reduction factor η; remembers every value seen at each rung."""

    rungs: Sequence[int] = (1, 3, 9)
    eta: int = 3
    seen: dict[int, dict[int, float]] = field(default_factory=dict)  # rung -> {model: value}

    def __post_init__(self) -> None:
        if isinstance(self.eta, bool) or not isinstance(self.eta, int) or self.eta < 2:
            raise ValueError(f"The 'eta' parameter must be an integer >= 2. Got {self.eta!r} instead.")
        rungs = list(self.rungs)
        if not rungs or any(isinstance(r, bool) or not isinstance(r, int) or r < 1 for r in rungs) or rungs != sorted(set(rungs)):
            raise ValueError(f"The 'rungs' parameter must be increasing epochs >= 1. Got {self.rungs!r} instead.")

    def judge(self, epoch: int, values: Mapping[int, float], *, minimize: bool = True) -> dict[int, Stop]:
        """Record ``values`` (model -> metric) of the models that just completed ``epoch``; return those
        to stop. Nothing stops off a rung. Ties rank by model id (earlier first), so the result is exact."""
        if epoch not in self.rungs or not values:
            return {}
        at = self.seen.setdefault(epoch, {})
        at.update(values)
        sign = 1.0 if minimize else -1.0
        ranking = sorted(at, key=lambda m: (sign * at[m], m))
        kept = max(1, len(ranking) // self.eta)
        rank = {m: i + 1 for i, m in enumerate(ranking)}
        return {m: Stop(m, epoch, rank[m], len(ranking), kept) for m in values if rank[m] > kept}
