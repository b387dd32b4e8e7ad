"""Successive halving (ASHA): at each rung, keep the best 1/η of the trials that have reached it.

Rungs count completed epochs from 1 (a trial reaches rung 3 with its report at step 2, its third epoch).
The rule is asynchronous successive halving: a trial that reaches a rung continues if it ranks among the best
``max(1, n // eta)`` of the ``n`` trials that have reached that rung so far, itself included. In a fused group
whose models report together (``judge`` with all of them) this is exactly synchronous successive halving; a
trial that reports alone (``on_report``, a plain objective) is judged against everything recorded at its rung.

One rung table serves both: the study's scheduler for unfused trials, and caviar's in-group halving. Trials are
keyed by their number in the study's own view, where a retried trial takes the place of the one it re-runs, so
a resumed study ranks exactly as one that never stopped; a table rebuilt from the stored curves (``seed``)
continues where the old process left it.

>>> sh = SuccessiveHalving(rungs=(1, 3, 9), eta=3)
>>> sorted(sh.judge(1, {m: float(m) for m in range(9)}, minimize=True))   # the 9 - 9 // 3 = 6 worst stop
[3, 4, 5, 6, 7, 8]
"""
from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sturgeon.schedulers.base import Scheduler
from sturgeon.trial import Decision, Direction, TrialRecord, TrialState

__all__ = ["SuccessiveHalving", "Stop"]


@dataclass(frozen=True)
class Stop:
    """A trial stopped at a rung, with the reason recorded as an event."""

    model: int
    epoch: int
    rank: int  # 1 = best among those at the rung
    of: int
    kept: int

    @property
    def reason(self) -> str:
        return f"successive halving at epoch {self.epoch}: rank {self.rank} of {self.of}, the best {self.kept} continue"


@dataclass
class SuccessiveHalving(Scheduler):
    """Rung epochs and the reduction factor η; remembers every value seen at each rung.

    As a study's scheduler (``Study(..., scheduler=SuccessiveHalving((1, 3, 9)))``, or ``[scheduler] type =
    "asha"``) it judges the study's metric in the study's direction; ``metric`` overrides the metric.
    """

    rungs: Sequence[int] = (1, 3, 9)
    eta: int = 3
    metric: str | None = None
    seen: dict[int, dict[int, float]] = field(default_factory=dict)  # rung -> {trial: value}
    _ranked: dict[int, list[tuple[float, int]]] = field(default_factory=dict, repr=False)  # rung -> sorted keys
    _sign: float = field(default=1.0, repr=False)  # +1 minimize, -1 maximize: what _ranked is sorted by
    _direction: Direction = field(default=Direction.MINIMIZE, repr=False)
    _metric: str | None = field(default=None, repr=False)  # the attached study's metric, unless ``metric``
    _stops: dict[int, Stop] = field(default_factory=dict, repr=False)
    _seeded: bool = field(default=False, repr=False)

    def __post_init__(self) -> None:
        if isinstance(self.eta, bool) or not isinstance(self.eta, int) or self.eta < 2:
            raise ValueError(f"The 'eta' parameter must be an integer >= 2. Got {self.eta!r} instead.")
        rungs = self.rungs
        if (isinstance(rungs, (str, bytes)) or not isinstance(rungs, Sequence) or not rungs
                or any(isinstance(r, bool) or not isinstance(r, int) or r < 1 for r in rungs)
                or list(rungs) != sorted(set(rungs))):
            raise ValueError(f"The 'rungs' parameter must be increasing epochs >= 1. Got {self.rungs!r} instead.")
        if self.metric is not None and (not isinstance(self.metric, str) or not self.metric):
            raise ValueError(f"The 'metric' parameter must be a non-empty name or None. Got {self.metric!r} instead.")
        self.rungs = tuple(rungs)

    def record(self, epoch: int, values: Mapping[int, float], *, minimize: bool = True) -> None:
        """Add ``values`` (trial -> metric) at ``epoch`` to the table without judging them (a model that ended
        there: it completed or diverged, but its value still counts for those judged after it). Each insert
        keeps the rung sorted (bisect), so a report costs O(log n) to rank, not a sort of the whole rung."""
        if epoch not in self.rungs:
            return
        sign = 1.0 if minimize else -1.0
        if sign != self._sign:  # judged in the other direction: re-sort once
            self._sign = sign
            self._ranked = {r: sorted((sign * v, m) for m, v in at.items()) for r, at in self.seen.items()}
        at = self.seen.setdefault(epoch, {})
        ranked = self._ranked.setdefault(epoch, [])
        for m, v in values.items():
            if m in at:  # reported again at this rung (a re-run): its old value leaves the ranking
                del ranked[bisect.bisect_left(ranked, (sign * at[m], m))]
            at[m] = v
            bisect.insort(ranked, (sign * v, m))

    def judge(self, epoch: int, values: Mapping[int, float], *, minimize: bool = True) -> dict[int, Stop]:
        """Record ``values`` (trial -> metric) of the trials that just completed ``epoch``; return those
        to stop. Nothing stops off a rung. Ties rank by trial number (earlier first), so the result is exact."""
        if epoch not in self.rungs or not values:
            return {}
        self.record(epoch, values, minimize=minimize)
        ranked = self._ranked[epoch]
        kept = max(1, len(ranked) // self.eta)
        stops = {}
        for m, v in values.items():
            rank = bisect.bisect_left(ranked, (self._sign * v, m)) + 1
            if rank > kept:
                stops[m] = Stop(m, epoch, rank, len(ranked), kept)
        return stops

    def seed(self, history: Sequence[TrialRecord], metric: str, *, skip: int | None = None) -> None:
        """Fill the table from stored curves: each trial's ``metric`` at each rung, except interrupted trials
        (they run again and report again) and trial ``skip``."""
        minimize = self._direction is Direction.MINIMIZE
        for t in history:
            if t.state is TrialState.INTERRUPTED or t.number == skip:
                continue
            for r in self.rungs:
                v = t.curve.get(r - 1, {}).get(metric)
                if v is not None and math.isfinite(v):
                    self.record(r, {t.number: v}, minimize=minimize)
        self._seeded = True

    # -- the Scheduler interface --------------------------------------------------------------------------------
    def attach(self, metric: str, direction: Direction) -> None:
        """Serve one study: its metric (unless ``metric`` was given) and direction, and a fresh rung table (an
        object shared by two studies must not rank one's trials against the other's)."""
        self._metric = self.metric or metric
        self._direction = direction
        self.seen, self._ranked, self._stops, self._seeded = {}, {}, {}, False

    def on_report(
        self, trial: TrialRecord, step: int, metrics: Mapping[str, float], history: Sequence[TrialRecord]
    ) -> Decision:
        metric = self._metric or self.metric or "value"
        if not self._seeded:  # a study resumed in a new process: its stored curves rebuild the table
            self.seed(history, metric, skip=trial.number)
        value = metrics.get(metric)
        if value is None or not math.isfinite(value):
            return Decision.CONTINUE
        stops = self.judge(step + 1, {trial.number: value}, minimize=self._direction is Direction.MINIMIZE)
        if trial.number in stops:
            self._stops[trial.number] = stops[trial.number]
            return Decision.STOP
        return Decision.CONTINUE

    def reason(self, trial: TrialRecord, step: int) -> str:
        stop = self._stops.get(trial.number)
        return stop.reason if stop is not None else "successive halving"

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"type": "asha", "rungs": list(self.rungs), "eta": self.eta}
        if self.metric is not None:
            d["metric"] = self.metric
        return d
