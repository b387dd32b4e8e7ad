"""End to end: ``sturgeon tune`` on the built-in examples, best dev error of each sampler, seed by seed.

Each (example, sampler, seed) is one ``sturgeon tune`` run from the command line, exactly as a user runs it:
the example's config with ``[study] n_trials``, ``seed`` and ``store`` set and its ``[sampler]`` table replaced
by ``{type = <sampler>}``; every run has its own SQLite file in a temporary folder. The table gives the best
``dev_error`` of each run, the median per sampler, and the wall time.

    python bench/tune_default.py                                   # digits and mnist1d, 30 trials, 5 seeds
    python bench/tune_default.py --examples digits --seeds 2 --trials 10 --samplers random,auto
"""
from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sturgeon import Study

ROOT = Path(__file__).resolve().parent.parent


def config_for(example: str, sampler: str, seed: int, trials: int, store: Path) -> str:
    """The example's config text with the study's size, seed, store and sampler replaced."""
    text = (ROOT / "examples" / f"{example}.toml").read_text(encoding="utf-8")
    text = re.sub(r"(?m)^n_trials = .*$", f"n_trials = {trials}", text, count=1)
    text = re.sub(r"(?m)^seed = .*$", f"seed = {seed}", text, count=1)
    text = re.sub(r"(?m)^store = .*$", f'store = "{store.as_posix()}"', text, count=1)
    # the [sampler] table up to the next table
    return re.sub(r"(?ms)^\[sampler\].*?(?=^\[)", f'[sampler]\ntype = "{sampler}"\n\n', text, count=1)


def run(example: str, sampler: str, seed: int, trials: int, work: Path) -> tuple[float, float]:
    """One ``sturgeon tune`` run: (best dev error, seconds)."""
    store = work / f"{example}-{sampler}-{seed}.db"
    cfg = work / f"{example}-{sampler}-{seed}.toml"
    cfg.write_text(config_for(example, sampler, seed, trials, store), encoding="utf-8")
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "sturgeon", "tune", str(cfg), "--quiet"], check=True,
                   stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - t0
    name = re.search(r'(?m)^name = "(.*)"$', cfg.read_text(encoding="utf-8"))
    assert name is not None
    study = Study.load(name.group(1), store, readonly=True)
    best = study.best
    assert best is not None and best.value is not None
    return float(best.value), seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--examples", default="digits,mnist1d")
    ap.add_argument("--samplers", default="random,auto")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--trials", type=int, default=30)
    args = ap.parse_args()
    samplers = args.samplers.split(",")
    print(f"sturgeon tune, {args.trials} trials, seeds 0..{args.seeds - 1}: best dev_error per run")
    with tempfile.TemporaryDirectory() as tmp:
        for example in args.examples.split(","):
            print(f"\n### {example}\n\n| sampler | " + " | ".join(f"seed {s}" for s in range(args.seeds))
                  + " | median | s/run |\n|---|" + "---:|" * (args.seeds + 2))
            for sampler in samplers:
                results = [run(example, sampler, s, args.trials, Path(tmp)) for s in range(args.seeds)]
                best = [b for b, _ in results]
                secs = statistics.mean(t for _, t in results)
                print(f"| {sampler} | " + " | ".join(f"{b:.4f}" for b in best)
                      + f" | **{statistics.median(best):.4f}** | {secs:.0f} |", flush=True)


if __name__ == "__main__":
    main()
