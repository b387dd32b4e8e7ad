"""Run a caviar study: sample many configurations, fuse them into groups, train each group as one model,
and record every model as its own trial — its learning curve, its stop or divergence, its result.

>>> from sturgeon import Study, Space, Float
>>> from sturgeon.train import load_data
>>> study = Study(space=Space(lr=Float(1e-3, 1e-1, scale="log")), metric="dev_error")
>>> run_caviar(study, load_data("digits"), {"units": 32}, n_trials=4, epochs=2)
>>> [len(t.curve) for t in study.trials]
[2, 2, 2, 2]
"""
from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import FIRST_EXCEPTION, wait
from dataclasses import dataclass, field
from typing import Any

from sturgeon.caviar.fused import group_key
from sturgeon.caviar.groups import DEFAULT_BUDGET, make_groups
from sturgeon.caviar.shards import Shards, default_threads
from sturgeon.executors import make_executor
from sturgeon.samplers import SamplerExhausted
from sturgeon.schedulers import SuccessiveHalving
from sturgeon.study import Study
from sturgeon.train import Dataset, TrainParams
from sturgeon.trial import Trial, TrialRecord, TrialState

__all__ = ["run_caviar", "CaviarSettings"]

Callback = Callable[[Study, TrialRecord], None]


@dataclass
class CaviarSettings:
    """How a caviar study runs. ``rungs`` empty means no early stopping."""

    rungs: tuple[int, ...] = ()
    eta: int = 3
    refill: bool = False  # refill slots freed by stops with newly sampled configurations that fit the group
    budget: int = DEFAULT_BUDGET  # bytes per group
    max_models: int | None = None  # per group
    explode: float = 1e3  # a train cost above explode x log(n_classes) counts as diverged
    n_jobs: int = 1  # groups trained side by side (threads; PyTorch releases the GIL in its kernels)
    threads: int | None = None  # per group, one torch thread each, own blocks of models; None: cores / n_jobs
    batch: int = 1024  # trials asked at a time, then grouped and trained: a huge n_trials never asks them all
    fused: bool = True  # False: a config's [caviar] rungs halve unfused trials (see sturgeon.config)

    def __post_init__(self) -> None:
        if self.threads is not None and (isinstance(self.threads, bool) or not isinstance(self.threads, int)
                                         or self.threads < 1):
            raise ValueError(f"The 'threads' parameter must be an integer >= 1 or None. Got {self.threads!r} instead.")
        if self.rungs:
            SuccessiveHalving(self.rungs, self.eta)  # validates rungs and eta, one clear line each
        if isinstance(self.batch, bool) or not isinstance(self.batch, int) or self.batch < 1:
            raise ValueError(f"The 'batch' parameter must be an integer >= 1. Got {self.batch!r} instead.")


