"""The scheduler contract: answer each report of a running trial with a ``Decision``.

Schedulers are pure: they read frozen records and return a ``Decision``; they never touch the store or an
executor (Ray Tune flags its own violation of this as an anti-pattern). The study carries the decision out
and records every stop as an event with the scheduler's ``reason``.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

from sturgeon.trial import Decision, Direction, TrialRecord

__all__ = ["Scheduler", "FIFOScheduler"]


class Scheduler(ABC):
    """Answers each report of a running trial with a Decision."""

    def attach(self, metric: str, direction: Direction) -> None:  # noqa: B027 - optional
        """Called once by the study: the metric and direction its decisions should judge."""

    @abstractmethod
    def on_report(
        self, trial: TrialRecord, step: int, metrics: Mapping[str, float], history: Sequence[TrialRecord]
    ) -> Decision:
        """``trial`` is the reporting trial (its curve includes this report); ``history`` all trials so far."""

    def reason(self, trial: TrialRecord, step: int) -> str:
        """Why ``trial`` was stopped at ``step``: the stop event's reason."""
        return type(self).__name__

    def to_dict(self) -> dict[str, Any]:
        return {"type": "fifo"}


class FIFOScheduler(Scheduler):
    """Run every trial to its end: plain random search."""

    def on_report(
        self, trial: TrialRecord, step: int, metrics: Mapping[str, float], history: Sequence[TrialRecord]
    ) -> Decision:
        return Decision.CONTINUE
