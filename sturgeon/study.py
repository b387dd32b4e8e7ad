"""A study: ask for a trial, run it, tell its result — durably, with the sampler and scheduler in their roles.

>>> from sturgeon import Study, Space, Float
>>> study = Study(space=Space(x=Float(-5, 5)), metric="loss", sampler={"type": "random", "seed": 0})
>>> study.optimize(lambda t: (t["x"] - 1.0) ** 2, n_trials=50)
>>> abs(study.best.params["x"] - 1.0) < 0.3
True
"""
from __future__ import annotations

import json
import math
import threading
import time
import traceback
import warnings
import weakref
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import replace
from pathlib import Path
from typing import Any

from sturgeon.draws import RETRY, Draws, retry_states
from sturgeon.executors import make_executor
from sturgeon.samplers import Sampler, SamplerExhausted, sampler_from_dict
from sturgeon.schedulers import Decision, Scheduler, scheduler_from_dict
from sturgeon.space import Space
from sturgeon.store import Event, SQLiteStore, Store, StoreError, StoreWriteError, StudySpec
from sturgeon.trial import Direction, Trial, TrialPruned, TrialRecord, TrialState, value_of

__all__ = ["Study", "StudyError", "FailedTrialsWarning", "IgnoredStopWarning"]

Objective = Callable[[Trial], Any]
# what a worker returns for one objective call: the state, value and error to tell, and an exception to re-raise
_Outcome = tuple[TrialState, "float | None", "str | None", "BaseException | None"]
Callback = Callable[["Study", TrialRecord], None]


class StudyError(RuntimeError):
    """The study cannot go on (e.g. every recent trial failed); the message says why."""


class FailedTrialsWarning(UserWarning):
    """Some trials of an ``optimize`` call failed (their objective raised or returned no number); each is
    recorded FAILED with its error, and the search went on. ``catch=()`` re-raises instead."""


class IgnoredStopWarning(UserWarning):
    """An objective went on training after the scheduler stopped its trial (it never checks
    ``trial.should_stop``): the trial is PRUNED all the same, and the compute after the stop was spent for
    nothing."""


RAN_ON = "ran on after the scheduler's stop"  # how a pruned trial's note starts when it trained on

_NOT_COUNTED = (TrialState.INTERRUPTED,)


def _changes(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = "") -> list[str]:
    """What differs between two nested settings, one phrase per key: "data.name was 'a' and is now 'b'".

    >>> _changes({"data": {"name": "a", "seed": 0}}, {"data": {"name": "b", "seed": 0}})
    ["data.name was 'a' and is now 'b'"]
    """
    missing = object()
    out = []
    for key in sorted(set(old) | set(new)):
        x, y = old.get(key, missing), new.get(key, missing)
        if isinstance(x, Mapping) and isinstance(y, Mapping):
            out += _changes(x, y, f"{prefix}{key}.")
        elif x != y:
            was = "unset" if x is missing else repr(x)
            now = "unset" if y is missing else repr(y)
            out.append(f"{prefix}{key} was {was} and is now {now}")
    return out


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
        raise ValueError(
            f"The 'direction' parameter must be one of minimize, maximize. Got {direction!r} instead.") from None


