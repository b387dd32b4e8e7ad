"""The training side of a panda run: the one process that writes it.

At each epoch boundary the session (1) applies queued commands in order, (2) lets the babysitter act,
(3) trains one epoch, (4) reports its metrics and (5) hands an exact checkpoint to the writer, whose
helper process puts it on disk.
A set issued while epoch e runs is applied after e: epochs up to e train with the old value, later ones
with the new. Rollbacks, restarts after a crash and babysitter rescues all fork a new branch (a new trial)
from a checkpoint, so the old history is never rewritten.
"""
from __future__ import annotations

import atexit
import dataclasses
import math
import os
import time
import weakref
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from sturgeon.panda.babysitter import ActionKind, Babysitter
from sturgeon.panda.checkpoints import (
    Checkpoint,
    CheckpointWriteError,
    CheckpointWriter,
    Retention,
    checkpoint_path,
    drop_reserve,
    keep_reserve,
    list_checkpoints,
    read_state,
    split_of,
)
from sturgeon.panda.control import CommandKind, EventKind
from sturgeon.panda.lineage import find_checkpoint, lineage_curve
from sturgeon.store import Command, CommandState, Event, StoreError, StoreWriteError
from sturgeon.train import Trainable
from sturgeon.trial import TrialState

if TYPE_CHECKING:
    from sturgeon.panda.run import Run, RunStatus

__all__ = ["Session"]


class _Stop(Exception):
    """Ends the training loop: a stop command, a give-up, or divergence."""


# A write the storage refused: the disk is full, the store read-only. Nothing is wrong with the run itself.
WRITE_ERRORS = (StoreWriteError, CheckpointWriteError)
RESERVE = 256 << 10  # bytes kept on the store's disk while a run trains, given back to record why it stopped


# The live session of each (store, run) in this process: a second handle that trains the run takes over.
_LIVE: dict[tuple[str, int], weakref.ref[Session]] = {}


