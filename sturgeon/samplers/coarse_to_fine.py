"""Coarse to fine: search the whole box, find where the good points cluster, zoom in, search again.

Boxes live in the unit cube of the original space, so zooming works the same on every scale: a box
[0.4, 0.6] on a log-scaled α is a log-uniform sub-range, on a reverse_log β a log-uniform range of 1 − β.
"""
from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sturgeon.draws import RETRYABLE
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


def _settled(rec: TrialRecord) -> bool:
    """Whether a study's view keeps this record at its place for good: finished, and no retry re-runs it."""
    return rec.state.finished and rec.state not in RETRYABLE


def _what_boxes_read(rec: TrialRecord) -> tuple[Any, ...]:
    # all that refine_box and ready() read of a record: a newer snapshot of a running trial (one more report in
    # its curve) changes none of it, so it changes no box
    return rec.number, rec.state, rec.value, rec.params


class _History:
    """The history as the sampler last saw it, brought up to date in O(1) per ask for a study's own list.

    A study passes the same list (its view) on every ask, and only ever appends to it or replaces the records
    that may still change: running trials (a report, their end) and interrupted or failed ones (a retry re-runs
    them). So for that same list only those "open" positions and the new tail are looked at, and two settled
    records are probed to catch a list that was emptied and refilled; any other sequence (another study's,
    ``study.trials``, a hand-made list) is compared record by record.
    """

    def __init__(self) -> None:
        self.source: Sequence[TrialRecord] | None = None  # held, so that no other list can take over its id
        self.records: list[TrialRecord] = []  # source[i] as last seen
        self.open: set[int] = set()  # positions whose record a study may still replace
        self.running: set[int] = set()  # positions whose trial has not finished (ready() waits for them)
        self.misnumbered: set[int] = set()  # positions i whose record's number is not i
        self.first_settled, self.last_settled = -1, -1  # the probes; -1: none yet

    def sync(self, history: Sequence[TrialRecord]) -> int | None:
        """Take in ``history``; returns the first position whose record (as boxes read it) may differ, or None."""
        recs = self.records
        probes = (self.first_settled, self.last_settled)
        if history is self.source and len(history) >= len(recs) and all(
            history[i] is recs[i] for i in probes if i >= 0
        ):
            changed: int | None = None
            for i in list(self.open):
                rec = history[i]
                if rec is not recs[i]:
                    if _what_boxes_read(rec) != _what_boxes_read(recs[i]):
                        changed = i if changed is None else min(changed, i)
                    recs[i] = rec
                    self._file(i, rec)
        else:
            n = min(len(history), len(recs))
            k = 0
            while k < n and (history[k] is recs[k] or _what_boxes_read(history[k]) == _what_boxes_read(recs[k])):
                k += 1
            changed = None if k == len(history) == len(recs) else k
            # positions below k read the same, so they keep their sets; their records are the new objects
            self.source, self.records = history, list(history[:k])
            recs = self.records
            self.open = {i for i in self.open if i < k}
            self.running = {i for i in self.running if i < k}
            self.misnumbered = {i for i in self.misnumbered if i < k}
            if self.first_settled >= k:
                self.first_settled = -1
            if self.last_settled >= k:
                last = k - 1
                while last >= 0 and last in self.open:
                    last -= 1
                self.last_settled = last
        if len(history) > len(recs):
            changed = len(recs) if changed is None else changed
            for i in range(len(recs), len(history)):
                rec = history[i]
                recs.append(rec)
                self._file(i, rec)
        return changed

    def _file(self, i: int, rec: TrialRecord) -> None:
        """Put position ``i``, which now holds ``rec``, in its sets."""
        if rec.number == i:
            self.misnumbered.discard(i)
        else:
            self.misnumbered.add(i)
        if rec.state.finished:
            self.running.discard(i)
        else:
            self.running.add(i)
        if _settled(rec):
            self.open.discard(i)
            if self.first_settled < 0 or i < self.first_settled:
                self.first_settled = i
            self.last_settled = max(self.last_settled, i)
        else:
            self.open.add(i)


