"""A study: ask for a trial, run it, tell its result — durably, with the sampler and scheduler in their roles.

>>> from sturgeon import Study, Space, Float
>>> study = Study(space=Space(x=Float(-5, 5)), metric="loss", sampler={"type": "random", "seed": 0})
>>> study.optimize(lambda t: (t["x"] - 1.0) ** 2, n_trials=50)
>>> abs(study.best.params["x"] - 1.0) < 0.3
True
"""
from __future__ import annotations

import math
import threading
import time
import traceback
import weakref
from dataclasses import replace
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from pathlib import Path
from typing import Any

from sturgeon.executors import make_executor
from sturgeon.samplers import Sampler, SamplerExhausted, sampler_from_dict
from sturgeon.schedulers import Decision, Scheduler, scheduler_from_dict
from sturgeon.space import Space
from sturgeon.store import Event, SQLiteStore, Store, StoreError, StudySpec
from sturgeon.trial import Direction, Trial, TrialPruned, TrialRecord, TrialState, value_of

__all__ = ["Study", "StudyError"]

Objective = Callable[[Trial], Any]
Callback = Callable[["Study", TrialRecord], None]


class StudyError(RuntimeError):
    """The study cannot go on (e.g. every recent trial failed); the message says why."""


def _open_store(store: Store | str | Path | None, readonly: bool = False) -> Store:
    if store is None:
        return SQLiteStore(":memory:")
    if isinstance(store, Store):
        return store
    return SQLiteStore(store, readonly=readonly)


# The live writer object of each (store, study) in this process: a newer Study object for the same study
# supersedes an older one (a notebook re-running `study = Study.load(...)`), which then refuses to write.
_WRITERS: dict[tuple[str, int], weakref.ref[Study]] = {}


def _store_key(store: Store) -> str:
    path = getattr(store, "path", None)
    return str(Path(path).resolve()) if path and path != ":memory:" else f"object:{id(store)}"


def _direction(direction: str | Direction) -> Direction:
    try:
        return Direction(direction)
    except ValueError:
        raise ValueError(f"The 'direction' parameter must be one of minimize, maximize. Got {direction!r} instead.") from None


