"""A babysat run: the Python API that ``sturgeon panda`` mirrors, for a notebook or a script.

One configuration trains epoch by epoch ("day" by day) with an exact checkpoint after each; from any other
process a person watches its curve, changes α or momentum (applied at the next epoch boundary), rolls back
to an earlier epoch as a new branch, pauses, resumes or stops it. Everything goes through the store:
commands wait in a queue the training process polls, every applied change is an event, and each branch of
the run's history is a trial with its own learning curve.

>>> from sturgeon.train import Trainer, load_data
>>> data = load_data("digits")
>>> run = Run.create("demo", {"lr": 0.01, "units": 32, "seed": 0}, store=":memory:",
...                  settings=PandaSettings(epochs=3))
>>> run.train(lambda: Trainer(data), until=2).epoch
2
>>> _ = run.set(lr=0.003, reason="curve is noisy")
>>> status = run.train(lambda: Trainer(data))
>>> status.state.value, status.epoch, status.params["lr"], [c["lr"] for c in status.curve.values()]
('finished', 3, 0.003, [0.01, 0.01, 0.003])
"""
from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import Any

from sturgeon.panda.babysitter import BabysitterRules
from sturgeon.panda.checkpoints import list_checkpoints
from sturgeon.panda.control import CommandKind, EventKind, check_changes, default_space
from sturgeon.panda.lineage import find_checkpoint, lineage_curve
from sturgeon.space import Space
from sturgeon.store import Branch, Command, CommandState, Event, SQLiteStore, Store, StoreError, StudySpec
from sturgeon.train import Trainable
from sturgeon.trial import TrialRecord, TrialState

__all__ = ["Run", "RunState", "RunStatus", "PandaSettings", "Boundary"]

KIND = "panda"  # StudySpec.attrs["kind"] of a study that is a panda run


class Boundary(str, Enum):
    """Where a ``set`` takes effect: at the next epoch boundary, or already between two mini-batches
    (``step``: the trainable must offer a ``batch_hook``, as the built-in trainer does)."""

    EPOCH = "epoch"
    STEP = "step"


class RunState(str, Enum):
    CREATED = "created"  # nothing trained yet
    RUNNING = "running"  # a live process trains it
    PAUSED = "paused"  # a live process holds it and waits for resume
    FINISHED = "finished"  # the current branch reached its epochs
    STOPPED = "stopped"  # stopped by a person; resume continues from the last checkpoint
    DIVERGED = "diverged"  # the cost became NaN/inf (and no babysitter rescued it)
    FAILED = "failed"  # the trainable raised
    CRASHED = "crashed"  # its process died (kill -9, Ctrl-C, power): resume continues from the last checkpoint


@dataclass(frozen=True)
class PandaSettings:
    """How a run trains and keeps its history.

    ``epochs``: where the run ends; ``metric``/``direction``: the branch's value; ``keep_last``/``keep_every``:
    checkpoint retention per branch (epoch 0 and fork points are always kept); ``poll_seconds``: how often a
    paused run (or one applying changes between mini-batches) looks for commands; ``babysitter``: opt-in
    automatic rules (None: off); ``apply``: where a ``set`` takes effect (:class:`Boundary`).
    """

    epochs: int = 10
    metric: str = "dev_error"
    direction: str = "minimize"
    keep_last: int = 3
    keep_every: int = 5
    poll_seconds: float = 0.2
    babysitter: BabysitterRules | None = None
    apply: Boundary = Boundary.EPOCH

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "apply", Boundary(self.apply))
        except ValueError:
            raise ValueError(f"The 'apply' parameter must be one of epoch, step. Got {self.apply!r} instead.") from None
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, int) or self.epochs < 1:
            raise ValueError(f"The 'epochs' parameter must be an integer >= 1. Got {self.epochs!r} instead.")
        if not isinstance(self.metric, str) or not self.metric:
            raise ValueError(f"The 'metric' parameter must be a non-empty name. Got {self.metric!r} instead.")
        if self.direction not in ("minimize", "maximize"):
            raise ValueError(f"The 'direction' parameter must be one of minimize, maximize. Got {self.direction!r} "
                             "instead.")
        if not isinstance(self.poll_seconds, (int, float)) or not 0 < self.poll_seconds <= 60:
            raise ValueError(f"The 'poll_seconds' parameter must be in (0, 60]. Got {self.poll_seconds!r} instead.")
        from sturgeon.panda.checkpoints import Retention

        Retention(self.keep_last, self.keep_every)  # validates both

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["apply"] = self.apply.value
        d["babysitter"] = None if self.babysitter is None else self.babysitter.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PandaSettings:
        d = dict(d)
        rules = d.pop("babysitter", None)
        return cls(**d, babysitter=None if rules is None else BabysitterRules(**rules))


