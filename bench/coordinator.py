"""Coordinator overhead: ask + tell of 10,000 trials of a trivial 4-parameter objective.

Sturgeon with its durable SQLite store on disk, against Optuna's RandomSampler in memory and on SQLite, in
the same run on the same machine. Prints ms/trial and the ratios; BENCHMARKS.md records the figures.

    python bench/coordinator.py                 # 10,000 trials each (Optuna on SQLite: 2,000, see below)
    python bench/coordinator.py --trials 2000
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import tempfile
import time

import optuna

from sturgeon import Choice, Float, Int, Space, SQLiteStore, Study


def objective_value(lr: float, beta: float, units: int, act: str) -> float:
    return math.log10(lr) ** 2 + (1 - beta) * units + (act == "tanh")


def sturgeon_run(n: int, path: str, durability: str = "process") -> float:
    space = Space(lr=Float(1e-4, 1, scale="log"), beta=Float(0.9, 0.999, scale="reverse_log"),
                  units=Int(16, 512, scale="log"), act=Choice(["relu", "tanh"]))
    study = Study("bench", space, store=SQLiteStore(path, durability=durability), sampler={"type": "random", "seed": 0})
    t0 = time.perf_counter()
    for _ in range(n):
        trial = study.ask()
        p = trial.params
        study.tell(trial, objective_value(p["lr"], p["beta"], p["units"], p["act"]))
    elapsed = time.perf_counter() - t0
    assert len(study.trials) == n
    study.close()
    return elapsed / n * 1e3


def optuna_run(n: int, storage: str | None) -> float:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(storage=storage, sampler=optuna.samplers.RandomSampler(seed=0))
    t0 = time.perf_counter()
    for _ in range(n):
        trial = study.ask()
        lr = trial.suggest_float("lr", 1e-4, 1, log=True)
        beta = trial.suggest_float("beta", 0.9, 0.999)  # Optuna has no 1 - beta scale; the cost is the same
        units = trial.suggest_int("units", 16, 512, log=True)
        act = trial.suggest_categorical("act", ["relu", "tanh"])
        study.tell(trial, objective_value(lr, beta, units, act))
    elapsed = time.perf_counter() - t0
    return elapsed / n * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trials", type=int, default=10_000)
    ap.add_argument("--optuna-sqlite-trials", type=int, default=2_000,
                    help="Optuna on SQLite costs ~10 ms/trial and grows with the study; 10,000 takes minutes.")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        st = sturgeon_run(args.trials, os.path.join(d, "sturgeon.db"))
        n_pw = min(args.trials, args.optuna_sqlite_trials)
        pw = sturgeon_run(n_pw, os.path.join(d, "sturgeon-power.db"), durability="power")
        om = optuna_run(args.trials, None)
        n_os = min(args.trials, args.optuna_sqlite_trials)
        osq = optuna_run(n_os, f"sqlite:///{os.path.join(d, 'optuna.db')}")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"python {platform.python_version()}, optuna {optuna.__version__}")
    print(f"{'system':<36}{'trials':>8}{'ms/trial':>11}{'vs sturgeon':>13}")
    rows = [("sturgeon, SQLite on disk (default)", args.trials, st),
            ("sturgeon, SQLite, durability=power", n_pw, pw),
            ("optuna, in memory", args.trials, om),
            ("optuna, SQLite on disk", n_os, osq)]
    for name, n, ms in rows:
        print(f"{name:<36}{n:>8}{ms:>11.3f}{ms / st:>12.1f}x")


if __name__ == "__main__":
    main()
