"""Caviar: K models trained at once by the fused engine, against the same K trained by the usual tuners.

The same K configurations (K = 64 and 256) x 10 epochs on digits and on mnist1d, every system in the same
run on the same machine:

- ``fused``:   Sturgeon's fused engine as ``sturgeon tune`` runs it (``sturgeon.caviar.Shards``): the K models
  as one fused group, split into one shard per core (``FusedTrainer``s of K/2 stacked models, side by
  side in two threads, one torch thread each; sharding changes no model's numbers);
- ``serial``:  Sturgeon one at a time: the built-in unfused ``sturgeon.train.Trainer`` in a plain loop;
- ``optuna1``: Optuna with the K configurations enqueued (``study.enqueue_trial``), the same Trainer as
  objective, each epoch's dev error sent with ``trial.report``, ``n_jobs=1``;
- ``optuna2``: the same with ``n_jobs=2`` (two trials in two threads of one process);
- ``ray``:     Ray Tune on 2 CPUs, one CPU per trial, a function trainable around the same Trainer that
  reports every epoch.

Configurations share one architecture, so all K fuse into ONE group: an MLP 2x128 (relu, He init), batch 64,
Adam, float32, dropout off, seed 0 for every model; Sturgeon's RandomSampler(seed=0) draws per model
lr (log, [1e-4, 3e-2]), beta1 (reverse_log, [0.8, 0.99]), beta2 (reverse_log, [0.99, 0.9999]) and
l2 (log, [1e-6, 1e-3]). ``--model cnn`` swaps in the built-in CNN (2 conv layers of 16 maps, same head).

Printed: model-epochs/s of each system, the ratio of fused to each, the best configuration each found
(lowest final dev error, ties broken by final dev cost) which must agree, and the fused engine's
GFLOP/s as a fraction of this machine's float32 sgemm rate measured at the same thread count. At the end a
markdown table for BENCHMARKS.md, and the machine and library versions. Exit status 1 if the systems
disagree on the best configuration.

Which systems run at which K: ``--peers`` takes a list for every K and ``K=list`` items for one K. Default:
all five at K <= 64, and ``fused,serial`` at larger K (``256=fused,serial``): Optuna and Ray at 256 repeat
the serial work with their own overhead on top (on the 2-core machine, all five at K = 256 take ~3 minutes
on digits and ~8 on mnist1d; run them with ``--peers 256=all``); nothing is extrapolated, a system that
did not run is not in the table.

    python bench/caviar.py                                       # K = 64 and 256, 10 epochs, both datasets
    python bench/caviar.py --quick                               # K = 8, 2 epochs: a smoke test
    python bench/caviar.py --models 64 --datasets digits --peers fused,serial,ray
    python bench/caviar.py --models 256 --peers 256=fused,serial,optuna2

Every system is timed once, from building its trainers to its last epoch (Ray: ``Tuner.fit``, with
``ray.init`` outside the timing), after one untimed warm-up epoch of the Trainer that loads torch's kernels.
Threads: ``serial`` and ``optuna1`` run with ``torch.set_num_threads(2)``; ``fused`` (two shards), ``optuna2``
and ``ray`` run two trainings side by side, each on one thread. Ray Tune gets ``reuse_actors=True`` (its own speed-up for
short trials; without it each trial starts a fresh process and Ray runs ~6x slower here).

The machine must be otherwise idle: a 2-thread run whose second core is taken by another process waits at
every parallel region and can run 50x slower. Each run prints the CPU-seconds other processes used meanwhile,
the report warns about runs where that exceeds 5%, and sgemm is measured again at the end. On a shared
machine ``--wait-quiet 120`` starts each run (and each sgemm measurement) in a quiet moment.

Agreement is exact only up to float32 rounding: after one epoch the fused and unfused curves agree to ~1e-7
(float64: ~1e-15), but training amplifies rounding, as it does between 1 and 2 threads of the same Trainer,
so near-ties (one dev example apart) can be broken differently.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from sturgeon import Float, RandomSampler, Space
from sturgeon.train import Dataset, Network, Trainer, TrainParams, load_data
from sturgeon.train.model import LayerKind
from sturgeon.trial import Direction

PEERS = ("fused", "serial", "optuna1", "optuna2", "ray")
LABELS = {
    "fused": "Sturgeon fused (caviar)",
    "serial": "Sturgeon one at a time",
    "optuna1": "Optuna, n_jobs=1",
    "optuna2": "Optuna, n_jobs=2",
    "ray": "Ray Tune, 2 CPUs",
}
THREADS = 2  # the machine's cores: threads of serial and optuna1, shards of fused, trials side by side of optuna2 and ray
SPACE = Space(
    lr=Float(1e-4, 3e-2, scale="log"),
    beta1=Float(0.8, 0.99, scale="reverse_log"),
    beta2=Float(0.99, 0.9999, scale="reverse_log"),
    l2=Float(1e-6, 1e-3, scale="log"),
)
Metrics = dict[str, float]


@dataclass
class Run:
    """One system's run over K configurations: wall seconds and each configuration's per-epoch metrics."""

    peer: str
    seconds: float
    other_cpu: float = 0.0  # CPU-seconds other processes used during the run (Ray: its workers included)
    curves: dict[int, list[Metrics]] = field(default_factory=dict)  # config index -> metrics of each epoch

    def best(self) -> tuple[int, float]:
        """(index, final dev error) of the best configuration: lowest final dev error, then dev cost."""
        final = {i: c[-1] for i, c in self.curves.items()}
        i = min(final, key=lambda i: (final[i]["dev_error"], final[i]["dev_cost"], i))
        return i, final[i]["dev_error"]


# --- configurations and cost model ---------------------------------------------------------------


def make_configs(k: int, epochs: int, model: str) -> list[dict[str, Any]]:
    """K flat Trainer params: a fixed architecture (one fused group) and sampled optimizer settings."""
    base: dict[str, Any] = {
        "model": model, "hidden": [128, 128], "activation": "relu", "init": "he", "batch_norm": False,
        "optimizer": "adam", "batch_size": 64, "dtype": "float32", "seed": 0, "keep_prob": 1.0,
        "epochs": epochs,
    }  # fmt: skip
    if model == "cnn":
        base["channels"] = 16
    sampler = RandomSampler(seed=0)
    return [{**base, **sampler.sample(SPACE, i, [], Direction.MINIMIZE)} for i in range(k)]


def flops_per_model_epoch(data: Dataset, config: dict[str, Any]) -> float:
    """FLOPs of one model-epoch (multiply-add = 2), elementwise work (activations, Adam, loss) ignored.

    Per example, the forward pass costs F = 2 * sum over dense layers of (in * out)
                                         + 2 * sum over conv layers of (out_positions * C_out * C_in * kernel);
    the backward pass costs 2F (gradient w.r.t. the input and w.r.t. the weights). So
        training   = 3F * N_train           (= 6 * N_train * sum(in * out) for an MLP)
        evaluation =  F * (N_train + N_dev) (= 2 * (N_train + N_dev) * sum(in * out); Trainer.step measures
                                             train and dev cost and error after every epoch)
    Conv layers keep their input's size (padding 1) and max pool 2 (ceil) halves it afterwards.
    """
    net = Network(TrainParams.from_dict(config), data.shape, data.n_classes)
    spatial = list(data.shape[1:]) if len(data.shape) == 3 else list(data.shape)
    forward = 0.0
    for layer in net.layers:
        if layer.kind is LayerKind.CONV:
            forward += 2 * math.prod(spatial) * math.prod(layer.shape)  # shape = (C_out, C_in, *kernel)
            spatial = [math.ceil(s / 2) for s in spatial]
        else:
            forward += 2 * math.prod(layer.shape)  # shape = (out, in)
    n_train, n_dev = len(data.y_train), len(data.y_dev)
    return 3 * forward * n_train + forward * (n_train + n_dev)


def sgemm_gflops(threads: int, n: int = 2048, repeats: int = 7) -> float:
    """Best-of-``repeats`` rate of a float32 (n x n) @ (n x n) torch.mm at ``threads`` threads, in GFLOP/s."""
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    c = torch.mm(a, b)  # warm-up
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b, out=c)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


# --- the systems ---------------------------------------------------------------------------------


def run_fused(data: Dataset, configs: list[dict[str, Any]], epochs: int) -> Run:
    from sturgeon.caviar import Shards

    run = Run("fused", 0.0, curves={i: [] for i in range(len(configs))})
    t0 = time.perf_counter()
    ft = Shards(data, configs, n=THREADS)  # as `sturgeon tune` runs a group: one shard per core
    try:
        for _ in range(epochs):
            metrics = ft.step()
            for i, m in zip(ft.active, metrics, strict=True):
                run.curves[i].append(dict(m))
    finally:
        ft.close()
    run.seconds = time.perf_counter() - t0
    torch.set_num_threads(THREADS)
    missing = [i for i, c in run.curves.items() if len(c) != epochs]
    if missing:  # the benchmark has no early stopping: every model must train every epoch
        raise RuntimeError(f"The fused engine stopped models {missing[:10]} before epoch {epochs}.")
    return run


def train_one(data: Dataset, config: dict[str, Any], epochs: int, report: Callable[[Metrics], None]) -> None:
    trainer = Trainer(data)
    trainer.setup(config)
    for _ in range(epochs):
        report(trainer.step())


def run_serial(data: Dataset, configs: list[dict[str, Any]], epochs: int) -> Run:
    torch.set_num_threads(THREADS)
    run = Run("serial", 0.0)
    t0 = time.perf_counter()
    for i, config in enumerate(configs):
        run.curves[i] = []
        train_one(data, config, epochs, run.curves[i].append)
    run.seconds = time.perf_counter() - t0
    return run


def run_optuna(data: Dataset, configs: list[dict[str, Any]], epochs: int, n_jobs: int) -> Run:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # Two trials side by side on 2 cores: each must use one thread, or 2 x 2 threads fight over 2 cores
    # (oversubscription makes both slower than one at a time). One trial at a time gets both cores.
    threads = THREADS if n_jobs == 1 else 1
    torch.set_num_threads(threads)
    curves: dict[int, list[Metrics]] = {}

    def objective(trial: optuna.Trial) -> float:
        torch.set_num_threads(threads)  # per trial, as a user must: the setting is per thread under OpenMP
        i = int(trial.user_attrs["i"])
        config = {
            **configs[i],
            "lr": trial.suggest_float("lr", 1e-4, 3e-2, log=True),
            "beta1": trial.suggest_float("beta1", 0.8, 0.99),  # Optuna has no 1 - beta scale; values are enqueued
            "beta2": trial.suggest_float("beta2", 0.99, 0.9999),
            "l2": trial.suggest_float("l2", 1e-6, 1e-3, log=True),
        }
        curve = curves.setdefault(i, [])

        def report(m: Metrics) -> None:
            curve.append(m)
            trial.report(m["dev_error"], step=int(m["epoch"]))

        train_one(data, config, epochs, report)
        return curve[-1]["dev_error"]

    t0 = time.perf_counter()
    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.RandomSampler(seed=0),
                                pruner=optuna.pruners.NopPruner())  # fmt: skip
    for i, config in enumerate(configs):
        study.enqueue_trial({k: config[k] for k in SPACE.names}, user_attrs={"i": i})
    study.optimize(objective, n_trials=len(configs), n_jobs=n_jobs)
    seconds = time.perf_counter() - t0
    torch.set_num_threads(THREADS)
    for t in study.trials:  # the enqueued values must have come back unchanged
        i = int(t.user_attrs["i"])
        assert all(t.params[k] == configs[i][k] for k in SPACE.names), (i, t.params)
    return Run(f"optuna{n_jobs}", seconds, curves=curves)


def ray_trainable(config: dict[str, Any], data: Dataset, configs: list[dict[str, Any]], epochs: int) -> None:
    from ray import tune

    # Two trials side by side on 2 cores (one CPU each): one thread per trial, never 2 x 2 threads.
    torch.set_num_threads(1)
    i = config["i"]
    train_one(data, configs[i], epochs, lambda m: tune.report({**m, "i": i}))


def run_ray(data: Dataset, configs: list[dict[str, Any]], epochs: int, storage: str) -> Run:
    from ray import tune

    trainable = tune.with_resources(
        tune.with_parameters(ray_trainable, data=data, configs=configs, epochs=epochs), {"cpu": 1}
    )
    tuner = tune.Tuner(
        trainable,
        param_space={"i": tune.grid_search(list(range(len(configs))))},
        # reuse_actors: Ray 2.x starts a fresh worker process per trial by default (importing torch each
        # time); reusing them is Ray's documented speed-up for many short trials, so the peer gets it.
        tune_config=tune.TuneConfig(metric="dev_error", mode="min", reuse_actors=True),
        run_config=tune.RunConfig(name=f"caviar-{time.time_ns()}", storage_path=storage, verbose=0),
    )
    t0 = time.perf_counter()
    results = tuner.fit()
    seconds = time.perf_counter() - t0
    if results.errors:
        raise RuntimeError(f"Ray Tune trials failed: {results.errors[:3]}")
    curves: dict[int, list[Metrics]] = {}
    keys = ("epoch", "lr", "train_cost", "train_error", "dev_cost", "dev_error")
    for result in results:
        df = result.metrics_dataframe.sort_values("epoch")
        curves[int(result.config["i"])] = [{k: float(row[k]) for k in keys} for _, row in df.iterrows()]
    return Run("ray", seconds, curves=curves)


# --- the benchmark -------------------------------------------------------------------------------


@dataclass
class Case:
    dataset: str
    k: int
    epochs: int
    flops: float  # per model-epoch
    runs: dict[str, Run] = field(default_factory=dict)

    @property
    def model_epochs(self) -> int:
        return self.k * self.epochs


def parse_peers(items: list[str]) -> dict[int | None, list[str]]:
    """``["fused,serial", "256=fused"]`` -> {None: [fused, serial], 256: [fused]}; "all" names every peer."""
    out: dict[int | None, list[str]] = {}
    for item in items:
        key, _, names = item.rpartition("=")
        peers = list(PEERS) if names == "all" else [n for n in names.split(",") if n]
        bad = [n for n in peers if n not in PEERS]
        if bad:
            raise SystemExit(f"The '--peers' parameter must name peers among {', '.join(PEERS)}. Got {bad} instead.")
        out[int(key) if key else None] = peers
    return out


def peers_for(k: int, table: dict[int | None, list[str]]) -> list[str]:
    if k in table:
        return table[k]
    if None in table:
        return table[None]
    return list(PEERS) if k <= 64 else ["fused", "serial"]


def cpu_seconds() -> tuple[float, float]:
    """(CPU-seconds the whole machine has been busy, CPU-seconds of this process) so far."""
    with open("/proc/stat") as f:
        ticks = [int(x) for x in f.readline().split()[1:]]
    idle = ticks[3] + ticks[4]  # idle + iowait
    own = os.times()
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK"), own.user + own.system


def wait_quiet(limit: float, idle: float = 0.1) -> float:
    """Wait (at most ``limit`` seconds) until other processes take under ``idle`` CPU-seconds in one second;
    returns the seconds waited. On a shared machine this starts each run in a quiet moment."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < limit:
        busy0, own0 = cpu_seconds()
        time.sleep(1.0)
        busy1, own1 = cpu_seconds()
        if (busy1 - busy0) - (own1 - own0) < idle:
            break
    return time.perf_counter() - t0