class Study:
    """Trials of one search space, one objective metric and direction, one sampler — stored durably.

    ``store`` is a path to an SQLite file (created if needed; its folder must exist), a ``Store``, or None for
    memory only. ``sampler`` and ``scheduler`` are objects or their dict descriptions
    (``{"type": "sobol", "seed": 1}``). ``definition`` is what defines the trials beyond the space — the data
    and the fixed training settings: it is stored with a new study, and resuming the study with another
    definition is refused, naming what changed (trials of two datasets never share a leaderboard).

    The study's process is the only writer of its trials; opening a study whose writer died marks the trials
    it left running as INTERRUPTED. The next ``ask`` re-runs an interrupted trial's params before drawing new
    ones: the re-run takes its place in what the sampler and scheduler see, so a study killed at any point and
    resumed proposes, ranks and prunes as one that never stopped.
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
        definition: Mapping[str, Any] | None = None,
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
        self.scheduler.attach(metric, self.direction)
        self.store = _open_store(store)
        self.name = name or time.strftime("study-%Y%m%d-%H%M%S")
        self.max_failures_in_a_row = max_failures_in_a_row
        self.interrupted_on_open = 0
        self._lock = threading.RLock()
        attrs = dict(attrs or {})
        if definition is not None:
            attrs["definition"] = json.loads(json.dumps(dict(definition)))  # as it will read back from the store
        spec = StudySpec(
            name=self.name, space=self.space.to_dict(), metric=metric, direction=self.direction.value,
            sampler=self.sampler.to_dict(), scheduler=self.scheduler.to_dict(), attrs=attrs,
        )
        where = getattr(self.store, "path", "the store")
        found = self.store.study_spec(self.name)
        if found is not None and not load_if_exists:
            raise StoreError(
                f"A study named '{self.name}' already exists in '{where}'; "
                "pass load_if_exists=True (or use Study.load) to resume it."
            )
        if found is not None:
            self._id, stored = found
            changed = _changes({"space": stored.space, "metric": stored.metric, "direction": stored.direction},
                               {"space": spec.space, "metric": metric, "direction": spec.direction})
            if definition is not None and "definition" in stored.attrs:
                changed += _changes({"definition": stored.attrs["definition"]}, {"definition": attrs["definition"]})
            if changed:
                shown = "; ".join(changed[:5]) + (f"; and {len(changed) - 5} more" if len(changed) > 5 else "")
                raise StoreError(
                    f"The study '{self.name}' in '{where}' was created with other settings ({shown}); "
                    "its trials would not compare with new ones: give the new settings another study name."
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
            ref = _WRITERS.get(key)
            older = ref() if ref is not None else None
            if older is not None:
                # the older object can no longer tell its trials: ask their objectives to stop, and mark them
                # interrupted below like any trial left running, so they run again here
                older._superseded = True
                for live in list(older._live.values()):
                    live.stop()
                older._live.clear()
            _WRITERS[key] = weakref.ref(self)
        self._records: list[TrialRecord] = self.store.trials(self._id)
        if not self.readonly:
            # this process reopening its own study (claim keeps its running trials): a trial left running by an
            # older object (superseded above, or its optimize stopped on an error it could not record)
            for t in self._records:
                if t.state is TrialState.RUNNING:
                    when = time.time()
                    reason = "its study stopped before the trial finished"
                    self.store.finish_trial(self._id, t.number, TrialState.INTERRUPTED, None, reason, when)
                    self._records[t.number] = replace(t, state=TrialState.INTERRUPTED, error=reason, finished_at=when)
                    self.interrupted_on_open += 1
        self._load_draws()
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

    # -- draws: the study as the sampler and the scheduler see it (sturgeon.draws) ----------------------------------
    def _load_draws(self) -> None:
        retry_of: dict[int, int] = {}
        if self._records:
            for e in self.store.events(self._id):  # written with its trial, in one transaction
                if e.kind == RETRY and isinstance(e.old, int) and e.trial < len(self._records) and e.old < e.trial:
                    retry_of[e.trial] = e.old
        self._draws = Draws(self._records, retry_of)

    def _update(self, rec: TrialRecord) -> None:
        """Store ``rec`` as trial ``rec.number``'s newest snapshot, in the records and in the view."""
        self._records[rec.number] = rec
        self._draws.update(rec)

    @property
    def study_id(self) -> int:
        """The study's id in its store (for store calls such as ``store.writer(study.study_id)``)."""
        return self._id

    def _refresh(self) -> None:
        """A read-only study reads what the writer has added since."""
        if self.readonly:
            with self._lock:
                self._records = self.store.trials(self._id)
                self._load_draws()

    def draw(self, number: int) -> int:
        """The draw that trial ``number`` runs: its own number, unless it re-runs an earlier trial."""
        if number not in self._draws.draw_of:
            self._refresh()
        with self._lock:
            return self._draws.draw_of[number]

    def current_trials(self) -> list[TrialRecord]:
        """One record per draw: the trial that stands for it now (a retry, not the trial it re-ran)."""
        self._refresh()
        with self._lock:
            return [self._records[n] for n in self._draws.current]

    def view(self) -> list[TrialRecord]:
        """The current trials numbered by draw: what the sampler and the scheduler see (and a rung table is
        keyed by)."""
        self._refresh()
        with self._lock:
            return list(self._draws.view)

    def count(self, excluding: Iterable[TrialState] = _NOT_COUNTED) -> int:
        """How many draws count toward a total ``n_trials``: those whose current trial is not in ``excluding``
        (by default interrupted ones, which the next ``ask`` re-runs)."""
        skip = set(excluding)
        return sum(t.state not in skip for t in self.current_trials())

    # -- reading -------------------------------------------------------------------------------------------
    @property
    def trials(self) -> list[TrialRecord]:
        """All trials so far, in number order (re-read from the store when the study is read-only)."""
        self._refresh()
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
                f"This Study object for '{self.name}' was superseded by a newer one opened in this process; "
                "use that one."
            )

    def ready(self, retry: Iterable[TrialState] = _NOT_COUNTED, *, skip: Collection[int] = ()) -> bool:
        """Whether ``ask`` can give a trial now (a retry always can; a new draw when the sampler is ready)."""
        with self._lock:
            return (self._draws.to_retry(retry, skip) is not None
                    or self.sampler.ready(len(self._draws), self._draws.view))

    def ask(self, params: Mapping[str, Any] | None = None, *, retry: Iterable[TrialState] = _NOT_COUNTED,
            skip: Collection[int] = ()) -> Trial:
        """Start a trial: the sampler's params, or ``params`` given by hand (checked against the space).

        Without ``params``, a draw whose trial ended in a ``retry`` state (by default: interrupted, e.g. by a
        kill or Ctrl-C; ``TrialState.FAILED`` may be added) is re-run first with the same params, as a new
        trial; ``retry=()`` never re-runs. ``skip``: draws not to re-run now (``optimize`` re-runs each at
        most once per call, so a trial that fails every time does not take every slot).
        """
        self._check_writable()
        with self._lock:
            number = len(self._records)
            redo = self._draws.to_retry(retry, skip) if params is None else None
            links: list[Event] = []
            if redo is not None:
                original = self._records[self._draws.current[redo]]
                values = dict(original.params)
                links.append(Event(number, 0, RETRY, old=original.number, source="study", at=time.time(),
                                   reason=f"re-runs trial {original.number} ({original.state.value})"))
            elif params is None:
                values = self.sampler.sample(self.space, len(self._draws), self._draws.view, self.direction)
            else:
                values = self.space.validate(params)
            trial = Trial(number, values, self._on_report)
            self.store.add_trial(self._id, number, values, trial.started_at, events=links)
            rec = TrialRecord(number, values, TrialState.RUNNING, started_at=trial.started_at)
            self._records.append(rec)
            self._draws.add(rec, redo)
            self._live[number] = trial
            return trial

    def _on_report(self, trial: Trial, step: int, metrics: dict[str, float]) -> Decision:
        with self._lock:
            if trial.number not in self._live:  # finished already (e.g. interrupted): record nothing more
                return Decision.STOP
            self.store.add_report(self._id, trial.number, step, trial.curve[step])
            # a fresh frozen snapshot: readers never see a curve that a worker thread is still changing
            rec = replace(self._records[trial.number], curve=dict(trial.curve))
            self._update(rec)
            seen = self._draws.viewed(rec)
            decision = self.scheduler.on_report(seen, step, metrics, self._draws.view)
            if decision is Decision.STOP and not trial.should_stop:
                why = self.scheduler.reason(seen, step)
                self.store.add_event(self._id, Event(trial.number, step, "stop", reason=why, source="scheduler",
                                                     at=time.time()))
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
            live = self._live.get(number)
            if live is None:
                raise StoreError(f"Trial {number} is not running in study '{self.name}', so it cannot be told.")
            if state is TrialState.PRUNED and value is None:
                value = self._records[number].last(self.metric)
            if state is TrialState.COMPLETE and (value is None or not math.isfinite(value)):
                state, error, value = TrialState.FAILED, error or f"the objective value is {value}", None
            finished_at = time.time()
            self.store.finish_trial(self._id, number, state, value, error, finished_at)
            del self._live[number]  # only once it is stored: a failed write leaves the trial running
            rec = TrialRecord(number, live.params, state, value, dict(live.curve), error, live.started_at, finished_at)
            self._update(rec)
            if (state is TrialState.COMPLETE and value is not None and self._best is not None
                    and self._best.value is not None and self.direction.better(value, self._best.value)):
                self._best = rec
            self._failures_in_a_row = self._failures_in_a_row + 1 if state is TrialState.FAILED else 0
            return rec

    def interrupt(self, trial: Trial, reason: str) -> None:
        """Ask a running trial's objective to stop at its next report and record it INTERRUPTED (the next
        ``ask`` re-runs it). A store that cannot be written any more is left as it is: the next writer to
        open the study marks what was left running."""
        trial.stop()
        if trial.number in self._live:
            try:
                self.tell(trial, state=TrialState.INTERRUPTED, error=reason)
            except StoreError:
                with self._lock:  # not running any more, though the store still says so: the next open fixes it
                    self._live.pop(trial.number, None)

    # -- optimize ------------------------------------------------------------------------------------------
    def _run(self, objective: Objective, trial: Trial, catch: tuple[type[BaseException], ...]) -> _Outcome:
        """Run one objective call in a worker; returns what to tell, and an exception to re-raise after telling
        (one that ``catch`` does not cover). Never writes to the store itself."""
        try:
            result = objective(trial)
        except TrialPruned:
            return TrialState.PRUNED, None, None, None
        except StoreWriteError:
            raise  # a report could not be written (a full disk): the store's fault, not the objective's
        except Exception as e:
            last = traceback.extract_tb(e.__traceback__)[-1]
            text = " ".join(str(e).split())  # one line: it is shown in tables, warnings and grouped reasons
            error = f"{type(e).__name__}: {text} (at {Path(last.filename).name}:{last.lineno})"
            return TrialState.FAILED, None, error, None if isinstance(e, catch) else e
        try:
            value = value_of(result, self.metric, trial)
        except ValueError as e:
            return TrialState.FAILED, None, str(e), None
        if not trial.should_stop:
            return TrialState.COMPLETE, value, None, None
        note = None
        if trial.stopped_at is not None and trial.curve and max(trial.curve) > trial.stopped_at:
            note = (f"{RAN_ON}: stopped at step {trial.stopped_at}, it reported up to step {max(trial.curve)} "
                    "(check trial.should_stop or raise TrialPruned to save that compute)")
        return TrialState.PRUNED, value, note, None

    def optimize(
        self,
        objective: Objective,
        n_trials: int,
        *,
        n_jobs: int = 1,
        timeout: float | None = None,
        callbacks: Iterable[Callback] = (),
        catch: tuple[type[BaseException], ...] = (Exception,),
        retry: Iterable[TrialState] = _NOT_COUNTED,
    ) -> None:
        """Run ``n_trials`` more trials (a count of new trials, not a total; fewer if the sampler is exhausted
        or ``timeout`` seconds pass).

        - A trial whose objective raises an exception in ``catch`` (default: any) is FAILED with the error and
          the search goes on; at the end a ``FailedTrialsWarning`` gives the count and the last error.
          ``catch=()`` records the trial FAILED and re-raises its exception, as Optuna does by default.
          ``max_failures_in_a_row`` failures in a row stop the search with StudyError.
        - ``timeout``: no trial starts after it, and at the deadline the call returns: trials still running are
          recorded INTERRUPTED (the next call re-runs them) and told to stop at their next report.
        - Ctrl-C marks the trials in flight INTERRUPTED, asks their objectives to stop at their next report,
          and re-raises at once.
        - ``retry``: the states whose trials are re-run (same params) before new ones are drawn; add
          ``TrialState.FAILED`` to retry failed trials.
        """
        if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 0:
            raise ValueError(f"The 'n_trials' parameter must be an integer >= 0. Got {n_trials!r} instead.")
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                                    or not timeout > 0):
            raise ValueError(
                f"The 'timeout' parameter must be a number of seconds > 0 or None. Got {timeout!r} instead.")
        retry = retry_states(retry)
        retried: set[int] = set()  # draws re-run by this call: each at most once
        # with a deadline the objectives run in a (daemon) thread even for n_jobs=1, so the study can return
        executor = make_executor(n_jobs, threaded=timeout is not None)
        callbacks = list(callbacks)
        deadline = None if timeout is None else time.monotonic() + timeout
        in_flight: dict[Future[Any], Trial] = {}
        mine: list[Trial] = []  # every trial this call started, to mark those left unfinished on an exception
        failed: list[TrialRecord] = []
        ran_on: list[TrialRecord] = []  # pruned trials whose objective trained on after the stop
        asked = 0
        clean_exit = False
        try:
            while True:
                # 1) keep n_jobs objectives in flight while trials remain, time allows and the sampler is ready
                #    (a coarse-to-fine round waits for the previous one: parallel runs stay reproducible)
                while (asked < n_trials and len(in_flight) < n_jobs
                       and (deadline is None or time.monotonic() < deadline) and self.ready(retry, skip=retried)):
                    try:
                        trial = self.ask(retry=retry, skip=retried)
                    except SamplerExhausted:
                        n_trials = asked
                        break
                    retried.add(self.draw(trial.number))
                    asked += 1
                    mine.append(trial)
                    in_flight[executor.submit(self._run, objective, trial, catch)] = trial
                if not in_flight:
                    clean_exit = True
                    return
                # 2) tell each finished one (the coordinator is the store's only writer)
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                done, _ = wait(list(in_flight), timeout=left, return_when=FIRST_COMPLETED)
                if not done:  # the deadline passed with objectives still running: record them and return
                    for trial in in_flight.values():
                        self.interrupt(trial, f"still running when the study's timeout of {timeout:g} s passed")
                    in_flight.clear()
                    clean_exit = True
                    return
                for future in done:
                    trial = in_flight.pop(future)
                    state, value, error, reraise = future.result()
                    rec = self.tell(trial, value, state=state, error=error)
                    if reraise is not None:
                        raise reraise
                    if rec.state is TrialState.FAILED:
                        failed.append(rec)
                    elif rec.state is TrialState.PRUNED and (rec.error or "").startswith(RAN_ON):
                        ran_on.append(rec)
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
                self.interrupt(trial, "interrupted before it finished")
            raise
        finally:
            # on an exception or a timeout, do not wait for objectives still running: they were told to stop
            executor.shutdown(wait=clean_exit and deadline is None, cancel_futures=True)
            if ran_on and clean_exit:
                warnings.warn(IgnoredStopWarning(
                    f"{len(ran_on)} trials of study '{self.name}' trained on after the scheduler stopped them; "
                    "the objective should check trial.should_stop (or raise TrialPruned) after each report"),
                    stacklevel=2)
            if failed and clean_exit:
                warnings.warn(FailedTrialsWarning(
                    f"{len(failed)} of {asked} trials failed in study '{self.name}', each recorded FAILED with its "
                    f"error (catch=() re-raises instead); the last error: {failed[-1].error}"), stacklevel=2)

    def close(self) -> None:
        """Stop being the study's writer (other processes may then resume it)."""
        if not self.readonly and not self._superseded:
            self.store.release(self._id)

    def __enter__(self) -> Study:
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"Study(name={self.name!r}, metric={self.metric!r}, direction={self.direction.value!r}, "
                f"trials={len(self._records)})")