class Study:
    """Trials of one search space, one objective metric and direction, one sampler — stored durably.

    ``store`` is a path to an SQLite file (created if needed), a ``Store``, or None for memory only.
    ``sampler`` and ``scheduler`` are objects or their dict descriptions (``{"type": "sobol", "seed": 1}``).
    The study's process is the only writer of its trials; opening a study whose writer died marks the
    trials it left running as INTERRUPTED.
    """

    def __init__(
        self,
        name: str | None = None,
        space: Space | Mapping[str, Any] | None = None,
        *,
        metric: str = "value",
        direction: str | Direction = "minimize",
        sampler: Sampler | Mapping[str, Any] | None = None,
        scheduler: Scheduler | Mapping[str, Any] | None = None,
        store: Store | str | Path | None = None,
        attrs: Mapping[str, Any] | None = None,
        load_if_exists: bool = False,
        max_failures_in_a_row: int = 10,
    ) -> None:
        if space is None:
            raise ValueError("The 'space' parameter is required. Got None instead.")
        self.space = space if isinstance(space, Space) else Space.from_dict(space)
        if not isinstance(metric, str) or not metric:
            raise ValueError(f"The 'metric' parameter must be a non-empty name. Got {metric!r} instead.")
        self.metric = metric
        self.direction = _direction(direction)
        self.sampler = sampler if isinstance(sampler, Sampler) else sampler_from_dict(sampler)
        self.scheduler = scheduler if isinstance(scheduler, Scheduler) else scheduler_from_dict(scheduler)
        self.store = _open_store(store)
        self.name = name or time.strftime("study-%Y%m%d-%H%M%S")
        self.max_failures_in_a_row = max_failures_in_a_row
        self.interrupted_on_open = 0
        self._lock = threading.RLock()
        spec = StudySpec(
            name=self.name, space=self.space.to_dict(), metric=metric, direction=self.direction.value,
            sampler=self.sampler.to_dict(), scheduler=self.scheduler.to_dict(), attrs=dict(attrs or {}),
        )
        found = self.store.study_spec(self.name)
        if found is not None and not load_if_exists:
            raise StoreError(
                f"A study named '{self.name}' already exists in '{getattr(self.store, 'path', 'the store')}'; "
                "pass load_if_exists=True (or use Study.load) to resume it."
            )
        if found is not None:
            self._id, stored = found
            if stored.space != spec.space or stored.metric != metric or stored.direction != spec.direction:
                raise StoreError(
                    f"The study '{self.name}' exists with another space, metric or direction; "
                    "resume it with Study.load or choose another name."
                )
            self.attrs = stored.attrs
        else:
            self._id = self.store.create_study(spec)
            self.attrs = spec.attrs
        self.readonly = bool(getattr(self.store, "readonly", False))
        self._superseded = False
        if not self.readonly:
            self.interrupted_on_open = self.store.claim(self._id)
            key = (_store_key(self.store), self._id)
            older = _WRITERS.get(key)
            if older is not None and older() is not None:
                older()._superseded = True  # type: ignore[union-attr]
            _WRITERS[key] = weakref.ref(self)
        self._records: list[TrialRecord] = self.store.trials(self._id)
        self._live: dict[int, Trial] = {}
        self._failures_in_a_row = 0
        self._best: TrialRecord | None = None  # kept up to date by tell(), so progress callbacks stay O(1)

    @classmethod
    def load(cls, name: str, store: Store | str | Path, *, readonly: bool = False) -> Study:
        """Reopen a stored study; its sampler continues the same sequence. ``readonly`` never claims it."""
        st = _open_store(store, readonly=readonly)
        found = st.study_spec(name)
        if found is None:
            names = ", ".join(s.name for s in st.studies()) or "none"
            raise StoreError(f"No study named '{name}' in '{getattr(st, 'path', 'the store')}' (studies: {names}).")
        spec = found[1]
        return cls(name, Space.from_dict(spec.space), metric=spec.metric, direction=spec.direction,
                   sampler=spec.sampler, scheduler=spec.scheduler, store=st, load_if_exists=True)

    # -- reading -------------------------------------------------------------------------------------------
    @property
    def trials(self) -> list[TrialRecord]:
        """All trials so far, in number order (re-read from the store when the study is read-only)."""
        if self.readonly:
            self._records = self.store.trials(self._id)
        with self._lock:
            return list(self._records)

    @property
    def best(self) -> TrialRecord | None:
        """The complete trial with the best value (the lowest number among ties), or None."""
        if self.readonly or self._best is None:
            self._best = self._scan_best(self.trials)
        return self._best

    def _scan_best(self, trials: Sequence[TrialRecord]) -> TrialRecord | None:
        best: TrialRecord | None = None
        for t in trials:
            if t.state is TrialState.COMPLETE and t.value is not None:
                if best is None or self.direction.better(t.value, best.value):  # type: ignore[arg-type]
                    best = t
        return best

    def record_event(self, trial: int, step: int, kind: str, *, param: str | None = None, old: Any = None,
                     new: Any = None, reason: str = "", source: str = "user") -> None:
        """Append a change to the study's event log (a stop, a set, a rollback...): it replays the history."""
        self._check_writable()
        with self._lock:
            self.store.add_event(self._id, Event(trial, step, kind, param, old, new, reason, source, time.time()))

    def events(self, trial: int | None = None) -> list[Event]:
        return self.store.events(self._id, trial)

    def leaderboard(self, n: int = 10) -> list[TrialRecord]:
        done = [t for t in self.trials if t.state is TrialState.COMPLETE and t.value is not None]
        sign = self.direction.sign()
        return sorted(done, key=lambda t: (sign * t.value, t.number))[:n]  # type: ignore[operator]

    # -- ask / tell ----------------------------------------------------------------------------------------
    def _check_writable(self) -> None:
        if self.readonly:
            raise StoreError(f"The study '{self.name}' was opened read-only.")
        if self._superseded:
            raise StoreError(
                f"This Study object for '{self.name}' was superseded by a newer one opened in this process; use that one."
            )

    def ask(self, params: Mapping[str, Any] | None = None) -> Trial:
        """Start a trial: the sampler's params, or ``params`` given by hand (checked against the space)."""
        self._check_writable()
        with self._lock:
            number = len(self._records)
            if params is None:
                values = self.sampler.sample(self.space, number, self._records, self.direction)
            else:
                values = self.space.validate(params)
            trial = Trial(number, values, self._on_report)
            self.store.add_trial(self._id, number, values, trial.started_at)
            self._records.append(TrialRecord(number, values, TrialState.RUNNING, started_at=trial.started_at))
            self._live[number] = trial
            return trial

    def _on_report(self, trial: Trial, step: int, metrics: dict[str, float]) -> Decision:
        with self._lock:
            if trial.number not in self._live:  # finished already (e.g. interrupted): record nothing more
                return Decision.STOP
            self.store.add_report(self._id, trial.number, step, trial.curve[step])
            # a fresh frozen snapshot: readers never see a curve that a worker thread is still changing
            rec = replace(self._records[trial.number], curve=dict(trial.curve))
            self._records[trial.number] = rec
            decision = self.scheduler.on_report(rec, step, metrics, self._records)
            if decision is Decision.STOP and not trial.should_stop:
                self.store.add_event(self._id, Event(trial.number, step, "stop", reason=type(self.scheduler).__name__,
                                                     source="scheduler", at=time.time()))
            return decision

    def tell(
        self,
        trial: Trial | int,
        value: float | None = None,
        *,
        state: TrialState = TrialState.COMPLETE,
        error: str | None = None,
    ) -> TrialRecord:
        """Finish a trial. A non-finite value makes it FAILED; PRUNED without a value takes the last report."""
        self._check_writable()
        number = trial if isinstance(trial, int) else trial.number
        with self._lock:
            live = self._live.pop(number, None)
            if live is None:
                raise StoreError(f"Trial {number} is not running in study '{self.name}', so it cannot be told.")
            if state is TrialState.PRUNED and value is None:
                value = self._records[number].last(self.metric)
            if state is TrialState.COMPLETE and (value is None or not math.isfinite(value)):
                state, error, value = TrialState.FAILED, error or f"the objective value is {value}", None
            finished_at = time.time()
            self.store.finish_trial(self._id, number, state, value, error, finished_at)
            rec = TrialRecord(number, live.params, state, value, dict(live.curve), error, live.started_at, finished_at)
            self._records[number] = rec
            if state is TrialState.COMPLETE and self._best is not None and self.direction.better(value, self._best.value):  # type: ignore[arg-type]
                self._best = rec
            self._failures_in_a_row = self._failures_in_a_row + 1 if state is TrialState.FAILED else 0
            return rec

    # -- optimize ------------------------------------------------------------------------------------------
    def _run(self, objective: Objective, trial: Trial, catch: tuple[type[BaseException], ...]) -> tuple[TrialState, float | None, str | None]:
        """Run one objective call in a worker; returns what to tell. Never writes to the store itself."""
        try:
            result = objective(trial)
        except TrialPruned:
            return TrialState.PRUNED, None, None
        except catch as e:
            last = traceback.extract_tb(e.__traceback__)[-1]
            return TrialState.FAILED, None, f"{type(e).__name__}: {e} (at {Path(last.filename).name}:{last.lineno})"
        try:
            value = value_of(result, self.metric, trial)
        except ValueError as e:
            return TrialState.FAILED, None, str(e)
        return (TrialState.PRUNED if trial.should_stop else TrialState.COMPLETE), value, None

    def optimize(
        self,
        objective: Objective,
        n_trials: int,
        *,
        n_jobs: int = 1,
        timeout: float | None = None,
        callbacks: Iterable[Callback] = (),
        catch: tuple[type[BaseException], ...] = (Exception,),
    ) -> None:
        """Run ``n_trials`` more trials (fewer if the sampler is exhausted or ``timeout`` seconds pass).

        A trial whose objective raises is FAILED and the search goes on; ``max_failures_in_a_row`` failures in
        a row stop it with StudyError. Ctrl-C marks the trials in flight INTERRUPTED, asks their objectives to
        stop at their next report, and re-raises at once.
        """
        if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 0:
            raise ValueError(f"The 'n_trials' parameter must be an integer >= 0. Got {n_trials!r} instead.")
        executor = make_executor(n_jobs)
        callbacks = list(callbacks)
        deadline = None if timeout is None else time.monotonic() + timeout
        in_flight: dict[Future[Any], Trial] = {}
        mine: list[Trial] = []  # every trial this call started, to mark those left unfinished on an exception
        asked = 0
        clean_exit = False
        try:
            while True:
                # 1) keep n_jobs objectives in flight while trials remain, time allows and the sampler is ready
                #    (a coarse-to-fine round waits for the previous one: parallel runs stay reproducible)
                while (asked < n_trials and len(in_flight) < n_jobs
                       and (deadline is None or time.monotonic() < deadline)
                       and self.sampler.ready(len(self._records), self._records)):
                    try:
                        trial = self.ask()
                    except SamplerExhausted:
                        n_trials = asked
                        break
                    asked += 1
                    mine.append(trial)
                    in_flight[executor.submit(self._run, objective, trial, catch)] = trial
                if not in_flight:
                    clean_exit = True
                    return
                # 2) tell each finished one (the coordinator is the store's only writer)
                done, _ = wait(list(in_flight), return_when=FIRST_COMPLETED)
                for future in done:
                    trial = in_flight.pop(future)
                    state, value, error = future.result()
                    rec = self.tell(trial, value, state=state, error=error)
                    for cb in callbacks:
                        cb(self, rec)
                # 3) a run of failures means the objective itself is broken: stop instead of burning the budget
                if self.max_failures_in_a_row and self._failures_in_a_row >= self.max_failures_in_a_row:
                    raise StudyError(
                        f"{self._failures_in_a_row} trials failed in a row; the last error: {rec.error}"
                    )
        except BaseException:
            for future in in_flight:
                future.cancel()
            for trial in mine:
                if trial.number in self._live:
                    trial.stop()  # the objective ends at its next report instead of training on unseen
                    self.tell(trial, state=TrialState.INTERRUPTED, error="interrupted before it finished")
            raise
        finally:
            # on an exception, do not wait for objectives still running: they were told to stop
            executor.shutdown(wait=clean_exit, cancel_futures=True)

    def close(self) -> None:
        """Stop being the study's writer (other processes may then resume it)."""
        if not self.readonly and not self._superseded:
            self.store.release(self._id)

    def __enter__(self) -> Study:
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Study(name={self.name!r}, metric={self.metric!r}, direction={self.direction.value!r}, trials={len(self._records)})"
