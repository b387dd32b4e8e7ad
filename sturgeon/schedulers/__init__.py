"""Schedulers decide, at each report, whether a trial continues; the study carries the decision out.

- ``FIFOScheduler`` (default): every trial runs to its end.
- ``SuccessiveHalving`` (``type = "asha"``): asynchronous successive halving at rung epochs; the same rung
  table halves the models of a fused caviar group.

>>> from sturgeon.trial import TrialRecord
>>> FIFOScheduler().on_report(TrialRecord(0, {}), 3, {"loss": 1.0}, []).name
'CONTINUE'
>>> scheduler_from_dict({"type": "asha", "rungs": [1, 3], "eta": 3}).rungs
(1, 3)
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sturgeon.schedulers._asha import Stop, SuccessiveHalving
from sturgeon.schedulers.base import FIFOScheduler, Scheduler
from sturgeon.trial import Decision

__all__ = ["Decision", "Scheduler", "FIFOScheduler", "SuccessiveHalving", "Stop", "scheduler_from_dict"]

_KEYS = {"fifo": set(), "asha": {"rungs", "eta", "metric"}}


def scheduler_from_dict(spec: Mapping[str, Any] | None) -> Scheduler:
    """A scheduler from its stored or configured description; every problem is one ValueError line."""
    spec = dict(spec or {})
    kind = spec.pop("type", "fifo")
    if not isinstance(kind, str) or kind not in _KEYS:
        raise ValueError(f"The 'scheduler.type' key must be one of {', '.join(_KEYS)}. Got {kind!r} instead.")
    unknown = sorted(set(spec) - _KEYS[kind])
    if unknown:
        known = ", ".join(sorted(_KEYS[kind])) or "none"
        raise ValueError(f"Unknown key 'scheduler.{unknown[0]}' for the {kind} scheduler. Known: {known}.")
    if kind == "fifo":
        return FIFOScheduler()
    rungs = spec.get("rungs", [1, 3, 9])
    if not isinstance(rungs, (list, tuple)):
        raise ValueError(f"The 'scheduler.rungs' key must be a list of epochs. Got {rungs!r} instead.")
    return SuccessiveHalving(tuple(rungs), spec.get("eta", 3), spec.get("metric"))