def run_case(case: Case, data: Dataset, configs: list[dict[str, Any]], peers: list[str], ray_dir: str,
             quiet: float = 0.0) -> None:
    for peer in PEERS:
        if peer not in peers:
            continue
        if quiet:
            wait_quiet(quiet)
        print(f"  {case.dataset} K={case.k}: {peer} ...", end="", flush=True)
        busy0, own0 = cpu_seconds()
        if peer == "fused":
            run = run_fused(data, configs, case.epochs)
        elif peer == "serial":
            run = run_serial(data, configs, case.epochs)
        elif peer.startswith("optuna"):
            run = run_optuna(data, configs, case.epochs, n_jobs=int(peer[-1]))
        else:
            run = run_ray(data, configs, case.epochs, ray_dir)
        assert sorted(run.curves) == list(range(case.k)), f"{peer} did not return every configuration"
        case.runs[peer] = run
        busy1, own1 = cpu_seconds()
        # The benchmark needs the machine to itself: CPU time of other processes during the run means the
        # figure is too low (a 2-thread run waits at every barrier for a thread that lost its core).
        other = run.other_cpu = (busy1 - busy0) - (own1 - own0)
        i, err = run.best()
        print(f" {run.seconds:.1f} s, {case.model_epochs / run.seconds:.1f} model-epochs/s, best #{i} dev {err:.4f}; "
              f"other processes{' (Ray workers included)' if peer == 'ray' else ''}: {other:.1f} CPU-s")


