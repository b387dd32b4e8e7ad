"""Panda overhead: what babysitting costs per epoch — an exact checkpoint every epoch, the command queue
polled at every boundary, each epoch's metrics committed to SQLite — against the same training alone.

Four ways to train the same run, one after another in each round (in a rotating order), so that machine
noise hits them alike. Each epoch is timed from the end of the one before (so setup, the first checkpoint
and the final flush are left out: they are paid once per run, not per epoch); a way's time in a round is
its median epoch, and each ratio is taken within a round, then its median over the rounds is reported
(with the middle half of the rounds, to show the noise). The time inside ``Trainer.step()`` is recorded
too, which splits an overhead into work added on the training thread (outside ``step``: nearly free of
noise) and training itself made slower (cache misses, the copier on the other core):

- **alone**: ``Trainer.step()`` in a loop: no store, no checkpoint (the floor);
- **torch.save by hand**: the loop plus ``torch.save(trainer.save(), path)`` each epoch, synchronously:
  what a script (or a tuner's checkpoint callback) does to be able to go back;
- **metrics to the store**: the loop reporting each epoch's metrics to a Study, as any tuned trial does;
- **panda**: ``Run.train`` — a checkpoint every epoch (copied to disk by a helper process), retention,
  command polling, metrics and events in the store.

    python bench/panda.py --clock cpu              # digits MLP 2x128, 30 epochs, 7 rounds
    python bench/panda.py --clock cpu --units 64 --optimizer adam --rounds 16
"""
from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from sturgeon.panda import PandaSettings, Run, write_state
from sturgeon.panda.checkpoints import read_state
from sturgeon.store import SQLiteStore
from sturgeon.train import Trainer, load_data

CLOCK = time.perf_counter  # --clock cpu: time.thread_time, the training thread's own CPU time


STEPS: list[float] = []  # the time of each Trainer.step() of the way being run


class Timed(Trainer):
    """The built-in trainer, timing its own epochs."""

    def step(self) -> dict[str, float]:
        t0 = CLOCK()
        metrics = super().step()
        STEPS.append(CLOCK() - t0)
        return metrics


def intervals(marks: list[float]) -> list[float]:
    return [b - a for a, b in zip(marks, marks[1:])]


def alone(data, params: dict, epochs: int) -> list[float]:
    t = Timed(data)
    t.setup(params)
    marks = [CLOCK()]
    for _ in range(epochs):
        t.step()
        marks.append(CLOCK())
    return intervals(marks)


def reporting(data, params: dict, epochs: int, folder: Path, name: str) -> list[float]:
    """The loop plus each epoch's metrics committed to the store, as every tuned trial does (the learning
    curve): the baseline for what panda adds — checkpoints and command polling."""
    from sturgeon import Float, Space, Study

    study = Study(name, Space(lr=Float(1e-4, 1.0, scale="log")), metric="dev_error", store=folder / "tune.db")
    trial = study.ask()
    t = Timed(data)
    t.setup(params)
    marks = [CLOCK()]
    for e in range(epochs):
        trial.report(e, **t.step())
        marks.append(CLOCK())
    study.tell(trial, 0.0)
    return intervals(marks)


def by_hand(data, params: dict, epochs: int, folder: Path) -> list[float]:
    t = Timed(data)
    t.setup(params)
    marks = [CLOCK()]
    for e in range(epochs):
        t.step()
        torch.save(t.save(), folder / f"epoch-{e + 1}.pt")
        marks.append(CLOCK())
    return intervals(marks)


def panda(data, params: dict, epochs: int, folder: Path, name: str) -> list[float]:
    run = Run.create(name, params, store=SQLiteStore(folder / "panda.db"), settings=PandaSettings(epochs=epochs))
    marks: list[float] = []
    status = run.train(lambda: Timed(data), on_epoch=lambda s: marks.append(CLOCK()))
    assert status.epoch == epochs
    return intervals(marks)


