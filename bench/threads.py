"""Torch threads per unfused trial: one thread each with trials side by side, or one trial on every core?

Measures (a) the built-in trainer's epoch time at 1 and 2 torch threads for a few digits MLPs, and (b) a whole
unfused study (``[caviar] fused = false``) run by ``sturgeon tune`` with the old default (one trial at a time on
every core) and the new one (one thread per trial, ``n_jobs`` = cores). Each measurement runs in its own
process, since torch's thread count is per process. BENCHMARKS.md#threads records the figures.

    python bench/threads.py                  # about two minutes on 2 cores
    python bench/threads.py --epochs 5 --trials 32
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODELS = {  # name -> fixed trainer settings
    "2x128 bn, batch 32": {"hidden": [128, 128], "batch_norm": True, "batch_size": 32, "optimizer": "momentum"},
    "3x200, batch 64": {"hidden": [200, 200, 200], "batch_size": 64, "optimizer": "adam"},
    "2x64 adam (default)": {},
}

EPOCH = """
import json, sys, time, statistics, torch
from sturgeon.train import Trainer, load_data
torch.set_num_threads(int(sys.argv[1]))
t = Trainer(load_data("digits"))
t.setup({**json.loads(sys.argv[2]), "seed": 0})
t.step()  # warm-up
times = []
for _ in range(int(sys.argv[3])):
    t0 = time.perf_counter(); t.step(); times.append(time.perf_counter() - t0)
print(statistics.median(times) * 1e3)
"""

STUDY = """
[study]
name = "threads"
store = "s.db"
n_trials = {trials}
seed = 0
{jobs}
[data]
name = "digits"
[model]
epochs = {epochs}
batch_size = 32
batch_norm = true
[caviar]
fused = false
[space]
lr = {{ type = "float", lo = 1e-4, hi = 3e-2, scale = "log" }}
units = {{ type = "int", lo = 32, hi = 256, scale = "log" }}
layers = {{ type = "int", lo = 1, hi = 3 }}
"""


def epoch_ms(threads: int, fixed: dict[str, object], epochs: int) -> float:
    done = subprocess.run([sys.executable, "-c", EPOCH, str(threads), json.dumps(fixed), str(epochs)],
                          capture_output=True, text=True, check=True)
    return float(done.stdout.strip())


def study_seconds(jobs: str, trials: int, epochs: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "t.toml"
        cfg.write_text(STUDY.format(trials=trials, epochs=epochs, jobs=jobs))
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "sturgeon", "tune", str(cfg), "-q"], check=True,
                       stdout=subprocess.DEVNULL)
        return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=5, help="timed epochs per model (a)")
    ap.add_argument("--trials", type=int, default=16, help="trials of the study (b)")
    ap.add_argument("--study-epochs", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    cores = os.cpu_count() or 1
    print(f"{platform.processor() or platform.machine()}, {cores} cores, Python {platform.python_version()}")
    print("(a) epoch time of one trial, ms (median of rounds)")
    for name, fixed in MODELS.items():
        one = statistics.median(epoch_ms(1, fixed, args.epochs) for _ in range(args.rounds))
        many = statistics.median(epoch_ms(cores, fixed, args.epochs) for _ in range(args.rounds))
        print(f"  {name:22s} 1 thread {one:8.1f}   {cores} threads {many:8.1f}   ratio {many / one:5.2f}")
    print(f"(b) unfused study, {args.trials} trials x {args.study_epochs} epochs, s (median of rounds)")
    old = statistics.median(study_seconds(f"n_jobs = 1\nthreads = {cores}", args.trials, args.study_epochs)
                            for _ in range(args.rounds))
    new = statistics.median(study_seconds("", args.trials, args.study_epochs) for _ in range(args.rounds))
    print(f"  one trial at a time on {cores} threads {old:7.1f}")
    print(f"  default: {cores} trials side by side, 1 thread each {new:7.1f}   speed-up {old / new:5.2f}x")


if __name__ == "__main__":
    main()
