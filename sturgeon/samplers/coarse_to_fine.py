"""Coarse to fine: search the whole box, find where the good points cluster, zoom in, search again.

Boxes live in the unit cube of the original space, so zooming works the same on every scale: a box
[0.4, 0.6] on a log-scaled α is a log-uniform sub-range, on a reverse_log β a log-uniform range of 1 − β.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sturgeon.samplers._random_search import RandomSampler
from sturgeon.samplers._sobol import SobolSampler
from sturgeon.samplers.base import Sampler, is_int, is_number
from sturgeon.space import Float, Space
from sturgeon.trial import Direction, TrialRecord, TrialState

__all__ = ["CoarseToFine", "Box", "refine_box"]


@dataclass(frozen=True)
class Box:
    """A zoomed region: unit intervals for ordered parameters, kept values for unordered choices."""

    bounds: dict[str, tuple[float, float]]
    keep: dict[str, list[Any]]

    def space(self, space: Space) -> Space:
        return space.restrict(self.bounds, self.keep)

    @staticmethod
    def whole(space: Space) -> Box:
        return Box({n: (0.0, 1.0) for n, p in space.params.items() if p.ordered}, {})


def refine_box(
    space: Space,
    trials: Sequence[TrialRecord],
    direction: Direction,
    *,
    top: float = 0.2,
    margin: float = 0.1,
    min_width: float = 0.05,
    current: Box | None = None,
) -> Box:
    """The box around the best ``top`` fraction of the complete trials.

    1. Rank complete trials by value; keep the best ``max(2, ceil(top · n))``.
    2. Per ordered parameter: the span of their unit coordinates (in the original space).
    3. Pad each side by ``margin`` × the width of the ``current`` box (the whole cube when None).
    4. Widen to at least ``min_width`` around the centre, and clip to [0, 1].
    5. Per unordered choice: keep the values the best trials used.
    With fewer than two complete trials the box stays ``current``.

    >>> from sturgeon.space import Space, Float
    >>> from sturgeon.trial import TrialRecord, TrialState, Direction
    >>> space = Space(x=Float(0, 10))
    >>> ts = [TrialRecord(i, {"x": float(i)}, TrialState.COMPLETE, value=abs(i - 3)) for i in range(11)]
    >>> refine_box(space, ts, Direction.MINIMIZE, top=0.2).bounds["x"]
    (0.1, 0.5)
    """
    checks = (("top", top, "(0, 1]"), ("margin", margin, "[0, inf)"), ("min_width", min_width, "(0, 1]"))
    for name, v, allowed in checks:
        # a bool would pass for 0 or 1 and a string fail with a TypeError: numbers only
        ok = is_number(v) and (0 <= v < math.inf if name == "margin" else 0 < v <= 1)
        if not ok:
            raise ValueError(f"The '{name}' parameter of coarse-to-fine must be in {allowed}. Got {v!r} instead.")
    current = current or Box.whole(space)
    done = [t for t in trials if t.state is TrialState.COMPLETE and t.value is not None]
    if len(done) < 2:
        return current
    sign = direction.sign()
    done.sort(key=lambda t: (sign * (t.value or 0.0), t.number))  # 1)
    best = done[: max(2, math.ceil(top * len(done)))]
    bounds: dict[str, tuple[float, float]] = {}
    keep: dict[str, list[Any]] = {}
    for name, p in space.params.items():
        if not p.ordered:  # 5)
            keep[name] = sorted({t.params[name] for t in best}, key=p.to_unit)
            continue
        us = [p.to_unit(t.params[name]) for t in best]  # 2)
        c_lo, c_hi = current.bounds.get(name, (0.0, 1.0))
        pad = margin * (c_hi - c_lo)  # 3)
        lo, hi = min(us) - pad, max(us) + pad
        if hi - lo < min_width:  # 4)
            mid = (lo + hi) / 2
            lo, hi = mid - min_width / 2, mid + min_width / 2
            lo, hi = (0.0, min_width) if lo < 0 else (1.0 - min_width, 1.0) if hi > 1 else (lo, hi)
        bounds[name] = (round(max(lo, 0.0), 12), round(min(hi, 1.0), 12))
    return Box(bounds, keep)


class CoarseToFine(Sampler):
    """Rounds of ``round_size`` trials; each round samples inside the box of the best trials so far.

    Round 0 covers the whole space; round r > 0 samples inside ``refine_box`` of all trials finished in
    rounds < r, padded relative to round r − 1's box. Points inside a box come from ``base`` ("random" or
    "sobol"). The box for a round is fixed once all earlier rounds have finished, so a serial study is
    reproducible and a resumed one proposes the same points.

    >>> from sturgeon.space import Space, Float
    >>> from sturgeon.trial import Direction
    >>> c2f = CoarseToFine(round_size=10, seed=0)
    >>> 0 <= c2f.sample(Space(x=Float(0, 1)), 0, [], Direction.MINIMIZE)["x"] <= 1
    True
    """

    kind = "coarse_to_fine"

    def __init__(
        self,
        round_size: int = 20,
        top: float = 0.2,
        margin: float = 0.1,
        min_width: float = 0.05,
        base: str = "random",
        seed: int = 0,
    ) -> None:
        super().__init__(seed)
        if not is_int(round_size) or round_size < 2:
            raise ValueError(f"The 'round_size' parameter must be an integer >= 2. Got {round_size!r} instead.")
        if not isinstance(base, str) or base not in ("random", "sobol"):
            raise ValueError(f"The 'base' parameter must be one of random, sobol. Got {base!r} instead.")
        # refine_box checks top, margin and min_width
        refine_box(Space(x=Float(0.0, 1.0)), [], Direction.MINIMIZE, top=top, margin=margin, min_width=min_width)
        self.round_size, self.top, self.margin, self.min_width, self.base = round_size, top, margin, min_width, base
        self._base: RandomSampler | SobolSampler = RandomSampler(seed) if base == "random" else SobolSampler(seed)
        self._boxes: dict[tuple[Any, ...], Box] = {}  # keyed by space, round and the trials it came from

    def box(self, space: Space, round_: int, history: Sequence[TrialRecord], direction: Direction) -> Box:
        """The box that round ``round_`` samples in."""
        if round_ == 0:
            return Box.whole(space)
        end = round_ * self.round_size
        before = [t for t in history if t.number < end]
        # The box depends only on the space and these trials: the same sampler object may serve other studies.
        key = (space.to_json(), round_, direction, tuple((t.number, t.state, t.value) for t in before))
        cached = self._boxes.get(key)
        if cached is not None:
            return cached
        box = refine_box(
            space, before, direction, top=self.top, margin=self.margin, min_width=self.min_width,
            current=self.box(space, round_ - 1, history, direction),
        )
        if len(self._boxes) > 64:  # a bounded cache; boxes are cheap to recompute
            self._boxes.clear()
        self._boxes[key] = box
        return box

    def ready(self, number: int, history: Sequence[TrialRecord]) -> bool:
        end = (number // self.round_size) * self.round_size  # trials of earlier rounds must have finished
        return all(t.state.finished for t in history[:end])

    def sample(
        self, space: Space, number: int, history: Sequence[TrialRecord], direction: Direction
    ) -> dict[str, Any]:
        sub = self.box(space, number // self.round_size, history, direction).space(space)
        return sub.from_unit(self._base.unit(len(space), number))

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, "round_size": self.round_size, "top": self.top, "margin": self.margin,
                "min_width": self.min_width, "base": self.base, "seed": self.seed}