def parts(data, params: dict, folder: Path) -> dict[str, float]:
    """Microseconds per epoch of each piece panda adds, measured one by one."""
    t = Trainer(data)
    t.setup(params)
    t.step()
    store = SQLiteStore(folder / "parts.db")
    run = Run.create("parts", params, store=store, settings=PandaSettings(epochs=1))
    n, out = 200, {}
    t0 = time.perf_counter()
    for _ in range(n):
        state = t.save()
    out["Trainer.save(), a copy (panda does not call it: it copies state_split()'s tensors once)"] = (
        (time.perf_counter() - t0) / n * 1e6)
    t0 = time.perf_counter()
    for _ in range(n):
        t.state_split()
    out["Trainer.state_split()"] = (time.perf_counter() - t0) / n * 1e6
    t0 = time.perf_counter()
    for i in range(n):
        write_state({"trainable": state, "params": params, "epoch": i}, folder / "w.ckpt")
    out["write_state, synchronous (for comparison)"] = (time.perf_counter() - t0) / n * 1e6
    t0 = time.perf_counter()
    for _ in range(n):
        torch.save(state, folder / "w.pt")
    out["torch.save (for comparison)"] = (time.perf_counter() - t0) / n * 1e6
    t0 = time.perf_counter()
    for _ in range(n):
        read_state(folder / "w.ckpt")
    out["read_state (a rollback)"] = (time.perf_counter() - t0) / n * 1e6
    from sturgeon.store import CommandState

    t0 = time.perf_counter()
    for _ in range(n):
        store.commands(run.study_id, CommandState.PENDING)
    out["query the command queue (only when the signal moved)"] = (time.perf_counter() - t0) / n * 1e6
    t0 = time.perf_counter()
    for _ in range(n):
        store.commands_version(run.study_id)
    out["read the command signal (every boundary: a memory read)"] = (time.perf_counter() - t0) / n * 1e6
    store.add_trial(run.study_id, 0, params, time.time())
    t0 = time.perf_counter()
    for i in range(n):
        store.add_report(run.study_id, 0, i, {"train_cost": 0.1, "dev_error": 0.05})
    out["commit one epoch's metrics"] = (time.perf_counter() - t0) / n * 1e6
    return out


def quartiles(xs: list[float]) -> tuple[float, float, float]:
    if len(xs) == 1:
        return xs[0], xs[0], xs[0]
    q1, q2, q3 = statistics.quantiles(xs, n=4, method="inclusive")
    return q1, q2, q3


