"""Draws: a study as its sampler and scheduler see it, one record per point asked for.

Draw d is the d-th point a study asked for. A retry re-runs a draw's params as a new trial, which then stands
for that draw: samplers and schedulers see one record per draw, numbered by draw, so a study with retries
proposes and ranks exactly as one whose trials never broke.

>>> from sturgeon.trial import TrialRecord, TrialState
>>> broken = TrialRecord(0, {"x": 1}, TrialState.INTERRUPTED)
>>> draws = Draws([broken], retry_of={})
>>> draws.to_retry([TrialState.INTERRUPTED])
0
>>> draws.add(TrialRecord(1, {"x": 1}), draw=0)
>>> draws.current, draws.view[0].number, draws.draw_of[1]
([1], 0, 0)
"""
from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import replace

from sturgeon.trial import TrialRecord, TrialState

__all__ = ["Draws", "RETRY", "RETRYABLE", "retry_states"]

# The event that marks a trial as a re-run of an earlier one: it takes that trial's place in the study's view.
RETRY = "retry"
RETRYABLE = (TrialState.INTERRUPTED, TrialState.FAILED)  # the states a retry may re-run


def retry_states(retry: Iterable[TrialState]) -> tuple[TrialState, ...]:
    """The ``retry`` states, checked: only interrupted and failed trials can run again."""
    states = tuple(TrialState(s) for s in retry)
    bad = [s.value for s in states if s not in RETRYABLE]
    if bad:
        raise ValueError(f"The 'retry' parameter may hold the states interrupted and failed. Got {bad[0]!r} instead.")
    return states


class Draws:
    """Which trial stands for each draw now, and the records renumbered by draw (``view``).

    ``records`` are the study's trials in number order; ``retry_of`` maps a retry's trial number to the trial
    it re-runs. Every update is O(1) but for ``to_retry``, which looks only at the draws in its states.
    """

    def __init__(self, records: Sequence[TrialRecord], retry_of: Mapping[int, int]) -> None:
        self.current: list[int] = []  # draw -> the trial that stands for it now
        self.draw_of: dict[int, int] = {}  # trial -> its draw
        for t in records:
            if t.number in retry_of and retry_of[t.number] in self.draw_of:
                d = self.draw_of[retry_of[t.number]]
                self.current[d] = t.number
            else:
                d = len(self.current)
                self.current.append(t.number)
            self.draw_of[t.number] = d
        self.view: list[TrialRecord] = [self.viewed(records[n]) for n in self.current]
        # draws whose current trial may be retried, by state, so that ask() need not scan every draw
        self._broken: dict[TrialState, set[int]] = {s: set() for s in RETRYABLE}
        for d, n in enumerate(self.current):
            if records[n].state in RETRYABLE:
                self._broken[records[n].state].add(d)

    def __len__(self) -> int:
        return len(self.current)

    def viewed(self, rec: TrialRecord) -> TrialRecord:
        """``rec`` as the sampler and scheduler see it: numbered by its draw."""
        d = self.draw_of[rec.number]
        return rec if d == rec.number else replace(rec, number=d)

    def add(self, rec: TrialRecord, draw: int | None = None) -> None:
        """A new trial: a new draw, or (``draw``) a re-run that now stands for that draw."""
        d = len(self.current) if draw is None else draw
        self.draw_of[rec.number] = d
        if d == len(self.current):
            self.current.append(rec.number)
            self.view.append(rec)
        else:
            self.current[d] = rec.number
            self.view[d] = self.viewed(rec)
            for draws in self._broken.values():
                draws.discard(d)

    def update(self, rec: TrialRecord) -> None:
        """Trial ``rec.number`` has a newer snapshot (a report, its end)."""
        d = self.draw_of[rec.number]
        if self.current[d] == rec.number:
            self.view[d] = self.viewed(rec)
            for state, draws in self._broken.items():
                if state is rec.state:
                    draws.add(d)
                else:
                    draws.discard(d)

    def to_retry(self, retry: Iterable[TrialState], skip: Collection[int] = ()) -> int | None:
        """The oldest draw whose current trial ended in one of the ``retry`` states (not in ``skip``), or None."""
        found = [d for state in retry_states(retry) for d in self._broken[state] if d not in skip]
        return min(found) if found else None