@dataclass
class _Run:
    study: Study
    data: Dataset
    fixed: dict[str, Any]
    epochs: int
    settings: CaviarSettings
    callbacks: list[Callback]
    remaining: int
    halving: SuccessiveHalving | None = None
    deadline: float | None = None  # time.monotonic() after which nothing new starts and running models stop
    timeout: float | None = None
    retry: tuple[TrialState, ...] = (TrialState.INTERRUPTED,)  # the states whose draws run again first
    pending: list[Trial] = field(default_factory=list)  # asked, not yet placed in a group
    lock: threading.Lock = field(default_factory=threading.Lock)  # groups side by side share the budget
    stop: threading.Event = field(default_factory=threading.Event)  # set on Ctrl-C or a group's error
    retried: set[int] = field(default_factory=set)  # draws re-run by this call: each at most once

    def past_deadline(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    def ask(self, limit: int) -> list[Trial]:
        """Ask up to ``limit`` trials while the budget lasts and the sampler is ready."""
        with self.lock:
            return self._ask(limit)

    def _ask(self, limit: int) -> list[Trial]:
        out: list[Trial] = []
        study = self.study
        while (self.remaining > 0 and len(out) < limit and not self.past_deadline() and not self.stop.is_set()
               and study.ready(self.retry, skip=self.retried)):
            try:  # an interrupted trial's params come back first, as a retry
                trial = study.ask(retry=self.retry, skip=self.retried)
            except SamplerExhausted:
                self.remaining = 0
                break
            self.retried.add(study.draw(trial.number))
            out.append(trial)
            self.remaining -= 1
        return out

    def params(self, trial: Trial) -> TrainParams:
        return TrainParams.from_dict({**self.fixed, **trial.params})

    def finish(self, trial: Trial, state: TrialState, value: float | None = None, error: str | None = None) -> None:
        rec = self.study.tell(trial, value, state=state, error=error)
        for cb in self.callbacks:
            cb(self.study, rec)


def run_caviar(
    study: Study,
    data: Dataset,
    fixed: Mapping[str, Any],
    n_trials: int,
    epochs: int,
    settings: CaviarSettings | None = None,
    callbacks: Iterable[Callback] = (),
    timeout: float | None = None,
    retry: Iterable[TrialState] = (TrialState.INTERRUPTED,),
) -> None:
    """Run ``n_trials`` trials of the built-in trainer (``fixed`` settings overlaid by each trial's params)
    for ``epochs`` epochs, fused. After ``timeout`` seconds no trial starts and the models still training are
    recorded INTERRUPTED at their next epoch boundary (a later call re-runs them); Ctrl-C does the same at
    once. ``retry``: the states whose trials run again first (add ``TrialState.FAILED`` to retry failures).

    1. ask a batch of at most ``settings.batch`` trials (as many as the sampler is ready to give: a
       coarse-to-fine round at a time); interrupted trials come back first with their own params, and the rung
       table is rebuilt from the stored curves, so a study killed at any point and resumed ends as one that
       never stopped (a model's trajectory does not depend on its group-mates);
    2. group them by what cannot be fused, within the memory budget; re-runs go back to the group they were in
       (each group's draws are an event), so they are judged with the same group-mates as before;
    3. train each group (``Shards``: one thread per core left to it, each training its blocks of models):
       every epoch, report each model's metrics on its trial; a diverged model is
       recorded DIVERGED and removed; successive halving and the study's scheduler stop models (PRUNED,
       with the reason as an event); stopped models are compacted away and, with ``refill``, their slots
       go to new configurations that fit the group;
    4. a model that completes ``epochs`` is COMPLETE with its last value of the study's metric.
    """
    settings = settings or CaviarSettings()
    halving = None
    if settings.rungs:
        halving = SuccessiveHalving(settings.rungs, settings.eta)
        halving.attach(study.metric, study.direction)
        halving.seed(study.view(), study.metric)
    deadline = None if timeout is None else time.monotonic() + timeout
    run = _Run(study, data, dict(fixed), epochs, settings, list(callbacks), n_trials, halving, deadline, timeout,
               tuple(TrialState(s) for s in retry))
    while True:
        batch = run.pending + run.ask(max(0, settings.batch - len(run.pending)))  # 1)
        run.pending = []
        if not batch:
            return
        groups = _groups(run, batch)  # 2)
        if settings.n_jobs == 1:  # one after another: Ctrl-C in a group ends the loop at once
            for i, group in enumerate(groups):
                try:
                    _train_group(run, group)
                except BaseException:
                    _interrupt_all(run, [t for g in groups[i + 1:] for t in g])
                    raise
            continue
        executor = make_executor(settings.n_jobs)
        futures = {executor.submit(_train_group, run, group): group for group in groups}
        try:
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            failed = [f for f in done if f.exception() is not None]
            if failed:
                raise failed[0].exception()  # type: ignore[misc]
        except BaseException:
            run.stop.set()  # the other groups stop at their next epoch boundary, their models interrupted
            for future, group in futures.items():
                if future.cancel():  # never started
                    _interrupt_all(run, group)
            executor.shutdown(wait=True)
            raise
        executor.shutdown(wait=True)


def _interrupt_all(run: _Run, trials: list[Trial]) -> None:
    for trial in [*trials, *run.pending]:
        run.study.interrupt(trial, "interrupted before it finished")
    run.pending = []


GROUP = "group"  # the event that records the draws trained together in one fused group


def _groups(run: _Run, batch: list[Trial]) -> list[list[Trial]]:
    """Fused groups for ``batch``: re-runs of draws that trained in a recorded group go back together (the
    rest of that group finished already), in the order the groups first ran; new draws are grouped by what
    cannot be fused, within the memory budget. Each new group's draws are recorded as an event."""
    study = run.study
    recorded: dict[int, int] = {}  # draw -> the recorded group it trained in
    for i, e in enumerate(study.events()):
        if e.kind == GROUP and isinstance(e.new, list):
            recorded.update((int(d), i) for d in e.new)
    again: dict[int, list[Trial]] = {}
    fresh: list[Trial] = []
    for t in batch:
        tag = recorded.get(study.draw(t.number))
        (again.setdefault(tag, []) if tag is not None else fresh).append(t)
    params = [run.params(t) for t in fresh]
    members = make_groups(params, shape=run.data.shape, n_classes=run.data.n_classes, budget=run.settings.budget,
                          max_models=run.settings.max_models)
    new = [[fresh[i] for i in m] for m in members]
    for group in new:
        draws = [study.draw(t.number) for t in group]
        study.record_event(group[0].number, 0, GROUP, new=draws, reason=f"{len(draws)} models fused",
                           source="caviar")
    return [again[tag] for tag in sorted(again)] + new


def _train_group(run: _Run, trials: list[Trial]) -> None:
    study, metric, settings = run.study, run.study.metric, run.settings
    n = settings.threads or default_threads(len(trials), settings.n_jobs)
    ft = Shards(run.data, [run.params(t) for t in trials], n=n)
    by_id: dict[int, Trial] = dict(zip(ft.active, trials))
    minimize = study.direction.value == "minimize"
    try:
        while ft.active:
            if run.past_deadline() or run.stop.is_set():
                why = (f"still running when the study's timeout of {run.timeout:g} s passed" if run.past_deadline()
                       else "interrupted before it finished")
                for model in ft.active:
                    study.interrupt(by_id[model], why)
                return
            metrics = ft.step()  # 3)
            ended: set[int] = set()
            diverged = set(ft.diverged(metrics, run.settings.explode))
            at_rung: dict[int, dict[int, float]] = {}
            ended_at: dict[int, dict[int, float]] = {}  # values of models that ended here: counted, not judged
            for model, m, epoch in zip(ft.active, metrics, ft.epochs):
                trial = by_id[model]
                trial.report(epoch - 1, **m)
                if math.isfinite(m[metric]):
                    ended_at.setdefault(epoch, {})[study.draw(trial.number)] = m[metric]
                if model in diverged:
                    cost = m["train_cost"]
                    study.record_event(trial.number, epoch - 1, "diverged", reason=f"train_cost {cost:.4g}",
                                       source="caviar")
                    why = f"diverged at epoch {epoch - 1}: train_cost {cost:.4g}"
                    run.finish(trial, TrialState.DIVERGED, error=why)
                    ended.add(model)
                elif epoch >= run.epochs:  # 4)
                    run.finish(trial, TrialState.COMPLETE, m[metric])
                    ended.add(model)
                elif trial.should_stop:  # the study's scheduler said STOP (its event is already recorded)
                    run.finish(trial, TrialState.PRUNED, m[metric])
                    ended.add(model)
                elif math.isfinite(m[metric]):
                    d = study.draw(trial.number)
                    at_rung.setdefault(epoch, {})[d] = ended_at[epoch].pop(d)
            if run.halving is not None:
                model_of = {study.draw(by_id[m].number): m for m in ft.active}
                for epoch, values in ended_at.items():
                    with run.lock:  # the stored curves hold them too: a table rebuilt on resume counts them
                        run.halving.record(epoch, values, minimize=minimize)
                for epoch, values in at_rung.items():
                    with run.lock:  # groups side by side share one rung table
                        stops = run.halving.judge(epoch, values, minimize=minimize)
                    for draw, stop in stops.items():
                        model = model_of[draw]
                        trial = by_id[model]
                        study.record_event(trial.number, epoch - 1, "stop", reason=stop.reason, source="caviar")
                        run.finish(trial, TrialState.PRUNED, values[draw])
                        ended.add(model)
            if ended:
                ft.keep([m for m in ft.active if m not in ended])
                if run.settings.refill:
                    _refill(run, ft, by_id, len(ended))
    except BaseException:
        for model in ft.active:  # Ctrl-C or a crash: what was running is interrupted, what finished stays
            study.interrupt(by_id[model], "interrupted before it finished")
        raise
    finally:
        ft.close()


def _refill(run: _Run, ft: Shards, by_id: dict[int, Trial], free: int) -> None:
    """Give freed slots to new trials that fit the group; others wait for a later group."""
    fits: list[Trial] = []
    for trial in run.ask(free):
        (fits if group_key(run.params(trial)) == ft.key else run.pending).append(trial)
    if fits:
        ids = ft.add([run.params(t) for t in fits])
        by_id.update(zip(ids, fits))