@dataclass
class _Round:
    box: Box
    sub: Space | None = None  # box.space(space), built on the first ask that needs it


class CoarseToFine(Sampler):
    """Rounds of ``round_size`` trials; each round samples inside the box of the best trials so far.

    Round 0 covers the whole space; round r > 0 samples inside ``refine_box`` of all trials finished in
    rounds < r, padded relative to round r − 1's box. Points inside a box come from ``base`` ("random" or
    "sobol"). The box for a round is fixed once all earlier rounds have finished, so a serial study is
    reproducible and a resumed one proposes the same points.

    An ask costs O(1) whatever the size of the study (a round's box is computed once, in O(n log n) over the
    trials before it): the sampler keeps the history it last saw and each round's box and restricted space, and
    takes in only what changed (see ``_History``). A box is still a function of the space, the direction and the
    history passed: the same object may serve another study, or be given any other history.

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
        self._lock = threading.Lock()  # the state below is shared by every study this object serves
        self._history = _History()
        # what the rounds were computed for: a space (held; compared by identity, then by its JSON) and a direction
        self._space: Space | None = None
        self._space_json = ""
        self._direction: Direction | None = None
        self._rounds: list[_Round] = []  # round r's box for that space, direction and self._history.records

    def box(self, space: Space, round_: int, history: Sequence[TrialRecord], direction: Direction) -> Box:
        """The box that round ``round_`` samples in."""
        with self._lock:
            return self._round(space, round_, history, direction).box

    def _see(self, history: Sequence[TrialRecord]) -> None:
        changed = self._history.sync(history)
        if changed is not None:  # round r reads the trials before r · round_size: those before `changed` kept it
            del self._rounds[changed // self.round_size + 1 :]

    def _round(self, space: Space, round_: int, history: Sequence[TrialRecord], direction: Direction) -> _Round:
        if space is not self._space or direction != self._direction:
            space_json = space.to_json()
            if space_json != self._space_json or direction != self._direction:
                self._rounds.clear()
            self._space, self._space_json, self._direction = space, space_json, direction
        self._see(history)
        if self._history.misnumbered:
            return _Round(self._box_by_number(space, round_, history, direction))
        rounds = self._rounds
        if not rounds:
            rounds.append(_Round(Box.whole(space)))
        records = self._history.records
        while len(rounds) <= round_:
            # the trials numbered below the round's first are the first positions: numbers are positions here
            before = records[: len(rounds) * self.round_size]
            rounds.append(_Round(refine_box(space, before, direction, top=self.top, margin=self.margin,
                                            min_width=self.min_width, current=rounds[-1].box)))
        return rounds[round_]

    def _box_by_number(
        self, space: Space, round_: int, history: Sequence[TrialRecord], direction: Direction
    ) -> Box:
        """The box of a history whose trial numbers are not their positions (a hand-made one): every round's
        box again from the trials numbered below its first, with nothing kept (such a history is rare)."""
        box = Box.whole(space)
        for r in range(1, round_ + 1):
            before = [t for t in history if t.number < r * self.round_size]
            box = refine_box(space, before, direction, top=self.top, margin=self.margin, min_width=self.min_width,
                             current=box)
        return box

    def ready(self, number: int, history: Sequence[TrialRecord]) -> bool:
        end = (number // self.round_size) * self.round_size  # trials of earlier rounds must have finished
        with self._lock:
            self._see(history)
            return not any(i < end for i in self._history.running)

    def sample(
        self, space: Space, number: int, history: Sequence[TrialRecord], direction: Direction
    ) -> dict[str, Any]:
        with self._lock:
            r = self._round(space, number // self.round_size, history, direction)
            if r.sub is None:
                r.sub = r.box.space(space)
            return r.sub.from_unit(self._base.unit(len(space), number))

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, "round_size": self.round_size, "top": self.top, "margin": self.margin,
                "min_width": self.min_width, "base": self.base, "seed": self.seed}
