"""Panda mode: babysit one run — watch it epoch by epoch, change α or momentum while it trains, roll back to
an earlier epoch as a new branch, let an opt-in babysitter catch divergence and plateaus.

>>> from sturgeon.panda import Run, PandaSettings, BabysitterRules
>>> PandaSettings(epochs=20, babysitter=BabysitterRules(plateau_epochs=3)).babysitter.plateau_epochs
3
"""
from __future__ import annotations

from sturgeon.panda.babysitter import Action, ActionKind, Babysitter, BabysitterRules
from sturgeon.panda.checkpoints import CheckpointWriteError, Retention, read_state, write_state
from sturgeon.panda.control import CommandKind, EventKind, check_changes, default_space, parse_assignments
from sturgeon.panda.run import PandaSettings, Run, RunState, RunStatus

__all__ = [
    "Run", "RunState", "RunStatus", "PandaSettings", "BabysitterRules", "Babysitter", "Action", "ActionKind",
    "CommandKind", "EventKind", "Retention", "read_state", "write_state", "check_changes", "default_space",
    "parse_assignments", "CheckpointWriteError",
]
