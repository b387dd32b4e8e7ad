"""Sampler cost: ms per ask of each sampler against the number of finished trials already in the study.

An 8-parameter space (two log floats, a reverse_log β, two log ints, a linear float, an unordered 3-way choice,
an ordered numeric choice), a trivial objective, in-memory studies. Every Sturgeon kind in
``sturgeon.samplers._KINDS`` but grid (new kinds are picked up by themselves), and Optuna's TPESampler (default
and multivariate=True) and GPSampler on an equivalent Optuna space (β as a log-scaled 1 − β; the ordered choice
as a categorical, Optuna has no ordered one).

For each size n (100, 1,000, 5,000 by default) a study is grown to n finished trials, then the next ``--window``
asks are timed (each told at once, its tell not timed); the cell is their mean. The default window, 60, is a
multiple of coarse-to-fine's round (20), so that each of its cells holds the same share of round starts (where
its box is computed, O(n log n)). One study per sampler grows through the sizes, so the window's trials count
towards the next size.

Prefill (``--prefill``): ``own`` runs the sampler's own ask/tell loop; ``random`` adds finished trials at
uniform random points (Sturgeon: ``study.ask(params=...)`` + tell; Optuna: ``study.add_trial``), so that growing
a slow sampler's study to 5,000 trials takes seconds; ``auto`` (the default) runs the own loop while an own ask
costs under ``--own-ms`` (the mean of the last 20; or one ask over ten times that) and random points from then on.
After random points, one untimed ask precedes the window: the first ask after them catches up on what the
sampler skipped (coarse-to-fine computes the box of every round the random points filled, a one-off cost that a
study asking for its own points pays a round at a time). The cost of an ask depends on how many
trials there are, hardly on where they lie. A cell is skipped (—) when the sampler is capped below n (GP above
``--gp-max-trials``), or when the smaller size's cost per ask, scaled by n, would exceed ``--max-seconds``; a
window starts no ask after ``--max-seconds``, and an alarm stops one ask that runs longer than that (that cell,
if no ask of it finished, and every larger one: —).

    python bench/sampler_cost.py                         # about 3 minutes on 2 cores
    python bench/sampler_cost.py --sizes 100 1000 --window 20
    python bench/sampler_cost.py --only coarse_to_fine   # one sampler (a name from the table's first column)
"""
from __future__ import annotations

import argparse
import gc
import math
import os
import platform
import signal
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import optuna

from sturgeon import Choice, Float, Int, Space, Study
from sturgeon.samplers import _KINDS

SPACE = Space(
    lr=Float(1e-5, 1.0, scale="log"), wd=Float(1e-6, 1e-1, scale="log"),
    beta=Float(0.9, 0.9999, scale="reverse_log"),
    units=Int(16, 1024, scale="log"), depth=Int(1, 64, scale="log"),
    dropout=Float(0.0, 0.5),
    act=Choice(["relu", "tanh", "gelu"]), bs=Choice([32, 64, 128, 256]),
)

OPTUNA_DISTS: dict[str, optuna.distributions.BaseDistribution] = {
    "lr": optuna.distributions.FloatDistribution(1e-5, 1.0, log=True),
    "wd": optuna.distributions.FloatDistribution(1e-6, 1e-1, log=True),
    "one_minus_beta": optuna.distributions.FloatDistribution(1e-4, 0.1, log=True),
    "units": optuna.distributions.IntDistribution(16, 1024, log=True),
    "depth": optuna.distributions.IntDistribution(1, 64, log=True),
    "dropout": optuna.distributions.FloatDistribution(0.0, 0.5),
    "act": optuna.distributions.CategoricalDistribution(["relu", "tanh", "gelu"]),
    "bs": optuna.distributions.CategoricalDistribution([32, 64, 128, 256]),
}


def objective(p: dict[str, Any]) -> float:
    return ((math.log10(p["lr"]) + 3) ** 2 + (math.log10(p["wd"]) + 4) ** 2 / 4 + (1 - p["beta"]) * 10
            + abs(math.log2(p["units"]) - 8) / 4 + abs(math.log2(p["depth"]) - 2) / 8 + (p["dropout"] - 0.1) ** 2
            + (p["act"] != "gelu") * 0.1 + abs(math.log2(p["bs"]) - 6) / 10)