@dataclass(frozen=True)
class RunStatus:
    """What ``panda status`` shows: where the run is, its curve on the current branch, params, history."""

    name: str
    state: RunState
    branch: int  # the current branch (a trial number)
    epoch: int  # epochs completed on the current branch's line
    epochs: int
    params: dict[str, Any]  # in effect now
    curve: dict[int, dict[str, float]]  # epoch -> metrics, along the current branch's line
    events: list[Event]
    pending: list[Command]
    branches: list[Branch]
    trials: list[TrialRecord] = field(repr=False, default_factory=list)
    pid: int | None = None


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")  # a run's name is also its folder's


def _open_store(store: Store | str | Path) -> Store:
    return store if isinstance(store, Store) else SQLiteStore(store)


class Run:
    """A handle on one babysat run: control it from anywhere, train it in this process with :meth:`train`."""

    def __init__(self, name: str, store: Store, study_id: int, spec: StudySpec) -> None:
        self.name, self.store, self.study_id, self.spec = name, store, study_id, spec
        self.space = Space.from_dict(spec.space)
        self.settings = self._settings(store.events(study_id))
        self._session: Any = None  # the training session while this process trains the run
        self._extended: tuple[int, int] | None = None  # (old, new) end, until the session records it

    def _settings(self, events: list[Event]) -> PandaSettings:
        """The stored settings, with the run's end as the last ``extend`` event moved it."""
        settings = PandaSettings.from_dict(self.spec.attrs["settings"])
        ends = [e.new for e in events if e.kind == EventKind.EXTEND.value]
        return replace(settings, epochs=int(ends[-1])) if ends else settings

    # -- creating and opening ------------------------------------------------------------------------------
    @classmethod
    def create(cls, name: str, params: Mapping[str, Any], *, store: Store | str | Path, space: Space | None = None,
               settings: PandaSettings | None = None, attrs: Mapping[str, Any] | None = None) -> Run:
        """A new run starting from ``params``; ``space`` says what may change while it trains, and how far
        (default: α, momentum and the betas, L2 and keep_prob of the built-in trainer, on wide ranges)."""
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ValueError("The run name must be letters, digits, '.', '_' or '-', starting with a letter or a "
                             f"digit (it names the run's folder). Got {name!r} instead.")
        attrs = dict(attrs or {})
        if space is None:  # the built-in trainer's knobs, less those its optimizer does not read
            from sturgeon.train import TrainParams, ignored_params

            try:
                ignored = ignored_params(TrainParams.from_dict(dict(params)).optimizer.value)
            except ValueError:  # not the built-in trainer's params: every knob stays settable
                ignored = {}
            attrs.setdefault("ignored", ignored)
            space = default_space(without=ignored)
        settings = settings or PandaSettings()
        for pname, p in space.params.items():  # the starting point must lie inside what may be set
            if pname in params:
                p.validate(params[pname])
        st = _open_store(store)
        found = st.study_spec(name)
        if found is not None:
            trials = st.trials(found[0])
            failed_at_setup = (found[1].attrs.get("kind") == KIND and trials and st.writer(found[0]) is None
                               and all(t.state in (TrialState.FAILED, TrialState.INTERRUPTED) for t in trials)
                               and not list_checkpoints(st.artifact_dir(name)))
            if not failed_at_setup:
                raise StoreError(f"A run named '{name}' already exists; resume it (sturgeon panda resume {name}) "
                                 "or choose another name.")
            st.delete_study(name)  # it failed before its first checkpoint: nothing to keep, start it afresh
        spec = StudySpec(name=name, space=space.to_dict(), metric=settings.metric, direction=settings.direction,
                         attrs={**attrs, "kind": KIND, "settings": settings.to_dict(),
                                "params": dict(params)})
        return cls(name, st, st.create_study(spec), spec)

    @classmethod
    def open(cls, name: str, store: Store | str | Path, *, readonly: bool = False) -> Run:
        """A handle on an existing run (for control, status, or to train it further); ``readonly`` only
        reads (status), never writing to nor upgrading the store."""
        st = store if isinstance(store, Store) else SQLiteStore(store, readonly=readonly)
        found = st.study_spec(name)
        if found is None:
            raise StoreError(f"No panda run named '{name}' in '{getattr(st, 'path', 'the store')}'.")
        if found[1].attrs.get("kind") != KIND:
            raise StoreError(f"'{name}' is a study, not a panda run (see sturgeon show {name}).")
        return cls(name, st, found[0], found[1])

    @property
    def artifacts(self) -> Path:
        """The folder of this run's checkpoint files."""
        return self.store.artifact_dir(self.name)

    # -- control: any process ------------------------------------------------------------------------------
    def _command(self, kind: CommandKind, args: Mapping[str, Any], source: str) -> int:
        return self.store.add_command(self.study_id, kind.value, args, source)

    def check(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        """``changes`` as the run takes them, checked against its space and against what its trainable reads
        (``attrs["ignored"]``: a config records the params its optimizer ignores); SpaceError names the first
        bad one."""
        return check_changes(self.space, changes, self.spec.attrs.get("ignored"))

    def set(self, *, reason: str = "", source: str = "api", **changes: Any) -> int:
        """Change hyperparameters at the next epoch boundary (or mini-batch, with ``apply="step"``); checked
        against the space now (SpaceError, nothing queued). Returns the command's id (see :meth:`wait`)."""
        checked = self.check(changes)
        return self._command(CommandKind.SET, {"params": checked, "reason": reason}, source)

    def rollback(self, to: int, *, branch: int | None = None, reason: str = "", source: str = "api",
                 **changes: Any) -> int:
        """Go back to the checkpoint after epoch ``to`` (on the current branch's line, or on ``branch``) and
        continue from there as a new branch, with ``changes`` applied; the old branch is kept."""
        checked = self.check(changes) if changes else {}
        status = self.status()
        on = status.branch if branch is None else branch
        if on not in {t.number for t in status.trials}:
            raise StoreError(f"The run '{self.name}' has no branch {on}; branches: "
                             f"{', '.join(str(t.number) for t in status.trials) or 'none yet'}.")
        if isinstance(to, bool) or not isinstance(to, int) or to < 0:
            raise ValueError(f"The 'to' epoch must be an integer >= 0. Got {to!r} instead.")
        files = list_checkpoints(self.artifacts)
        found = find_checkpoint(files, status.branches, on, to)
        if found is None:
            have = sorted({c.step for c in files if find_checkpoint([c], status.branches, on, c.step) is not None})
            listed = ", ".join(map(str, have)) if len(have) <= 12 else \
                f"{', '.join(map(str, have[:5]))}, ... ({len(have) - 10} more), {', '.join(map(str, have[-5:]))}"
            raise StoreError(f"Branch {on} of '{self.name}' has no checkpoint at epoch {to}; it has: "
                             f"{listed or 'none'}.")
        return self._command(CommandKind.ROLLBACK, {"to": to, "branch": on, "params": checked, "reason": reason},
                             source)

    def pause(self, *, source: str = "api") -> int:
        return self._command(CommandKind.PAUSE, {}, source)

    def resume(self, *, source: str = "api") -> int:
        """Resume a paused run (its live process continues). A run whose process is gone resumes by
        :meth:`train` (or ``sturgeon panda resume``), from the last checkpoint of the current branch."""
        return self._command(CommandKind.RESUME, {}, source)

    def stop(self, *, source: str = "api") -> int:
        return self._command(CommandKind.STOP, {}, source)

    def wait(self, command_id: int, timeout: float = 60.0) -> Command:
        """Block until command ``command_id`` is applied or refused (or ``timeout`` seconds pass)."""
        deadline = time.monotonic() + timeout
        while True:
            cmd = next((c for c in self.store.commands(self.study_id) if c.id == command_id), None)
            if cmd is None:
                raise StoreError(f"The run '{self.name}' has no command {command_id}.")
            if cmd.state is not CommandState.PENDING or time.monotonic() >= deadline:
                return cmd
            time.sleep(0.05)

    # -- reading: any process ------------------------------------------------------------------------------
    def status(self) -> RunStatus:
        trials = self.store.trials(self.study_id)
        branches = self.store.branches(self.study_id)
        events = self.store.events(self.study_id)
        pending = self.store.commands(self.study_id, CommandState.PENDING)
        pid = self.store.writer(self.study_id)
        self.settings = self._settings(events) if self._session is None else self.settings
        if not trials:
            return RunStatus(self.name, RunState.CREATED, 0, 0, self.settings.epochs, dict(self.spec.attrs["params"]),
                             {}, events, pending, branches, trials, pid)
        current = trials[-1]
        curve = lineage_curve({t.number: t.curve for t in trials}, branches, current.number)
        fork = next((b.step for b in branches if b.trial == current.number), 0)
        params = dict(current.params)
        for e in events:
            if e.trial == current.number and e.kind == EventKind.SET.value and e.param is not None:
                params[e.param] = e.new
        return RunStatus(self.name, _state(current, events, pid), current.number, max([fork, *curve]),
                         self.settings.epochs, params, curve, events, pending, branches, trials, pid)

    # -- training: this process becomes the run's writer ---------------------------------------------------
    def train(self, make: Callable[[], Trainable], *, until: int | None = None,
              on_epoch: Callable[[RunStatus], None] | None = None, epochs: int | None = None) -> RunStatus:
        """Train in this process until epoch ``until`` (default: the run's ``epochs``), a stop, or divergence,
        applying queued commands at each epoch boundary. Resumes where the run is: in memory if this process
        trained it last, else from the last checkpoint of the current branch. ``epochs`` moves the run's end
        (train a finished run further). ``on_epoch`` gets a light status after each epoch (no history)."""
        from sturgeon.panda.session import Session

        if self._session is None or not self._session.alive:
            self.settings = self._settings(self.store.events(self.study_id))
        if epochs is not None and epochs != self.settings.epochs:
            trained = self.status().epoch
            if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < max(1, trained):
                raise ValueError(f"The 'epochs' parameter must be an integer >= the {trained} epochs the run has "
                                 f"trained. Got {epochs!r} instead.")
            old, self.settings = self.settings.epochs, replace(self.settings, epochs=epochs)
            self._extended = (old, epochs)
        if self._session is None or not self._session.alive:
            self._session = Session(self, make)
        if self._extended is not None:  # recorded by the writer, so every reader sees the new end
            self._session.settings = self.settings
            self._session.extend(*self._extended)
            self._extended = None
        return self._session.train(until=until if until is not None else self.settings.epochs, on_epoch=on_epoch)

    def close(self) -> None:
        """Give up the writer role if this process holds it; a run held between train() calls is recorded
        stopped at its epoch (resume continues it)."""
        if self._session is not None:
            self._session.close()
            self._session = None


def _state(current: TrialRecord, events: list[Event], pid: int | None) -> RunState:
    finished = {TrialState.COMPLETE: RunState.FINISHED, TrialState.PRUNED: RunState.STOPPED,
                TrialState.DIVERGED: RunState.DIVERGED, TrialState.FAILED: RunState.FAILED,
                TrialState.INTERRUPTED: RunState.CRASHED}
    if current.state in finished:
        return finished[current.state]
    if pid is None:
        return RunState.CRASHED
    toggles = [e.kind for e in events if e.kind in (EventKind.PAUSE.value, EventKind.RESUME.value)]
    return RunState.PAUSED if toggles and toggles[-1] == EventKind.PAUSE.value else RunState.RUNNING


def finite_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The numeric metrics of a step, as floats (NaN/inf kept: they mark divergence)."""
    return {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}

