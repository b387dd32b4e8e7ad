"""``sturgeon panda``: babysit one run from the terminal — start it, watch it, change it while it trains.

Every command that changes a run goes through the store's queue, so it works from any terminal while the
run trains in another (or in the background), and it waits for the run when its process is down. Bad
input is one red line and exit code 2; a run that fails (its trainable raised) or diverges exits with 1.
"""
from __future__ import annotations

import json
import math
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer
from rich.console import Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from sturgeon.cli_common import STORE_OPTION, clean_errors, err, fmt, out
from sturgeon.panda import EventKind, Run, RunState, RunStatus, parse_assignments
from sturgeon.panda.session import WRITE_ERRORS
from sturgeon.store import CommandState, StoreError
from sturgeon.trial import TrialState

if TYPE_CHECKING:
    from sturgeon.config_panda import PandaConfig

panda_app = typer.Typer(
    help="Babysit one run: watch its curve each epoch, change lr or momentum while it trains, roll back.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
)

# Help text goes through rich markup: a literal "[" must be written "\\[" (rich took "[run]" for a style).
NAME = typer.Argument(..., help="The run's name, as given at start.")
CONFIG = typer.Argument(..., help="A panda run config (see examples/panda.toml).")
CHANGES = typer.Argument(None, help="Changes as name=value, e.g. lr=0.02 momentum=0.95.")
REASON = typer.Option("", "--reason", "-r", help="Why: kept in the run's event log.")
DETACH = typer.Option(False, "--detach", "-d", help="Train in a background process; its output goes to run.log.")


def _config_of(run: Run) -> PandaConfig:
    """The config a run was started from, rebuilt from the copy kept in the store."""
    from sturgeon.config_panda import panda_config_from

    raw, where = run.spec.attrs.get("config"), run.spec.attrs.get("config_path")
    if raw is None or where is None:
        raise StoreError(f"The run '{run.name}' was created from Python, not from a config; train it with "
                         "Run.open(...).train(make) from Python.")
    return panda_config_from(raw, Path(where))


