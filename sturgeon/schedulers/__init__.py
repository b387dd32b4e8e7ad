"""Schedulers decide, at each report, whether a trial continues; the study carries the decision out.

Schedulers are pure: they read frozen records and return a ``Decision``; they never touch the store or an
executor (Ray Tune flags its own violation of this as an anti-pattern).

>>> from sturgeon.trial import TrialRecord
>>> FIFOScheduler().on_report(TrialRecord(0, {}), 3, {"loss": 1.0}, []).name
'CONTINUE'
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

from sturgeon.schedulers._asha import Stop, SuccessiveHalving
from sturgeon.trial import Decision, TrialRecord

__all__ = ["Decision", "Scheduler", "FIFOScheduler", "SuccessiveHalving", "Stop", "scheduler_from_dict"]

class Scheduler(ABC):
    """Answers each report of a running trial with a Decision."""

    @abstractmethod
    def on_report(
        self, trial: TrialRecord, step: int, metrics: Mapping[str, float], history: Sequence[TrialRecord]
    ) -> Decision:
        """``trial`` is the reporting trial (its curve includes this report); ``history`` all trials so far."""

    def to_dict(self) -> dict[str, Any]:
        return {"type": "fifo"}


class FIFOScheduler(Scheduler):
    """Run every trial to its end: plain random search."""

    def on_report(
        self, trial: TrialRecord, step: int, metrics: Mapping[str, float], history: Sequence[TrialRecord]
    ) -> Decision:
        return Decision.CONTINUE


def scheduler_from_dict(spec: Mapping[str, Any] | None) -> Scheduler:
    kind = (spec or {}).get("type", "fifo")
    if kind == "fifo":
        return FIFOScheduler()
    raise ValueError(f"The 'scheduler' parameter must be one of fifo. Got {kind!r} instead.")
