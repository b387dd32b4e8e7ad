"""Trials: the live handle an objective works with, and the frozen record everyone else reads.

>>> rec = TrialRecord(number=0, params={"lr": 0.01}, state=TrialState.COMPLETE, value=0.1)
>>> rec.state.finished
True
"""
from __future__ import annotations

import math
import operator
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

__all__ = ["TrialState", "Direction", "Decision", "TrialRecord", "Trial", "TrialPruned"]


class Decision(str, Enum):
    """What a scheduler answers to a report; the study carries it out."""

    CONTINUE = "continue"
    STOP = "stop"  # stop early: the trial becomes PRUNED
    PAUSE = "pause"  # keep its checkpoint, free its slot (PBT, panda)
    BRANCH = "branch"  # continue from a checkpoint under changed params (PBT exploit, panda rollback)


class TrialState(str, Enum):
    RUNNING = "running"
    COMPLETE = "complete"
    PRUNED = "pruned"  # stopped early by a scheduler or the objective; its value is the last report
    FAILED = "failed"  # the objective raised or returned a non-finite value; the search goes on
    INTERRUPTED = "interrupted"  # its process died (kill -9, power cut) before it finished
    DIVERGED = "diverged"  # its cost became NaN/inf or exploded: a hyperparameter outcome, not a bug

    @property
    def finished(self) -> bool:
        return self is not TrialState.RUNNING


class Direction(str, Enum):
    MINIMIZE = "minimize"
    MAXIMIZE = "maximize"

    def better(self, a: float, b: float) -> bool:
        """Whether value ``a`` is strictly better than ``b``."""
        return a < b if self is Direction.MINIMIZE else a > b

    def sign(self) -> float:
        """+1 for minimize, -1 for maximize: ``sign · value`` is always 'lower is better'."""
        return 1.0 if self is Direction.MINIMIZE else -1.0


class TrialPruned(Exception):
    """Raise inside an objective to stop the trial early; it is recorded as PRUNED, not FAILED."""


@dataclass(frozen=True, slots=True)
class TrialRecord:
    """An immutable snapshot of a trial: what samplers, schedulers, the CLI and reports read."""

    number: int
    params: dict[str, Any]
    state: TrialState = TrialState.RUNNING
    value: float | None = None
    curve: dict[int, dict[str, float]] = field(default_factory=dict)  # step -> metrics reported at it
    error: str | None = None
    started_at: float = 0.0
    finished_at: float | None = None

    @property
    def duration(self) -> float | None:
        return None if self.finished_at is None else self.finished_at - self.started_at

    def last(self, metric: str) -> float | None:
        """The last reported value of ``metric``, if any."""
        for step in sorted(self.curve, reverse=True):
            if metric in self.curve[step]:
                return self.curve[step][metric]
        return None


class Trial:
    """The live handle given to an objective: its params, and ``report`` for its learning curve.

    >>> from sturgeon import Study, Space, Float
    >>> study = Study(space=Space(x=Float(0, 1)), metric="loss")
    >>> trial = study.ask()
    >>> trial.report(0, loss=0.5).name
    'CONTINUE'
    """

    __slots__ = ("number", "params", "started_at", "curve", "_on_report", "_stop", "stopped_at")

    def __init__(
        self,
        number: int,
        params: dict[str, Any],
        on_report: Callable[[Trial, int, dict[str, float]], Decision],
        started_at: float | None = None,
    ) -> None:
        self.number = number
        self.params = params
        self.started_at = time.time() if started_at is None else started_at
        self.curve: dict[int, dict[str, float]] = {}
        self._on_report = on_report
        self._stop = False
        self.stopped_at: int | None = None  # the step at which the scheduler said STOP, if it did

    def __getitem__(self, name: str) -> Any:
        return self.params[name]

    def report(self, step: int, **metrics: float) -> Decision:
        """Record ``metrics`` at ``step`` (an epoch, a "day") durably; return the scheduler's decision.

        When the decision is STOP, ``should_stop`` becomes true; raise ``TrialPruned`` (or return) to obey.
        """
        try:
            index = -1 if isinstance(step, bool) else operator.index(step)  # ints and numpy ints
        except TypeError:
            index = -1
        if index < 0:
            raise ValueError(f"The 'step' of a report must be an integer >= 0. Got {step!r} instead.")
        step = index
        clean: dict[str, float] = {}
        for name, v in metrics.items():
            try:
                clean[name] = float(v)
            except (TypeError, ValueError):
                raise ValueError(f"The reported metric '{name}' must be a number. Got {v!r} instead.") from None
        self.curve[step] = {**self.curve.get(step, {}), **clean}
        decision = self._on_report(self, step, clean)
        if decision is Decision.STOP and self.stopped_at is None and not self._stop:
            self.stopped_at = step
        self._stop = self._stop or decision is Decision.STOP
        return decision

    @property
    def should_stop(self) -> bool:
        return self._stop

    def stop(self) -> None:
        """Ask the objective to stop at its next report (the study does this on Ctrl-C and fatal errors)."""
        self._stop = True


def value_of(result: Any, metric: str, trial: Trial) -> float:
    """The objective value from what an objective returned: a number, a dict holding ``metric``, or None
    (then the last reported ``metric``). Raises ValueError with the reason when there is none."""
    if result is None:
        for step in sorted(trial.curve, reverse=True):
            if metric in trial.curve[step]:
                result = trial.curve[step][metric]
                break
        else:
            raise ValueError(f"the objective returned None and never reported '{metric}'")
    elif isinstance(result, Mapping):
        if metric not in result:
            raise ValueError(f"the objective returned {sorted(result)} without the metric '{metric}'")
        result = result[metric]
    # float() would take "0.5" and True: a string or a bool is a bug in the objective, never a value
    if isinstance(result, (str, bytes, bool)):
        kind = "a string" if isinstance(result, (str, bytes)) else "a bool"
        raise ValueError(f"the objective returned {result!r}, {kind}, not a number")
    try:
        value = float(result)
    except (TypeError, ValueError):
        raise ValueError(f"the objective returned {result!r}, not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"the objective returned {value} for '{metric}'")
    return value