class SturgeonRun:
    """A Sturgeon study in memory with the sampler of ``spec``."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.study = Study(space=SPACE, sampler=spec)
        self.rng = np.random.default_rng(1)
        self.n = 0

    def ask_own(self) -> float:
        t0 = time.perf_counter()
        trial = self.study.ask()
        dt = time.perf_counter() - t0
        self.study.tell(trial, objective(trial.params))
        self.n += 1
        return dt

    def add_random(self) -> None:
        params = SPACE.from_unit(self.rng.random(len(SPACE)).tolist())
        self.study.tell(self.study.ask(params=params), objective(params))
        self.n += 1


class OptunaRun:
    """An Optuna study in memory (define-by-run: an ask is ``study.ask()`` plus the eight suggest calls)."""

    def __init__(self, sampler: optuna.samplers.BaseSampler) -> None:
        self.study = optuna.create_study(sampler=sampler)
        self.random = optuna.samplers.RandomSampler(seed=1)
        self.n = 0

    def ask_own(self) -> float:
        t0 = time.perf_counter()
        trial = self.study.ask()
        p = {name: (trial.suggest_categorical(name, d.choices)  # type: ignore[arg-type]
                    if isinstance(d, optuna.distributions.CategoricalDistribution)
                    else trial.suggest_int(name, d.low, d.high, log=d.log)  # type: ignore[attr-defined]
                    if isinstance(d, optuna.distributions.IntDistribution)
                    else trial.suggest_float(name, d.low, d.high, log=d.log))  # type: ignore[attr-defined]
             for name, d in OPTUNA_DISTS.items()}
        dt = time.perf_counter() - t0
        self.study.tell(trial, objective(self._sturgeon_params(p)))
        self.n += 1
        return dt

    def add_random(self) -> None:
        # Optuna's RandomSampler draws each value without looking at the study: as cheap as a point can be
        p = {name: self.random.sample_independent(self.study, None, name, d)  # type: ignore[arg-type]
             for name, d in OPTUNA_DISTS.items()}
        self.study.add_trial(optuna.trial.create_trial(params=p, distributions=OPTUNA_DISTS,
                                                       value=objective(self._sturgeon_params(p))))
        self.n += 1

    @staticmethod
    def _sturgeon_params(p: dict[str, Any]) -> dict[str, Any]:
        q = dict(p)
        q["beta"] = 1 - q.pop("one_minus_beta")
        return q


Run = SturgeonRun | OptunaRun


def sturgeon_spec(kind: str) -> dict[str, Any]:
    spec: dict[str, Any] = {"type": kind, "seed": 0}
    try:
        Study(space=SPACE, sampler=spec)
    except ValueError:  # a kind without a seed
        spec = {"type": kind}
    return spec


def samplers() -> dict[str, tuple[Callable[[], Run], int | None]]:
    """Name -> (a fresh run, the largest size it is measured at; None: every size)."""
    out: dict[str, tuple[Callable[[], Run], int | None]] = {}
    for kind in _KINDS:
        if kind != "grid":  # a grid's points are fixed up front: nothing grows with the study
            out[f"sturgeon {kind}"] = (lambda kind=kind: SturgeonRun(sturgeon_spec(kind)), None)  # type: ignore[misc]
    out["optuna TPE"] = (lambda: OptunaRun(optuna.samplers.TPESampler(seed=0)), None)
    out["optuna TPE multivariate"] = (lambda: OptunaRun(optuna.samplers.TPESampler(seed=0, multivariate=True)), None)
    out["optuna GP"] = (lambda: OptunaRun(optuna.samplers.GPSampler(seed=0)), -1)  # -1: --gp-max-trials
    return out


class TooSlow(Exception):
    """An ask ran past ``--max-seconds`` (raised by the alarm's handler)."""


def _alarm(signum: int, frame: Any) -> None:
    raise TooSlow


def measure(make: Callable[[], Run], sizes: list[int], cap: int | None, args: argparse.Namespace
            ) -> tuple[list[float | None], str]:
    """ms/ask per size (None: skipped), and how the study was prefilled."""
    run = make()
    cells: list[float | None] = []
    own_until: int | None = None  # the trial from which the prefill used random points
    mode = "random" if args.prefill == "random" else "own"
    prev: tuple[int, float] | None = None  # (size, seconds per ask) of the last measured cell
    recent: list[float] = []  # the prefill's own asks, in seconds
    slow_ask = False  # an ask ran past --max-seconds
    for n in sizes:
        # linear: a lower bound for every sampler here (a GP's ask grows faster, which the alarm below catches)
        if slow_ask or (cap is not None and n > cap) or (prev is not None and prev[1] * n / prev[0] > args.max_seconds):
            cells.append(None)
            continue
        fresh_points = False  # random points added since the sampler's last ask
        while run.n < n:
            if mode == "own":
                recent.append(run.ask_own())
                # the mean of the last 20, so that one slow ask (a collection, a Sobol block) does not switch;
                # but one ask ten times over the limit does (a GP's first model-based ask takes seconds)
                slow = len(recent) > 20 and sum(recent[-20:]) / 20 * 1e3 > args.own_ms  # past the first ask
                slow = slow or len(recent) >= 5 and recent[-1] * 1e3 > 10 * args.own_ms  # not the first: a setup
                if args.prefill == "auto" and slow:
                    mode, own_until = "random", run.n
            else:
                if own_until is None:
                    own_until = run.n
                run.add_random()
                fresh_points = True
        # untimed: the garbage of earlier samplers' studies would otherwise be collected inside this window
        gc.collect()
        times: list[float] = []
        deadline = time.perf_counter() + args.max_seconds
        try:
            signal.setitimer(signal.ITIMER_REAL, args.max_seconds)  # a hard stop for one ask that takes longer
            if fresh_points:
                run.ask_own()  # untimed: the first ask after random points catches up on them (see the docstring)
            while len(times) < args.window and time.perf_counter() < deadline:
                signal.setitimer(signal.ITIMER_REAL, args.max_seconds)
                times.append(run.ask_own())
        except TooSlow:
            slow_ask = True  # the study was left mid-ask: no larger size for this sampler
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        if not times:
            cells.append(None)
            continue
        per_ask = sum(times) / len(times)
        cells.append(per_ask * 1e3)
        prev = (n, per_ask)
    how = "own asks" if own_until is None else "random points" if own_until == 0 else f"own asks to {own_until}, then random"
    return cells, how


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 1_000, 5_000])
    ap.add_argument("--window", type=int, default=60, help="asks timed per cell")
    ap.add_argument("--max-seconds", type=float, default=20.0, help="the most a cell's window may run")
    ap.add_argument("--gp-max-trials", type=int, default=1_000, help="GP above this size is skipped")
    ap.add_argument("--prefill", choices=("auto", "own", "random"), default="auto")
    ap.add_argument("--own-ms", type=float, default=2.0, help="auto: own asks while one costs under this")
    ap.add_argument("--only", nargs="+", help="sampler names to run (default: all)")
    args = ap.parse_args()
    sizes = sorted(args.sizes)
    signal.signal(signal.SIGALRM, _alarm)
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # GP's note that greenlet is missing
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    rows = []
    for name, (make, cap) in samplers().items():
        if args.only and name not in args.only and name.removeprefix("sturgeon ") not in args.only:
            continue
        t0 = time.perf_counter()
        cells, how = measure(make, sizes, args.gp_max_trials if cap == -1 else cap, args)
        rows.append((name, cells, how, time.perf_counter() - t0))
        print(f"  {name}: {time.perf_counter() - t0:.0f} s", flush=True)
    print()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"python {platform.python_version()}, optuna {optuna.__version__}")
    print(f"ms per ask, mean of up to {args.window} asks once the study holds n finished trials")
    print()
    print("| sampler | " + " | ".join(f"n = {n:,}" for n in sizes) + " | prefill |")
    print("|---|" + "---:|" * len(sizes) + "---|")
    for name, cells, how, _ in rows:
        print(f"| {name} | " + " | ".join("—" if c is None else f"{c:.3f}" if c < 10 else f"{c:.1f}" for c in cells)
              + f" | {how} |")


if __name__ == "__main__":
    main()