def agreement(case: Case) -> list[str]:
    """Lines describing disagreements on the best configuration (empty when all agree)."""
    ref_name = "serial" if "serial" in case.runs else next(iter(case.runs))
    ref = case.runs[ref_name]
    ref_best, _ = ref.best()
    problems = []
    for name, run in case.runs.items():
        i, _ = run.best()
        if i != ref_best:
            a, b = ref.curves, run.curves
            problems.append(
                f"{case.dataset} K={case.k}: {name} picks #{i}, {ref_name} picks #{ref_best}; "
                f"final dev error/cost of #{ref_best}: {ref_name} {a[ref_best][-1]['dev_error']:.4f}/"
                f"{a[ref_best][-1]['dev_cost']:.5f}, {name} {b[ref_best][-1]['dev_error']:.4f}/"
                f"{b[ref_best][-1]['dev_cost']:.5f}; of #{i}: {ref_name} {a[i][-1]['dev_error']:.4f}/"
                f"{a[i][-1]['dev_cost']:.5f}, {name} {b[i][-1]['dev_error']:.4f}/{b[i][-1]['dev_cost']:.5f}"
            )
    return problems


def deviation(case: Case, name: str) -> str:
    """How far a system's curves are from serial's. After epoch 1 float32 rounding alone gives ~1e-7; it then
    grows with every epoch (as it does between 1 and 2 threads of the same trainer), so final dev errors
    can differ by an example or two."""
    if name == "serial" or "serial" not in case.runs:
        return ""
    ref, run = case.runs["serial"].curves, case.runs[name].curves
    first = max(abs(run[i][0]["dev_cost"] - ref[i][0]["dev_cost"]) / abs(ref[i][0]["dev_cost"]) for i in ref)
    last = max(abs(run[i][-1]["dev_cost"] - ref[i][-1]["dev_cost"]) / abs(ref[i][-1]["dev_cost"]) for i in ref)
    differ = sum(ref[i][-1]["dev_error"] != run[i][-1]["dev_error"] for i in ref)
    return (f"max relative dev_cost difference {first:.1e} after epoch 1, {last:.1e} after the last; "
            f"final dev error differs in {differ}/{len(ref)} configs")