class Session:
    """Holds the run's trainable in memory between :meth:`train` calls of one process."""

    def __init__(self, run: Run, make: Callable[[], Trainable]) -> None:
        self.run, self.make, self.store, self.sid = run, make, run.store, run.study_id
        self.settings = run.settings
        rules = self.settings.babysitter
        self.babysitter = Babysitter(rules) if rules is not None else None
        self.retention = Retention(self.settings.keep_last, self.settings.keep_every)
        self.writer = CheckpointWriter()
        self.artifacts = self.run.artifacts  # the checkpoint folder, looked up once
        self._folder = os.path.abspath(self.artifacts)  # a string: an epoch's file names without Path objects
        self._reserve = self.artifacts / ".reserve"  # room kept on the disk while it trains (see _keep_reserve)
        self._split: Callable[[], tuple[Any, list[Any]]] | None = None  # the trainable's state_split, if it counts
        self.alive = True
        self.paused = False
        self.trainable: Trainable | None = None  # built by _attach: set up fresh, or loaded from a checkpoint
        self.branch = -1
        self.epoch = 0
        self.params: dict[str, Any] = {}
        self.curve: dict[int, dict[str, float]] = {}
        self.batch: int | None = None  # the mini-batch about to run, while a change is applied inside an epoch
        self._polled = 0.0
        self._seen = -2  # commands_version at the last query (-2: never queried)
        self._kept: dict[int, list[int]] = {}  # checkpoint epochs kept per branch this session writes
        self._gone: list[str] = []  # files retention let go, deleted after the next checkpoint is written
        self._retained: set[int] = set()  # epochs of the current branch already let go
        self._cuts = 0  # the babysitter's divergence rollbacks so far (it gives up after max_cuts)
        self._lr_changed_at = 0  # the epoch α last changed on this branch's line (the plateau rule waits P after)
        key = (str(getattr(self.store, "path", id(self.store))), self.sid)
        older = _LIVE.get(key)
        self._same_process = older is not None and older() is not None and older().alive  # type: ignore[union-attr]
        if older is not None and older() is not None:
            older().close()  # type: ignore[union-attr]  # another handle of this process trained it: this one takes over
        _LIVE[key] = weakref.ref(self)
        # A script that trains with train(until=...) and ends normally leaves the run stopped, not "crashed".
        self._pid = os.getpid()  # a forked child inherits the exit hook: it must not close its parent's run
        atexit.register(self._close_at_exit)
        self.store.claim(self.sid)  # marks a branch a dead process left running as interrupted
        self._keep_reserve()
        try:
            self._attach()
            events = self.store.events(self.sid)
            toggles = [e.kind for e in events if e.kind in (EventKind.PAUSE.value, EventKind.RESUME.value)]
            if toggles and toggles[-1] == EventKind.PAUSE.value:  # paused by a process that is gone
                self._event(EventKind.RESUME, None, None, None, "a new process took the run over", "resume")
            self._seed_counts(events)
        except WRITE_ERRORS as e:
            self._cannot_write(e)
            raise
        except BaseException as e:
            if self.branch >= 0:
                self._finish(self.branch, TrialState.FAILED, None, f"{type(e).__name__}: {e}")
            self.close()
            raise

    # -- starting points -----------------------------------------------------------------------------------
    def _attach(self) -> None:
        """Start the root branch, or continue the run from the last checkpoint of its current branch.

        A run whose process is gone continues as a new branch (a RESTART event says why), unless the first
        queued command is a rollback, which then decides where it continues.
        """
        trials = self.store.trials(self.sid)
        if trials and trials[-1].state is TrialState.RUNNING:  # this very process, with a new session
            self._finish(trials[-1].number, TrialState.INTERRUPTED, None, "its session was replaced")
            trials = self.store.trials(self.sid)
        pending = self.store.commands(self.sid, CommandState.PENDING)
        if not trials or not self._checkpoints():  # never trained, or stopped before its first checkpoint
            self._take_over(pending)
            params = dict(self.run.spec.attrs["params"])
            self._new_branch(None, 0, params)  # first, so that a trainable failing to set up is recorded
            if trials:
                self._event(EventKind.RESTART, None, trials[-1].number, 0, "no checkpoint to resume from: it "
                            "starts over", "resume")
            self._adopt(self.make())
            self.trainable.setup(params)  # type: ignore[union-attr]
            self._checkpoint()
            return
        current = trials[-1]
        branches = self.store.branches(self.sid)
        fork = next((b.step for b in branches if b.trial == current.number), 0)
        self.branch, self.epoch = current.number, max([fork, *current.curve])
        first = next((i for i, c in enumerate(pending) if c.kind == CommandKind.ROLLBACK.value), None)
        if first is not None:  # where the run continues is the rollback's to say; later commands apply after it
            self._apply(pending[first])
            if self.trainable is None:
                refused = next(c for c in self.store.commands(self.sid) if c.id == pending[first].id)
                raise StoreError(f"The rollback #{refused.id} of '{self.run.name}' was refused: {refused.outcome}. "
                                 "Nothing was trained.")
            self._take_over(pending)
            self._catch_up([c for c in pending[:first] if c.kind == CommandKind.SET.value], pending[first])
            return
        ckpt = find_checkpoint(self._checkpoints(), branches, current.number, 10**9, at_most=True)
        if ckpt is None:
            raise StoreError(f"The run '{self.run.name}' has no checkpoint to resume from on branch {current.number}.")
        if current.state is not TrialState.INTERRUPTED and ckpt.step >= self.settings.epochs:
            raise StoreError(f"The run '{self.run.name}' is {current.state.value} at epoch {ckpt.step} of "
                             f"{self.settings.epochs}: give more epochs to train further (sturgeon panda resume "
                             f"{self.run.name} --epochs N; the config file is not read again), or roll back.")
        why = {TrialState.INTERRUPTED: "its process died", TrialState.COMPLETE: "trained further",
               TrialState.PRUNED: "resumed after a stop", TrialState.DIVERGED: "resumed after divergence",
               TrialState.FAILED: "resumed after a failure"}[current.state]
        self._take_over(pending)
        # A stop or a crash comes after the boundary's changes: apply them again. A branch that diverged or
        # failed resumes from its checkpoint as it was: the change after it may be what broke it.
        # A branch stopped by a write the disk refused is like one stopped by a crash: nothing in it broke.
        write_failed = current.state is TrialState.FAILED and any(
            e.trial == current.number and e.kind == EventKind.FAILED.value for e in self.store.events(self.sid))
        crash_like = write_failed or current.state in (TrialState.INTERRUPTED, TrialState.PRUNED)
        again = self._set_after(current.number, ckpt.step) if crash_like else {}
        self._fork(ckpt.trial, ckpt.step, again, EventKind.RESTART, f"{why}; continues from epoch {ckpt.step}",
                   "resume")

    def _set_after(self, branch: int, step: int) -> dict[str, Any]:
        """The values set on ``branch`` at the boundary after epoch ``step`` (the last of each), after that
        epoch's checkpoint was written: a restart from it applies them again, so a stop or a crash at the
        boundary does not lose a change the run acknowledged."""
        return {e.param: e.new for e in self.store.events(self.sid)
                if e.trial == branch and e.step == step and e.kind == EventKind.SET.value and e.param is not None}

    def _take_over(self, pending: list[Command]) -> None:
        """Another process trained the run before: a pause, resume or stop queued for it (and not applied: it
        is gone, or it had already stopped) is marked superseded rather than acted on now. Sets and rollbacks
        stay queued: they are for the run, whoever trains it. A handle of this same process taking over
        (Run.open(...).train() after train(until=...)) keeps them: they were meant for it."""
        if self._same_process:
            return
        for cmd in pending:
            if cmd.kind in (CommandKind.PAUSE.value, CommandKind.RESUME.value, CommandKind.STOP.value):
                self.store.finish_command(self.sid, cmd.id, CommandState.REFUSED, "superseded: it was meant for "
                                          "the process that trained the run before this one")

    def _catch_up(self, earlier: list[Command], rollback: Command) -> None:
        """The sets queued before the rollback that restarted a run whose process was gone: meant for the run
        as it resumes, they apply now, in order, but not to a parameter the rollback (queued after them)
        sets too: the later command wins."""
        later = set(rollback.args.get("params") or {})
        for cmd in earlier:
            params = cmd.args.get("params", {})
            kept = {k: v for k, v in params.items() if k not in later}
            if kept:
                self._apply(dataclasses.replace(cmd, args={**cmd.args, "params": kept}))
            else:
                self.store.finish_command(self.sid, cmd.id, CommandState.REFUSED, f"superseded: rollback "
                                          f"#{rollback.id}, queued after it, sets {', '.join(params)}")

    def _seed_counts(self, events: list[Event]) -> None:
        """The babysitter's cuts so far, from the run's events: they count across branches, and a restart right
        after a rescue (before the rescued branch's first checkpoint) applies that cut again, so the count must
        include it. Where α last changed comes with the checkpoint (see :meth:`_fork`)."""
        if self.babysitter is not None:
            self._cuts = sum(e.kind == EventKind.ROLLBACK.value and e.source == "babysitter" for e in events)

    def _new_branch(self, parent: int | None, step: int, params: dict[str, Any]) -> None:
        self._retained = set()
        self.branch = len(self.store.trials(self.sid))
        self.store.add_trial(self.sid, self.branch, params, time.time())
        self.store.add_branch(self.sid, self.branch, parent, step)
        self.params, self.epoch = dict(params), step

    def _fork(self, owner: int, step: int, changes: Mapping[str, Any], kind: EventKind, reason: str,
              source: str) -> None:
        """Load ``owner``'s checkpoint at ``step`` into a fresh trainable and continue as a new branch, a child
        of ``owner`` in the tree: the rollback or restart event names it as where the branch comes from (not
        the branch left, which may be another one: a rollback to a checkpoint of branch 0 from branch 1)."""
        self.writer.flush()
        saved = read_state(self.artifacts / checkpoint_path(owner, step))
        changes = {k: v for k, v in changes.items() if saved["params"].get(k) != v}  # a change changes something
        trainable = self.make()
        trainable.load(saved["trainable"])
        if changes:
            trainable.update(dict(changes))  # raises before anything is recorded if the trainable refuses
        self._adopt(trainable)
        self._hook()
        old_params = dict(saved["params"])
        # The events read against the branch being left, as a person saw it: its values, where this process
        # had them (a new process restarting the run knows only the checkpoint's).
        running = dict(self.params) or old_params
        self._new_branch(owner, step, {**old_params, **changes})
        # The plateau rule counts epochs since α last changed on the line. A rollback starts that count at its
        # fork; a restart continues the count the checkpoint holds, as if the process had never died (a
        # checkpoint from before this was kept falls back to the fork). A change applied again below moves it.
        kept = (saved.get("babysitter") or {}).get("lr_changed_at")
        self._lr_changed_at = int(kept) if kind is EventKind.RESTART and isinstance(kept, int) else step
        self.curve = {e: m for e, m in self._line_curve().items() if e <= step}
        self._event(kind, None, owner, step, reason, source)
        for name, value in changes.items():
            self._event(EventKind.SET, name, running.get(name, old_params.get(name)), value, reason, source)
        for name, value in old_params.items():  # what going back undid: a change made after that checkpoint
            if name not in changes and name in running and running[name] != value:
                self._event(EventKind.SET, name, running[name], value, f"restored: {kind.value} to epoch {step}",
                            source)

    def _adopt(self, trainable: Trainable) -> None:
        """Train this trainable from now on, checkpointing it through its fast path if it has one that
        stands for its ``save()``."""
        self.trainable, self._split = trainable, split_of(trainable)

    def _line_curve(self) -> dict[int, dict[str, float]]:
        trials = self.store.trials(self.sid)
        return lineage_curve({t.number: t.curve for t in trials}, self.store.branches(self.sid), self.branch)

    # -- the loop ------------------------------------------------------------------------------------------
    def train(self, until: int, on_epoch: Callable[[RunStatus], None] | None) -> RunStatus:
        try:
            self._hook()
            if self.paused:  # a previous train(until=...) returned early: this call resumes it
                self._event(EventKind.RESUME, None, None, None, "train() called again", "api")
                self.paused = False
            while True:
                self._apply_commands()  # 1)
                self._retain()
                if self.epoch >= min(until, self.settings.epochs):
                    break
                self._warmup()  # 2) (the other babysitter rules act after an epoch, below)
                metrics = {k: float(v) for k, v in self.trainable.step().items()  # type: ignore[union-attr]  # 3)
                           if isinstance(v, (int, float)) and not isinstance(v, bool)}
                self.epoch += 1
                self.store.add_report(self.sid, self.branch, self.epoch, metrics)  # 4)
                self.curve[self.epoch] = metrics
                if self._after_epoch(metrics):
                    continue  # rolled back: no checkpoint of the bad epoch
                self._checkpoint()  # 5)
                if on_epoch is not None:
                    on_epoch(self._light_status())
            self.writer.flush()  # the last checkpoint is on disk before the branch counts as finished (or held)
            if self.epoch >= self.settings.epochs:
                self._finish(self.branch, TrialState.COMPLETE, self._value(), None)
            else:  # the caller asked for fewer epochs: hold the run, paused, until train() is called again
                self.paused = True
                self._event(EventKind.PAUSE, None, None, None, f"train() returned at epoch {self.epoch}", "api")
        except _Stop:
            self.close()
            return self.run.status()
        except KeyboardInterrupt:
            self._finish(self.branch, TrialState.INTERRUPTED, None,
                         f"interrupted (Ctrl-C) during epoch {self.epoch + 1}")
            self.close()
            raise
        except WRITE_ERRORS as e:
            self._cannot_write(e)
            raise
        except BaseException as e:
            self._finish(self.branch, TrialState.FAILED, None, f"{type(e).__name__}: {e}")
            self.close()
            raise
        if not self.paused:
            self.close()
        return self.run.status()

    def _keep_reserve(self) -> None:
        """Keep a little room on the store's disk while the run trains (see ``keep_reserve``)."""
        keep_reserve(self._reserve, RESERVE)

    def _drop_reserve(self) -> None:
        drop_reserve(self._reserve)

    def _cannot_write(self, e: Exception) -> None:
        """A write the storage refused (the disk is full, the store read-only) ends the run here: the branch
        is recorded failed with why, and a resume, once the disk has room, continues it exactly (changes made
        at the last boundary are applied again, as after a crash). The reserve goes first: on a full disk it
        is the room those records need. A checkpoint still on its way is whole or gone, never half."""
        self._drop_reserve()
        try:
            self.writer.flush()
        except Exception:  # noqa: BLE001 - the same full disk, most likely: the first error is the one to tell
            pass
        try:  # the branch this session trains, if its trial could be stored at all
            open_ = [t for t in self.store.trials(self.sid) if t.number == self.branch and not t.state.finished]
        except StoreError:
            open_ = []
        if open_:
            try:
                self._event(EventKind.FAILED, None, None, None, str(e), "run")
            except StoreError:
                pass  # not even the reserve's room sufficed: the trial's error below is the last try
            self._finish(self.branch, TrialState.FAILED, None, str(e))
        try:
            self.close()
        except Exception:  # noqa: BLE001 - closing writes too; the error to raise is the one that stopped the run
            self.alive = False

    def extend(self, old: int, new: int) -> None:
        """Record that the run's end moved, so that other processes (and a resume after a crash) see it."""
        self._event(EventKind.EXTEND, None, old, new, f"train to epoch {new}", "api")

    def _hook(self) -> None:
        """With ``apply = "step"``, have the trainable call back between mini-batches."""
        from sturgeon.panda.run import Boundary

        if self.settings.apply is Boundary.STEP:
            if not hasattr(self.trainable, "batch_hook"):
                raise ValueError(f"apply = 'step' needs a trainable with a batch_hook attribute (the built-in "
                                 f"trainer has one); {type(self.trainable).__name__} has none.")
            self.trainable.batch_hook = self._between_batches  # type: ignore[union-attr]

    def _between_batches(self, batch: int) -> None:
        """Apply queued sets inside an epoch, polling at most every ``poll_seconds``; other commands wait
        for the epoch boundary (a rollback or a pause needs a checkpoint to stand on)."""
        now = time.monotonic()
        if now - self._polled < self.settings.poll_seconds:
            return
        self._polled = now
        self.batch = batch
        try:
            pending = self._pending()
            for cmd in pending:
                if cmd.kind != CommandKind.SET.value:
                    self._seen = -2  # the rest waits for the epoch boundary, which must query again
                    break  # later sets wait behind it: the order of commands is kept
                self._apply(cmd)
        finally:
            self.batch = None

    def _after_epoch(self, metrics: Mapping[str, float]) -> bool:
        """Divergence and plateau rules; True when the run was rolled back."""
        if self.babysitter is None:
            bad = next(((k, v) for k, v in metrics.items() if not math.isfinite(v)), None)
            if bad is not None:
                self._diverged(f"{bad[0]} became {bad[1]} at epoch {self.epoch}")
            return False
        action = self.babysitter.after_epoch(self.epoch, self.curve, self.params, cuts=self._cuts,
                                             lr_changed_at=self._lr_changed_at)
        if action is None:
            return False
        if action.kind is ActionKind.GIVE_UP:
            self._diverged(action.reason)
        changes = self._within_space(action.changes)
        if action.kind is ActionKind.SET:
            if changes:
                self._set(changes, action.reason, "babysitter")
            return False
        if not changes:  # α already at the bottom of its range: no cut is left to try
            self._diverged(f"{action.reason}, but {', '.join(action.changes)} is already at the bottom of its range")
        self.writer.flush()  # the checkpoint to go back to may still be on its way to the disk
        branches = self.store.branches(self.sid)
        ckpt = find_checkpoint(self._checkpoints(), branches, self.branch, action.to or 0, at_most=True)
        if ckpt is None:
            self._diverged(f"{action.reason}, but no checkpoint is left to roll back to")
        came_from, diverged_at = self.branch, self.epoch
        self._cuts += 1
        self._fork(ckpt.trial, ckpt.step, changes, EventKind.ROLLBACK, action.reason, "babysitter")  # type: ignore[union-attr]
        self._finish(came_from, TrialState.PRUNED, None, f"diverged at epoch {diverged_at}; rolled back")
        return True

    def _within_space(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        """The babysitter's changes clipped to the run's space (it never sets what a person could not), without
        those that would change nothing: a plateau at the bottom of α's range stops decaying it."""
        out = {}
        for name, value in changes.items():
            p = self.run.space.params.get(name)
            lo, hi = getattr(p, "lo", None), getattr(p, "hi", None)
            if isinstance(value, float) and lo is not None and hi is not None:
                value = min(max(value, float(lo)), float(hi))
            if value != self.params.get(name):
                out[name] = value
        return out

    def _warmup(self) -> None:
        if self.babysitter is None or not self.babysitter.rules.warmup_epochs:
            return
        name, k = self.babysitter.rules.lr_param, self.epoch + 1
        target = self.run.spec.attrs["params"].get(name)
        if not isinstance(target, (int, float)):
            return
        # Ramp only while α is what the ramp left it at: a person's set or a divergence cut ends the warm-up.
        before = float(target) if k == 1 else self.babysitter.warmup_lr(k - 1, float(target))
        lr = self.babysitter.warmup_lr(k, float(target)) if self.params.get(name) == before else None
        if lr is not None and lr != self.params.get(name):
            self._set({name: lr}, f"warm-up: epoch {self.epoch + 1} of {self.babysitter.rules.warmup_epochs}",
                      "babysitter")

    # -- commands ------------------------------------------------------------------------------------------
    def _pending(self) -> list[Command]:
        """Queued commands; a query only when the store's command signal moved since the last one."""
        version = self.store.commands_version(self.sid)
        if version != -1 and version == self._seen:
            return []
        self._seen = version  # read before the query: a command added meanwhile moves it again
        return self.store.commands(self.sid, CommandState.PENDING)

    def _apply_commands(self) -> None:
        while True:
            for cmd in self._pending():
                self._apply(cmd)
            if not self.paused or not self.alive:
                return
            time.sleep(self.settings.poll_seconds)

    def _apply(self, cmd: Command) -> None:
        kind, args = cmd.kind, cmd.args
        try:
            if kind == CommandKind.SET.value:
                self._set(self.run.check(args.get("params", {})), args.get("reason", ""), cmd.source)
            elif kind == CommandKind.ROLLBACK.value:
                changes = self.run.check(args["params"]) if args.get("params") else {}
                self.writer.flush()
                branches = self.store.branches(self.sid)
                ckpt = find_checkpoint(self._checkpoints(), branches, args.get("branch", self.branch),
                                       int(args["to"]))
                if ckpt is None:
                    raise StoreError(f"no checkpoint at epoch {args['to']} on branch {args.get('branch')}")
                came_from = self.branch
                reason = args.get("reason") or f"rolled back from epoch {self.epoch} to {ckpt.step}"
                self._fork(ckpt.trial, ckpt.step, changes, EventKind.ROLLBACK, reason, cmd.source)
                self._finish(came_from, TrialState.PRUNED, None, f"abandoned: rolled back to epoch {ckpt.step} "
                             f"(branch {self.branch})")
            elif kind == CommandKind.PAUSE.value:
                if not self.paused:
                    self.writer.flush()
                    self.paused = True
                    self._event(EventKind.PAUSE, None, None, None, "", cmd.source)
            elif kind == CommandKind.RESUME.value:
                if self.paused:
                    self.paused = False
                    self._event(EventKind.RESUME, None, None, None, "", cmd.source)
            elif kind == CommandKind.STOP.value:
                self.store.finish_command(self.sid, cmd.id, CommandState.APPLIED, f"stopped at epoch {self.epoch}")
                self._event(EventKind.STOP, None, None, None, f"stopped at epoch {self.epoch}", cmd.source)
                self._finish(self.branch, TrialState.PRUNED, self._value(), f"stopped at epoch {self.epoch}")
                raise _Stop
            else:
                raise ValueError(f"unknown command kind {kind!r}")
        except (_Stop, *WRITE_ERRORS):
            raise  # a stop, or the disk refusing a write: the run stops, the command was not the problem
        except Exception as e:  # noqa: BLE001 - any failure refuses the command, which is never retried
            self.store.finish_command(self.sid, cmd.id, CommandState.REFUSED, str(e) or type(e).__name__)
            return
        where = f"at epoch {self.epoch}" + ("" if self.batch is None else f", before mini-batch {self.batch} of epoch "
                                                                          f"{self.epoch + 1}")
        self.store.finish_command(self.sid, cmd.id, CommandState.APPLIED, where)

    def _set(self, changes: Mapping[str, Any], reason: str, source: str) -> None:
        self.trainable.update(dict(changes))  # type: ignore[union-attr]  # the trainable's own checks; raises before anything changes
        for name, value in changes.items():
            old = self.params.get(name)
            self.params[name] = value
            self._event(EventKind.SET, name, old, value, reason, source)

    # -- records -------------------------------------------------------------------------------------------
    def _event(self, kind: EventKind, param: str | None, old: Any, new: Any, reason: str, source: str) -> None:
        if self.babysitter is not None and kind is EventKind.SET and param == self.babysitter.rules.lr_param:
            self._lr_changed_at = self.epoch
        self.store.add_event(self.sid, Event(self.branch, self.epoch, kind.value, param, old, new, reason, source,
                                             time.time(), self.batch))

    def _checkpoint(self) -> None:
        """Hand this epoch's exact state to the writer, which copies it at once: a trainable offering
        ``state_split()`` (the built-in trainer does) lends its live tensors rather than copying them first."""
        branch, epoch = self.branch, self.epoch
        assert self.trainable is not None
        path = f"{self._folder}/{checkpoint_path(branch, epoch)}"
        # The babysitter's own state goes with the trainable's: a restart from this file continues its plateau
        # count exactly (its cuts are counted from the events, its best values read from the curve).
        extra = {} if self.babysitter is None else {"babysitter": {"lr_changed_at": self._lr_changed_at}}
        if self._split is not None:
            skeleton, tensors = self._split()
            state = {"trainable": skeleton, "params": dict(self.params), "epoch": epoch, "branch": branch, **extra}
            self.writer.submit_split(state, tensors, path, remove=self._gone)
        else:
            state = {"trainable": self.trainable.save(), "params": dict(self.params), "epoch": epoch, "branch": branch,
                     **extra}
            self.writer.submit(state, path, remove=self._gone)
        self._gone = []
        self._kept.setdefault(branch, []).append(epoch)

    def _retain(self) -> None:
        """Retention for the current branch's files, at the boundary after queued commands were applied (so
        a rollback queued while an epoch ran still finds its checkpoint). Epochs are added in order, so only
        the one that just left the last ``keep_last`` can go: O(1) per epoch."""
        steps = self._kept.get(self.branch, [])
        if len(steps) <= self.retention.keep_last:
            return
        leaving = steps[-self.retention.keep_last - 1]
        every = self.retention.keep_every
        if leaving != 0 and not (every and leaving % every == 0) and leaving not in self._retained:
            self._retained.add(leaving)  # deleted with the next checkpoint's job (one message to the copier)
            self._gone.append(f"{self._folder}/{checkpoint_path(self.branch, leaving)}")

    def _checkpoints(self) -> list[Checkpoint]:
        return list_checkpoints(self.artifacts)

    def _value(self) -> float | None:
        v = self.curve.get(self.epoch, {}).get(self.settings.metric)
        return v if v is not None and math.isfinite(v) else None

    def _finish(self, branch: int, state: TrialState, value: float | None, error: str | None) -> None:
        try:
            self.store.finish_trial(self.sid, branch, state, value, error, time.time())
        except StoreError:
            pass  # already finished (a rollback abandoned it)

    def _diverged(self, reason: str) -> None:
        self._event(EventKind.DIVERGED, None, None, None, reason, "babysitter" if self.babysitter else "run")
        self._finish(self.branch, TrialState.DIVERGED, None, reason)
        raise _Stop

    def _light_status(self) -> RunStatus:
        from sturgeon.panda.run import RunState, RunStatus

        return RunStatus(self.run.name, RunState.RUNNING, self.branch, self.epoch, self.settings.epochs,
                         dict(self.params), {self.epoch: self.curve[self.epoch]}, [], [], [])

    def _close_at_exit(self) -> None:
        if os.getpid() != self._pid:
            return
        try:
            self.close()
        except Exception:  # noqa: BLE001 - the interpreter is ending: a store already gone is not worth a traceback
            pass

    def close(self) -> None:
        """Stop being the run's writer. A branch still open here (held between train() calls, or taken over by
        another handle) is recorded stopped at its epoch, so any process can resume it."""
        if not self.alive:
            return
        self.alive = False
        atexit.unregister(self._close_at_exit)
        try:
            self._drop_reserve()
            self.writer.remove(self._gone)
            self.writer.close()
            live = [t for t in self.store.trials(self.sid) if t.number == self.branch and not t.state.finished]
            if live:
                self._event(EventKind.STOP, None, None, None, f"closed at epoch {self.epoch}", "api")
                self._finish(self.branch, TrialState.PRUNED, self._value(), f"closed at epoch {self.epoch}")
        finally:
            self.store.release(self.sid)