def _train(run: Run, detach: bool, quiet: bool = False, epochs: int | None = None, worker: bool = False) -> None:
    """Train ``run`` here, printing a line per epoch, or in a detached worker process. A run that fails
    (the trainable raised) or diverges exits with code 1; the worker also logs the traceback."""
    if detach:
        _spawn(run, epochs)
        return
    cfg = _config_of(run)
    if cfg.threads is not None:
        import torch

        torch.set_num_threads(cfg.threads)

    shown_branch = [run.status().branch]

    def line(s: RunStatus) -> None:
        if s.branch != shown_branch[0]:  # a rollback (the babysitter's, or a person's): say so before its epochs
            shown_branch[0] = s.branch
            fork = [e for e in run.store.events(run.study_id, s.branch)
                    if e.kind in (EventKind.ROLLBACK.value, EventKind.RESTART.value)]
            if fork:
                out.print(f"branch {s.branch}: {fork[-1].kind} from branch {fork[-1].old} at epoch {fork[-1].new} "
                          f"({fork[-1].source}: {fork[-1].reason})", highlight=False, markup=False)
        m = s.curve[s.epoch]
        shown = "  ".join(f"{k} {m[k]:.4g}" for k in ("train_cost", "dev_cost", "dev_error") if k in m)
        lr = m.get("lr", s.params.get("lr"))  # the α this epoch trained with (a change applies to the next)
        lr_text = f"  lr {fmt(run.space.params.get('lr'), lr)}" if isinstance(lr, float) else ""
        out.print(f"epoch {s.epoch:>3}/{s.epochs}  {shown}{lr_text}  (branch {s.branch})", highlight=False,
                  markup=False)

    try:
        status = run.train(cfg.make, on_epoch=None if quiet else line, epochs=epochs)
    except KeyboardInterrupt:
        err.print(f"interrupted; continue with: sturgeon panda resume {run.name} --store {run.store.path}",  # type: ignore[attr-defined]
                  highlight=False, markup=False)
        raise typer.Exit(130) from None
    except WRITE_ERRORS as e:  # the disk (or the store) refused a write while it trained: the run failed, not the input
        then = "free some space, then" if getattr(e, "disk_full", False) else "then"
        err.print(f"[bold red]error:[/] {escape(str(e))} The run stopped; {then}: sturgeon panda resume "
                  f"{escape(run.name)} --store {escape(str(run.store.path))}", highlight=False, soft_wrap=True)  # type: ignore[attr-defined]
        raise typer.Exit(1) from None
    except Exception as e:
        # The trainable's own code raised (whatever the type) when the run recorded it as its failure; anything
        # else is bad input or state, which clean_errors reports (exit 2).
        now = run.status()
        failure = next((t.error for t in now.trials if t.number == now.branch), None) \
            if now.state is RunState.FAILED else None
        if failure != f"{type(e).__name__}: {e}":
            raise
        if worker:
            traceback.print_exc(file=sys.stdout)
        err.print(f"[bold red]error:[/] the run failed: {escape(f'{type(e).__name__}: {e}')} (sturgeon panda "
                  f"status {escape(run.name)} shows it)", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    _summary(status)
    if status.state in (RunState.FAILED, RunState.DIVERGED):
        raise typer.Exit(1)


def _spawn(run: Run, epochs: int | None) -> None:
    """Start a worker process for the run and wait until it holds the run (or report why it could not)."""
    log = run.artifacts / "run.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "sturgeon", "panda", "worker", run.name, "--store", str(run.store.path)]  # type: ignore[attr-defined]
    if epochs is not None:
        cmd += ["--epochs", str(epochs)]
    with open(log, "ab") as f:
        start = f.tell()  # this worker's lines come after here (another worker may write there too)
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if run.store.writer(run.study_id) == proc.pid:
            out.print(f"run {run.name} trains in the background (pid {proc.pid}); log: {log}", highlight=False,
                      markup=False)
            out.print(f"watch it: sturgeon panda status {run.name} --store {run.store.path}",  # type: ignore[attr-defined]
                      highlight=False, markup=False)
            return
        if proc.poll() is not None:
            other = run.store.writer(run.study_id)
            if other is not None:  # two starts at once: the other one holds the run, and takes queued commands
                raise StoreError(f"another process (pid {other}) took the run first: it trains it now, and "
                                 "applies what is queued")
            with open(log, "rb") as f:
                f.seek(start)
                lines = f.read().decode(errors="replace").splitlines()
            why = [x for x in lines if x.startswith("error:")] or lines[-1:] or ["no output"]
            raise StoreError(f"the background run exited with code {proc.returncode}: "
                             f"{why[-1].removeprefix('error: ')} (see {log})")
        time.sleep(0.05)
    raise StoreError(f"the background run (pid {proc.pid}) did not start within 60 s; see {log}")


def _summary(s: RunStatus) -> None:
    m = s.curve.get(s.epoch, {})
    shown = ", ".join(f"{k} {v:.4g}" for k, v in m.items() if k in ("train_cost", "dev_cost", "dev_error"))
    out.print(f"run {s.name}: {s.state.value} at epoch {s.epoch}/{s.epochs} on branch {s.branch}"
              + (f" ({shown})" if shown else ""), highlight=False, markup=False)


def _open(name: str, store: Path, readonly: bool = False) -> Run:
    if not Path(store).exists():
        raise StoreError(f"No store at '{store}'.")
    return Run.open(name, store, readonly=readonly)


@panda_app.command()
def start(
    config: Path = CONFIG,
    detach: bool = DETACH,
    name: Optional[str] = typer.Option(None, "--name", "-n",
                                       help="Run name (default: the config's \\[run] name, else its file name)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No line per epoch."),
) -> None:
    """Start a run from a config: trains in the foreground (or --detach), checkpointing every epoch."""
    from sturgeon.config_panda import load_panda_config

    with clean_errors():
        cfg = load_panda_config(config)
        run = Run.create(name or cfg.name, cfg.params, store=cfg.store, space=cfg.space, settings=cfg.settings,
                         attrs={"config": cfg.raw, "config_path": str(cfg.path.resolve()), "ignored": cfg.ignored})
        out.print(f"run {run.name}: {cfg.settings.epochs} epochs, store {cfg.store}", highlight=False, markup=False)
        _train(run, detach, quiet)


@panda_app.command(hidden=True)
def worker(name: str, store: Path = STORE_OPTION, epochs: Optional[int] = typer.Option(None)) -> None:
    """Train a run in this (background) process."""
    with clean_errors():
        _train(_open(name, store), detach=False, epochs=epochs, worker=True)


@panda_app.command()
def status(
    name: str = NAME,
    store: Path = STORE_OPTION,
    events: int = typer.Option(8, "--events", "-e", help="How many recent events to show."),
    as_json: bool = typer.Option(False, "--json", help="The status as JSON, for scripts."),
    follow: float = typer.Option(0.0, "--follow", "-f", help="Redraw every this many seconds while it trains."),
) -> None:
    """The run's state, its curve on the current branch (a terminal chart), params, branches, recent events."""
    with clean_errors():
        run = _open(name, store, readonly=True)
        s = run.status()
        if as_json:
            doc = {"name": s.name, "state": s.state.value, "branch": s.branch, "epoch": s.epoch, "epochs": s.epochs,
                   "pid": s.pid, "error": _error(s), "params": s.params,
                   "curve": {str(k): v for k, v in s.curve.items()},
                   "events": [e.__dict__ for e in s.events], "pending": [c.__dict__ for c in s.pending],
                   "branches": [b.__dict__ for b in s.branches]}
            sys.stdout.write(json.dumps(_strict(doc), default=str, allow_nan=False) + "\n")
            return
        if not follow:
            out.print(_view(run, s, events))
            return
        from rich.live import Live

        with Live(_view(run, s, events), console=out, screen=True, auto_refresh=False) as live:
            try:
                while s.state in (RunState.RUNNING, RunState.PAUSED, RunState.CREATED):
                    time.sleep(follow)
                    s = run.status()
                    live.update(_view(run, s, events), refresh=True)
            except KeyboardInterrupt:
                pass
        out.print(_view(run, s, events))


def _command_text(c: Any) -> str:
    """A queued command as a person would have typed it: ``rollback --to 4 lr=0.01``, ``set lr=0.02``."""
    changes = " ".join(f"{k}={v}" for k, v in (c.args.get("params") or {}).items())
    where = f" --to {c.args['to']}" if c.kind == "rollback" else ""
    return " ".join(x for x in (f"{c.kind}{where}", changes) if x)


def _error(s: RunStatus) -> str | None:
    """Why the current branch failed or diverged, as recorded when it ended."""
    if s.state not in (RunState.FAILED, RunState.DIVERGED):
        return None
    return next((t.error for t in s.trials if t.number == s.branch), None)


def _strict(obj: Any) -> Any:
    """``obj`` with NaN and infinities as null: strict JSON parsers (browsers, jq) refuse the bare tokens."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _strict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_strict(v) for v in obj]
    return obj


def _view(run: Run, s: RunStatus, events: int) -> Group:
    """Everything ``status`` shows, as one renderable (printed once, or refreshed by --follow)."""
    parts: list[Any] = []
    who = f", pid {s.pid}" if s.pid else ""
    parts.append(Text.from_markup(f"[bold]{escape(s.name)}[/]: {s.state.value}{who} — epoch {s.epoch}/{s.epochs} "
                                  f"on branch {s.branch}"))
    if _error(s):
        parts.append(Text.from_markup(f"[bold red]why:[/] {escape(str(_error(s)))}"))
    if s.curve:
        parts.append(Text(_chart(s, run.settings.metric)))
    table = Table(title="params now", title_justify="left")
    for col in ("param", "value", "range"):
        table.add_column(col)
    for pname, p in run.space.params.items():
        d = p.to_dict()
        rng = f"{d.get('lo')} .. {d.get('hi')} ({d.get('scale', 'choice')})" if "lo" in d else str(d.get("values"))
        table.add_row(pname, escape(fmt(p, s.params.get(pname))), escape(rng))
    parts.append(table)
    if len(s.branches) > 1:
        parts.append(_tree(s))
    recent = s.events[-events:] if events > 0 else []
    if recent:
        ev = Table(title="recent events", title_justify="left")
        for col in ("branch", "epoch", "kind", "change", "source", "reason"):
            ev.add_column(col)
        for e in recent:
            change = "" if e.param is None else f"{e.param} {fmt(run.space.params.get(e.param), e.old)} -> " \
                                                 f"{fmt(run.space.params.get(e.param), e.new)}"
            if e.kind in (EventKind.ROLLBACK.value, EventKind.RESTART.value):
                change = f"from branch {e.old} at epoch {e.new}"
            where = str(e.step) if e.batch is None else f"{e.step} (+{e.batch} batches)"
            ev.add_row(str(e.trial), where, e.kind, escape(change), e.source, escape(e.reason))
        parts.append(ev)
    for c in s.pending:
        parts.append(Text(f"pending #{c.id}: {_command_text(c)} (from {c.source})"))
    refused = [c for c in run.store.commands(run.study_id, CommandState.REFUSED)][-3:]
    for c in refused:
        parts.append(Text(f"refused #{c.id}: {_command_text(c)} — {c.outcome}", style="red"))
    return Group(*parts)


def _chart(s: RunStatus, metric: str) -> str:
    """The current line's curve: the run's metric and train cost per epoch, rollback points marked."""
    import plotext as plt

    epochs = sorted(s.curve)
    plt.clear_figure()
    plt.plotsize(min(100, max(50, out.width - 4)), 18)
    plt.theme("clear")
    for key, marker in ((metric, "dot"), ("train_cost", "braille")):
        ys = [s.curve[e].get(key, math.nan) for e in epochs]
        pts = [(e, y) for e, y in zip(epochs, ys, strict=True) if math.isfinite(y)]
        if pts:
            plt.plot([p[0] for p in pts], [p[1] for p in pts], label=key, marker=marker)
    forks = sorted({b.step for b in s.branches if b.parent is not None and b.step < s.epoch})
    for f in forks:
        plt.vline(f)
    plt.xlabel("epoch" + (f" (| = branch points {', '.join(map(str, forks))})" if forks else ""))
    return str(plt.uncolorize(plt.build()))


def _tree(s: RunStatus) -> Tree:
    by_parent: dict[int | None, list] = {}
    for b in s.branches:
        by_parent.setdefault(b.parent, []).append(b)
    words = {"complete": "finished", "pruned": "stopped", "interrupted": "crashed"}  # as the run's own states read
    states = {t.number: words.get(t.state.value, t.state.value) for t in s.trials}
    for t in s.trials:  # a branch still open in the store reads as the run does: its process may be gone (kill -9)
        if t.state is TrialState.RUNNING:
            states[t.number] = s.state.value if t.number == s.branch else RunState.CRASHED.value
    last = {t.number: max(t.curve, default=None) for t in s.trials}
    tree = Tree("branches")

    def add(node: Tree, parent: int | None) -> None:
        for b in by_parent.get(parent, []):
            here = " (current)" if b.trial == s.branch else ""
            end = last.get(b.trial)
            trained = end is not None and end > b.step
            span = f"epochs {b.step + 1}..{end}" if trained else f"from epoch {b.step}, none trained"
            label = f"branch {b.trial}: {span}, {states.get(b.trial)}{here}"
            add(node.add(label), b.trial)

    add(tree, None)
    return tree


def _report(run: Run, cid: int, wait: float, what: str, step: bool = False) -> None:
    """Say what happens to a queued command; with --wait, block until the run applies or refuses it."""
    pid = run.store.writer(run.study_id)
    alive = pid is not None
    toggles = [e for e in run.store.events(run.study_id) if e.kind in (EventKind.PAUSE.value, EventKind.RESUME.value)]
    held = alive and bool(toggles) and toggles[-1].kind == EventKind.PAUSE.value \
        and toggles[-1].reason.startswith("train() returned")  # Run.train(until=...) came back: nobody polls
    if wait == 0 or not alive or held:  # nobody to wait for when no process trains it
        boundary = "mini-batch" if step and run.settings.apply.value == "step" else "epoch boundary"
        when = f"at the next {boundary}" if alive else "when the run resumes (it is not running now)"
        if held:  # Run.train(until=...) returned: its Python process polls again only when train() is called
            when = f"when the Python process holding it (pid {pid}) calls train() again"
        out.print(f"queued #{cid}: {what}, applied {when}", highlight=False, markup=False)
        return
    cmd = run.wait(cid, wait)
    if cmd.state is CommandState.REFUSED:
        raise StoreError(f"refused: {cmd.outcome}")
    if cmd.state is CommandState.PENDING:
        out.print(f"queued #{cid}: {what}; not applied yet after {wait:g} s", highlight=False, markup=False)
        return
    out.print(f"applied #{cid}: {what}, {cmd.outcome}", highlight=False, markup=False)


WAIT = typer.Option(0.0, "--wait", "-w", help="Wait up to this many seconds for the run to apply it.")


def _check_wait(wait: float) -> None:
    if not math.isfinite(wait) or wait < 0:
        raise ValueError(f"The '--wait' option must be a number of seconds >= 0. Got {wait} instead.")


@panda_app.command("set")
def set_(name: str = NAME, changes: list[str] = CHANGES, store: Path = STORE_OPTION, reason: str = REASON,
         wait: float = WAIT) -> None:
    """Change hyperparameters at the next epoch boundary (checked against the run's space first)."""
    with clean_errors():
        _check_wait(wait)
        run = _open(name, store)
        parsed = run.check(parse_assignments(changes or []))  # as the run will see them (1 -> 1.0)
        before = run.status().params  # read first: the run may apply the change before we look again
        cid = run.set(reason=reason, source="cli", **parsed)
        what = ", ".join(f"{k} {fmt(run.space.params.get(k), before.get(k))} -> {fmt(run.space.params.get(k), v)}"
                         for k, v in parsed.items())
        _report(run, cid, wait, what, step=True)


@panda_app.command()
def rollback(
    name: str = NAME,
    to: int = typer.Option(..., "--to", help="The epoch whose checkpoint to go back to."),
    changes: list[str] = CHANGES,
    branch: Optional[int] = typer.Option(None, "--branch", "-b",
                                         help="Another branch's checkpoint (default: current line)."),
    store: Path = STORE_OPTION,
    reason: str = REASON,
    detach: bool = DETACH,
    wait: float = WAIT,
) -> None:
    """Go back to an epoch's checkpoint and continue from there as a new branch (the old one is kept).

    If the run's process is down, this process (or --detach, a background one) continues the new branch.
    """
    with clean_errors():
        _check_wait(wait)
        run = _open(name, store)
        cid = run.rollback(to, branch=branch, reason=reason, source="cli", **parse_assignments(changes or []))
        what = f"roll back to epoch {to}" + (f" with {' '.join(changes)}" if changes else "")
        if run.store.writer(run.study_id) is not None:
            _report(run, cid, wait, what)
        else:
            out.print(f"{what}: the run is not running, so it continues here", highlight=False, markup=False)
            _train(run, detach)


def _control(name: str, store: Path, verb: str, wait: float) -> None:
    _check_wait(wait)
    run = _open(name, store)
    state = run.status().state
    if state not in (RunState.RUNNING, RunState.PAUSED):
        raise StoreError(f"The run '{name}' is {state.value}, not running: nothing to {verb}.")
    cid = getattr(run, verb)(source="cli")
    _report(run, cid, wait, verb)


@panda_app.command()
def pause(name: str = NAME, store: Path = STORE_OPTION, wait: float = WAIT) -> None:
    """Pause at the next epoch boundary (the process waits; set and rollback still apply)."""
    with clean_errors():
        _control(name, store, "pause", wait)


@panda_app.command()
def stop(name: str = NAME, store: Path = STORE_OPTION, wait: float = WAIT) -> None:
    """Stop at the next epoch boundary; resume later continues from the last checkpoint."""
    with clean_errors():
        _control(name, store, "stop", wait)


@panda_app.command()
def resume(
    name: str = NAME,
    store: Path = STORE_OPTION,
    detach: bool = DETACH,
    epochs: Optional[int] = typer.Option(None, "--epochs", help="Train to this many epochs (extend a finished run)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No line per epoch."),
) -> None:
    """Resume a paused run; or, if its process is gone (crash, kill -9, stop), continue training it from the
    last checkpoint of its current branch, here or --detach."""
    with clean_errors():
        run = _open(name, store)
        state = run.status().state
        if state is RunState.PAUSED:
            if epochs is not None:
                raise StoreError(f"The run '{name}' is paused in a live process (pid {run.status().pid}); "
                                 "--epochs is for a run whose process is gone: resume it, then stop it first.")
            _report(run, run.resume(source="cli"), 0, "resume")
        elif state is RunState.RUNNING:
            raise StoreError(f"The run '{name}' is already running (pid {run.status().pid}).")
        else:
            _train(run, detach, quiet, epochs=epochs)
