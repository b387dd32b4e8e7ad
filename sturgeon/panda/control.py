"""What a person (or the babysitter) can ask of a running panda run, and how a change is checked.

Commands travel through the store's queue (``Store.add_command``), so the CLI in another terminal, a
notebook and the dashboard all speak to the run the same way, and a command issued while the run's process
is down waits for it. A change is checked twice: when it is issued (so a typo fails at once, in the terminal
that typed it, and nothing is queued) and when the run applies it (against the trainable's own rules).

>>> from sturgeon.space import Float, Space
>>> parse_assignments(["lr=0.02", "decay=cosine", "batch_norm=true"])
{'lr': 0.02, 'decay': 'cosine', 'batch_norm': True}
>>> check_changes(Space(lr=Float(1e-5, 1.0, scale="log")), {"lr": 2.0})
Traceback (most recent call last):
...
sturgeon.space.SpaceError: The 'lr' parameter must be in [1e-05, 1]. Got 2.0 instead.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import Enum
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

from sturgeon.space import Float, Space, SpaceError

__all__ = ["CommandKind", "EventKind", "parse_assignments", "check_changes", "default_space"]


class CommandKind(str, Enum):
    SET = "set"  # args: {"params": {...}, "reason": str}
    ROLLBACK = "rollback"  # args: {"to": epoch, "branch": int | None, "params": {...}, "reason": str}
    PAUSE = "pause"
    RESUME = "resume"
    STOP = "stop"


class EventKind(str, Enum):
    """The kinds of event a panda run records; every change to the run is one of these rows."""

    SET = "set"  # a hyperparameter changed (by a person, or the babysitter)
    ROLLBACK = "rollback"  # this branch starts from an earlier checkpoint (old: parent branch, new: epoch)
    RESTART = "restart"  # the process died (or stopped); this branch continues from the last checkpoint (old, new:
    #                      as for a rollback: the branch whose checkpoint it is, its epoch)
    PAUSE = "pause"
    RESUME = "resume"
    STOP = "stop"
    DIVERGED = "diverged"  # the cost became NaN/inf or exploded and nothing rolled it back
    EXTEND = "extend"  # the run's end moved (old: epochs, new: epochs), to train a finished run further
    FAILED = "failed"  # the storage refused a write (a full disk): the run stopped; resume continues it exactly


def parse_assignments(items: Iterable[str]) -> dict[str, Any]:
    """``["lr=0.02", "momentum=0.95"]`` to a dict; values read as TOML literals, else as plain strings. A name
    given twice is refused: which of the two was meant is not for the run to guess.

    >>> parse_assignments(["lr=0.1", "lr=0.2"])
    Traceback (most recent call last):
    ...
    sturgeon.space.SpaceError: The 'lr' parameter is given twice: lr=0.1 and lr=0.2. Give each change once.
    """
    out: dict[str, Any] = {}
    given: dict[str, str] = {}
    for item in items:
        name, sep, text = item.partition("=")
        name, text = name.strip(), text.strip()
        if not sep or not name or not text:
            raise SpaceError(f"A change must look like name=value (e.g. lr=0.02). Got {item!r} instead.")
        if name in given:
            raise SpaceError(f"The '{name}' parameter is given twice: {given[name]} and {name}={text}. Give each "
                             "change once.")
        given[name] = f"{name}={text}"
        try:
            value = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            value = text  # a bare word: a choice such as cosine
        out[name] = value
    return out


def check_changes(space: Space, changes: Mapping[str, Any], ignored: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Each change validated against its parameter in ``space``; SpaceError names the first bad one.

    ``ignored``: parameters the run's trainable does not read, each with why (the built-in trainer under
    momentum does not read ``beta1``); a change of one would be logged and do nothing, so it is refused.

    >>> check_changes(default_space(), {"beta1": 0.95}, {"beta1": "optimizer 'momentum' does not use it"})
    Traceback (most recent call last):
    ...
    sturgeon.space.SpaceError: The 'beta1' parameter cannot be set to 0.95: optimizer 'momentum' does not use it.
    """
    if not changes:
        raise SpaceError("Give at least one change, e.g. lr=0.02. Got none instead.")
    checked = {}
    for name, value in changes.items():
        if ignored and name in ignored:
            raise SpaceError(f"The '{name}' parameter cannot be set to {value!r}: {ignored[name]}.")
        if name not in space.params:
            raise SpaceError(f"Unknown parameter '{name}': this run may change {', '.join(space.names)}.")
        checked[name] = space.params[name].validate(value)
    return checked


def default_space(without: Iterable[str] = ()) -> Space:
    """What ``panda set`` may change in the built-in trainer when a config gives no [space]: the knobs that
    matter while training, over wide ranges on their scales; ``without`` leaves out those the run does not
    read (a config leaves out the betas its optimizer ignores).

    >>> default_space(without={"beta1", "beta2", "rms_beta"}).names
    ['lr', 'momentum', 'l2', 'keep_prob']
    """
    knobs = dict(
        lr=Float(1e-6, 10.0, scale="log"),
        momentum=Float(0.0, 0.9999, scale="reverse_log"),
        beta1=Float(0.0, 0.9999, scale="reverse_log"),
        beta2=Float(0.5, 0.99999, scale="reverse_log"),
        rms_beta=Float(0.5, 0.99999, scale="reverse_log"),
        l2=Float(0.0, 1.0),
        keep_prob=Float(0.05, 1.0),
    )
    left_out = set(without)
    return Space(**{name: p for name, p in knobs.items() if name not in left_out})