def versions() -> str:
    import optuna

    parts = [f"python {platform.python_version()}", f"torch {torch.__version__}", f"optuna {optuna.__version__}",
             f"numpy {np.__version__}"]  # fmt: skip
    try:
        import ray

        parts.append(f"ray {ray.__version__}")
    except ImportError:
        parts.append("ray not installed")
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"machine: {cpu}, {os.cpu_count()} cores; " + ", ".join(parts)


def report(cases: list[Case], sgemm: float, model: str) -> None:
    print("\n" + versions())
    print(f"sgemm (float32 2048x2048 torch.mm, best of 7 before and after, {THREADS} threads): {sgemm:.1f} GFLOP/s")
    arch = "MLP 2x128" if model == "mlp" else "CNN 2 conv x 16 maps + 2x128 head"
    print(f"model: {arch}, relu, He, batch 64, Adam, float32; best = lowest final dev error, ties by dev cost\n")
    print("| data | K | epochs | system | s | model-epochs/s | fused is | best config | best dev error |")
    print("|---|---:|---:|---|---:|---:|---:|---:|---:|")
    for case in cases:
        fused = case.runs.get("fused")
        for name, run in case.runs.items():
            rate = case.model_epochs / run.seconds
            ratio = f"{run.seconds / fused.seconds:.2f}×" if fused else "–"
            i, err = run.best()
            label = f"**{LABELS[name]}**" if name == "fused" else LABELS[name]
            print(f"| {case.dataset} | {case.k} | {case.epochs} | {label} | {run.seconds:.1f} | {rate:.1f} "
                  f"| {ratio} | #{i} | {err:.4f} |")  # fmt: skip
    print("\n| data | K | GFLOP/model-epoch | fused GFLOP/s | of sgemm |")
    print("|---|---:|---:|---:|---:|")
    for case in cases:
        if "fused" in case.runs:
            gflops = case.flops * case.model_epochs / case.runs["fused"].seconds / 1e9
            print(f"| {case.dataset} | {case.k} | {case.flops / 1e9:.3f} | {gflops:.1f} | {gflops / sgemm:.0%} |")
    print()
    for case in cases:
        for name, run in case.runs.items():
            if name != "ray" and run.other_cpu > 0.05 * THREADS * run.seconds:
                print(f"WARNING: other processes used {run.other_cpu:.1f} CPU-s during {case.dataset} K={case.k} "
                      f"{name} ({run.seconds:.1f} s): its figure is too low; rerun it on a quiet machine")
    for case in cases:
        for name in case.runs:
            if d := deviation(case, name):
                print(f"{case.dataset} K={case.k} {name} vs serial: {d}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--datasets", nargs="+", default=["digits", "mnist1d"])
    ap.add_argument("--peers", nargs="+", default=["64=all", "256=fused,serial"],
                    help="'a,b,..' for every K and/or 'K=a,b,..' for one K; 'all' = " + ",".join(PEERS))
    ap.add_argument("--model", choices=["mlp", "cnn"], default="mlp")
    ap.add_argument("--quick", action="store_true", help="K = 8, 2 epochs, every peer: a smoke test")
    ap.add_argument("--wait-quiet", type=float, default=0.0, metavar="S",
                    help="before each run, wait up to S seconds for other processes to go quiet (shared machines)")
    args = ap.parse_args()
    if args.quick:
        args.models, args.epochs, args.peers = [8], 2, ["all"]
    table = parse_peers(args.peers)

    # 1) the machine's ceiling, at the fused run's thread count
    if args.wait_quiet:
        wait_quiet(args.wait_quiet)
    sgemm = sgemm_gflops(THREADS)
    print(f"sgemm: {sgemm:.1f} GFLOP/s at {THREADS} threads")
    # 2) Ray once for all cases, outside the timings (a short temp dir: Ray's socket paths must stay short)
    use_ray = any("ray" in peers_for(k, table) for k in args.models)
    work = tempfile.mkdtemp(prefix="cvb", dir="/tmp")
    if use_ray:
        import ray

        os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
        ray.init(num_cpus=THREADS, _temp_dir=os.path.join(work, "ray"), include_dashboard=False,
                 log_to_driver=False)  # fmt: skip
    # 3) every dataset and K, each system in turn
    cases = []
    for name in args.datasets:
        data = load_data(name)
        torch.set_num_threads(THREADS)
        train_one(data, make_configs(1, 1, args.model)[0], 1, lambda m: None)  # warm-up, untimed
        for k in args.models:
            configs = make_configs(k, args.epochs, args.model)
            case = Case(name, k, args.epochs, flops_per_model_epoch(data, configs[0]))
            run_case(case, data, configs, peers_for(k, table), os.path.join(work, "results"), args.wait_quiet)
            cases.append(case)
    if use_ray:
        import ray

        ray.shutdown()
        time.sleep(5)  # let Ray's processes exit before measuring the ceiling again
    shutil.rmtree(work, ignore_errors=True)
    # 4) the ceiling again: a different figure means something else ran on the machine meanwhile
    if args.wait_quiet:
        wait_quiet(args.wait_quiet)
    after = sgemm_gflops(THREADS)
    busy = abs(after - sgemm) > 0.1 * sgemm
    print(f"sgemm after the runs: {after:.1f} GFLOP/s" + ("  (WARNING: the machine was busy)" if busy else ""))
    sgemm = max(sgemm, after)  # the ceiling: the better of the two
    # 5) the tables and the agreement check
    report(cases, sgemm, args.model)
    problems = [line for case in cases for line in agreement(case)]
    print("\nbest configuration: " + ("all systems agree" if not problems else "MISMATCH"))
    for line in problems:
        print("  " + line)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