def breakdown(data, params: dict, epochs: int, rounds: int, folder: Path) -> dict[str, float]:
    """Median µs of training-thread CPU time per call of each piece of an epoch boundary, inside real panda
    runs, where the epoch has just left the caches cold (each piece costs 2-4x its tight-loop time). Every
    timed call adds ~1 µs of its own."""
    from sturgeon.panda import checkpoints, session

    pieces = {
        "Session._checkpoint (all of the checkpoint)": (session.Session, "_checkpoint"),
        "  Trainer.state_split": (Trainer, "state_split"),
        "  layout check (dtype, shape of each tensor)": (checkpoints, "_layout"),
        "  torch._foreach_copy_ into the staging map": (torch, "_foreach_copy_"),
        "  marshal.dumps of the skeleton": (checkpoints.marshal, "dumps"),
        "  the record to the copier (pipe write)": (checkpoints.CheckpointWriter, "_send"),
        "  waiting for the previous copy (flush)": (checkpoints.CheckpointWriter, "flush"),
        "Session._retain": (session.Session, "_retain"),
        "Session._apply_commands (polling)": (session.Session, "_apply_commands"),
        "Session._after_epoch (divergence check)": (session.Session, "_after_epoch"),
        "SQLiteStore.add_report (a tune trial does it too)": (SQLiteStore, "add_report"),
    }
    calls: dict[str, list[float]] = {label: [] for label in pieces}
    originals = {label: getattr(owner, name) for label, (owner, name) in pieces.items()}

    def timed(label: str, f):  # type: ignore[no-untyped-def]
        def g(*a, **k):  # type: ignore[no-untyped-def]
            t0 = time.thread_time_ns()
            try:
                return f(*a, **k)
            finally:
                calls[label].append((time.thread_time_ns() - t0) / 1e3)
        return g

    try:
        for label, (owner, name) in pieces.items():
            setattr(owner, name, timed(label, originals[label]))
        for r in range(rounds):
            run = Run.create(f"b{r}", params, store=SQLiteStore(folder / "breakdown.db"),
                             settings=PandaSettings(epochs=epochs))
            run.train(lambda: Trainer(data))
    finally:
        for label, (owner, name) in pieces.items():
            setattr(owner, name, originals[label])
    return {label: statistics.median(v[len(v) // rounds:]) for label, v in calls.items() if v}  # skip round 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--units", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--optimizer", default="momentum", help="momentum (default) or adam, sgd, rmsprop")
    ap.add_argument("--breakdown", action="store_true",
                    help="also time each piece of an epoch boundary inside real panda runs")
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                    help="cpu: the training thread's CPU time (time.thread_time), blind to other processes "
                         "taking the core away, which on a shared 2-core VM moves wall times by +-10 %%")
    args = ap.parse_args()
    global CLOCK
    CLOCK = time.thread_time if args.clock == "cpu" else time.perf_counter
    torch.set_num_threads(args.threads)
    data = load_data("digits")
    params = {"optimizer": args.optimizer, "lr": 0.05 if args.optimizer != "adam" else 0.003, "momentum": 0.9,
              "units": args.units, "layers": 2, "seed": 0}
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {args.threads} thread(s); "
          f"digits MLP 2x{args.units}, {args.optimizer}, batch 64; {args.epochs} epochs x {args.rounds} rounds; "
          f"{args.clock} clock")
    tune = "metrics to the store (a tune trial)"
    epoch: dict[str, list[float]] = {"alone": [], tune: [], "torch.save by hand": [], "panda": []}  # per round
    outside: dict[str, list[float]] = {way: [] for way in epoch}  # per round: median of epoch minus its step
    inside: dict[str, list[float]] = {way: [] for way in epoch}  # per round: median step
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        alone(data, params, 3)  # warm-up
        ways = {
            "alone": lambda r: alone(data, params, args.epochs),
            tune: lambda r: reporting(data, params, args.epochs, folder, f"t{r}"),
            "torch.save by hand": lambda r: by_hand(data, params, args.epochs, folder),
            "panda": lambda r: panda(data, params, args.epochs, folder, f"r{r}"),
        }
        names = list(ways)
        for r in range(args.rounds):
            for way in names[r % 4:] + names[: r % 4]:  # each way takes each place in the order in turn
                STEPS.clear()
                ts = ways[way](r)
                steps = STEPS[-len(ts):]  # the steps of the timed epochs (panda trains none before them)
                epoch[way].append(statistics.median(ts))
                outside[way].append(statistics.median(t - s for t, s in zip(ts, steps)))
                inside[way].append(statistics.median(steps))
        pieces = parts(data, params, folder)
        inside_runs = breakdown(data, params, args.epochs, max(2, args.rounds // 2), folder) if args.breakdown else {}

    def ratio(a: str, b: str) -> tuple[float, float, float]:
        return quartiles([x / y - 1 for x, y in zip(epoch[a], epoch[b])])

    print("\n| way | ms/epoch (median of rounds) | vs alone, median of rounds [middle half] | "
          "ms in step() | µs/epoch outside step() |\n|---|---:|---:|---:|---:|")
    for way in epoch:
        q1, q2, q3 = ratio(way, "alone")
        print(f"| {way} | {statistics.median(epoch[way]) * 1e3:.2f} | {q2 * 100:+.1f} % [{q1 * 100:+.1f}, "
              f"{q3 * 100:+.1f}] | {statistics.median(inside[way]) * 1e3:.2f} | "
              f"{statistics.median(outside[way]) * 1e6:.0f} |")
    q1, q2, q3 = ratio("panda", tune)
    added = [(p - t) / a for p, t, a in zip(outside["panda"], outside[tune], epoch["alone"])]
    print(f"\ncheckpoint + command polling, panda vs a tune trial: **{q2 * 100:+.1f} %** of epoch time "
          f"[{q1 * 100:+.1f}, {q3 * 100:+.1f}]; of which work on the training thread outside step(): "
          f"{statistics.median(added) * 100:+.1f} %")
    print("\n| piece, in a tight loop | µs per epoch |\n|---|---:|")
    for piece, us in pieces.items():
        print(f"| {piece} | {us:.0f} |")
    if inside_runs:
        print("\n| piece, inside panda runs (training-thread CPU, median) | µs per epoch |\n|---|---:|")
        for piece, us in inside_runs.items():
            print(f"| {piece} | {us:.0f} |")


if __name__ == "__main__":
    main()
