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
from dataclasses import dataclass, field, replace
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
    pending: list[Trial] = field(default_factory=list)  # asked, not yet placed in a group
    lock: threading.Lock = field(default_factory=threading.Lock)  # groups side by side share the budget

    def past_deadline(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    def ask(self, limit: int) -> list[Trial]:
        """Ask up to ``limit`` trials while the budget lasts and the sampler is ready."""
        with self.lock:
            return self._ask(limit)

    def _ask(self, limit: int) -> list[Trial]:
        out: list[Trial] = []
        study = self.study
        while self.remaining > 0 and len(out) < limit and not self.past_deadline() and study.ready():
            try:
                out.append(study.ask())  # an interrupted trial's params come back first, as a retry
            except SamplerExhausted:
                self.remaining = 0
                break
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
) -> None:
    """Run ``n_trials`` trials of the built-in trainer (``fixed`` settings overlaid by each trial's params)
    for ``epochs`` epochs, fused. After ``timeout`` seconds no trial starts and the models still training are
    recorded INTERRUPTED at their next epoch boundary (a later call re-runs them).

    1. ask a batch of at most ``settings.batch`` trials (as many as the sampler is ready to give: a
       coarse-to-fine round at a time); interrupted trials come back first with their own params, and the rung
       table is rebuilt from the stored curves, so a study killed at any point and resumed ends as one that
       never stopped (a model's trajectory does not depend on its group-mates);
    2. group them by what cannot be fused, within the memory budget;
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
        halving.seed(study_view(study), study.metric)
    deadline = None if timeout is None else time.monotonic() + timeout
    run = _Run(study, data, dict(fixed), epochs, settings, list(callbacks), n_trials, halving, deadline, timeout)
    while True:
        batch = run.pending + run.ask(max(0, settings.batch - len(run.pending)))  # 1)
        run.pending = []
        if not batch:
            return
        params = [run.params(t) for t in batch]
        groups = make_groups(params, shape=data.shape, n_classes=data.n_classes, budget=settings.budget,
                             max_models=settings.max_models)  # 2)
        executor = make_executor(settings.n_jobs)
        try:
            futures = [executor.submit(_train_group, run, [batch[i] for i in members]) for members in groups]
            for future in futures:
                future.result()  # re-raises a group's error (its own trials are already marked)
        finally:
            executor.shutdown(wait=True)


def study_view(study: Study) -> list[TrialRecord]:
    """The study's current trials numbered by draw: what its rung table is keyed by."""
    return [replace(t, number=study.draw(t.number)) for t in study.current_trials()]


def _train_group(run: _Run, trials: list[Trial]) -> None:
    study, metric, settings = run.study, run.study.metric, run.settings
    n = settings.threads or default_threads(len(trials), settings.n_jobs)
    ft = Shards(run.data, [run.params(t) for t in trials], n=n)
    by_id: dict[int, Trial] = dict(zip(ft.active, trials))
    minimize = study.direction.value == "minimize"
    try:
        while ft.active:
            if run.past_deadline():
                for model in ft.active:
                    study.interrupt(by_id[model], f"still running when the study's timeout of {run.timeout:g} s passed")
                return
            metrics = ft.step()  # 3)
            ended: set[int] = set()
            diverged = set(ft.diverged(metrics, run.settings.explode))
            at_rung: dict[int, dict[int, float]] = {}
            for model, m, epoch in zip(ft.active, metrics, ft.epochs):
                trial = by_id[model]
                trial.report(epoch - 1, **m)
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
                    at_rung.setdefault(epoch, {})[study.draw(trial.number)] = m[metric]
            if run.halving is not None:
                model_of = {study.draw(by_id[m].number): m for m in ft.active}
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
