"""The ``sturgeon`` command: run a study from a config, and read stored studies.

Every error is one red line on stderr and exit code 2 (bad input) — never a traceback.
"""
from __future__ import annotations

import csv
import io
import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from sturgeon.cli_common import STORE_OPTION, err, fmt, out
from sturgeon.cli_common import clean_errors as _clean_errors
from sturgeon.samplers import refine_box
from sturgeon.space import Param, Scale
from sturgeon.store import SQLiteStore
from sturgeon.study import RAN_ON, Study, StudyError
from sturgeon.trial import TrialRecord, TrialState

if TYPE_CHECKING:  # the config (and PyTorch behind it) loads only when tune runs
    from sturgeon.config import TuneConfig

app = typer.Typer(
    help="Tune deep networks the way practitioners do: random search on the right scale, coarse to fine.",
    no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False,
)
def _open(study: str, store: Path) -> Study:
    return Study.load(study, SQLiteStore(store, readonly=True), readonly=True)


def _leaderboard(study: Study, top: int) -> Table:
    table = Table(title=f"{study.name}: best {study.metric} ({study.direction.value})", title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("trial", justify="right")
    table.add_column(study.metric, justify="right", style="bold")
    scales = []
    for name, p in study.space.params.items():
        scale = getattr(p, "scale", None)
        table.add_column(name, justify="right")
        if scale is not None and scale is not Scale.LINEAR:
            scales.append(f"{name} {scale.value}")
    table.caption = ("scales: " + ", ".join(scales)) if scales else None
    table.caption_justify = "left"
    for rank, t in enumerate(study.leaderboard(top), 1):
        table.add_row(str(rank), str(t.number), f"{t.value:.5g}",
                      *(escape(fmt(study.space.params.get(n), t.params.get(n))) for n in study.space.names))
    return table


def _counts(trials: list[TrialRecord]) -> str:
    counts: dict[str, int] = {}
    for t in trials:
        counts[t.state.value] = counts.get(t.state.value, 0) + 1
    return ", ".join(f"{n} {s}" for s, n in counts.items()) or "no trials"


def _failure_summary(trials: list[TrialRecord], limit: int = 5) -> list[str]:
    """Why trials failed, grouped: "3 x ValueError: ... (at obj.py:12)", most frequent first."""
    counts: dict[str, int] = {}
    for t in trials:
        if t.state in (TrialState.FAILED, TrialState.DIVERGED):
            key = f"{t.state.value}: {t.error or 'no reason recorded'}"
            counts[key] = counts.get(key, 0) + 1
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    lines = [f"{n} x {why}" for why, n in ranked[:limit]]
    if len(ranked) > limit:
        lines.append(f"... and {sum(n for _, n in ranked[limit:])} more with {len(ranked) - limit} other reasons")
    return lines


@app.command()
def tune(
    config: Path = typer.Argument(..., help="A TOML study config (see examples/)."),
    n_trials: Optional[int] = typer.Option(
        None, "--n-trials", "-n", help="Run this many more trials (default: what study.n_trials still lacks)."),
    retry: bool = typer.Option(False, "--retry", help="Run failed trials again with their own params (interrupted "
                               "ones always run again); the new run takes the failed one's place."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Run (or resume) the study a config describes; show progress and the leaderboard.

    Running a config again resumes its study and runs only the trials that study.n_trials still lacks.

    Interrupted trials (a kill, Ctrl-C, the timeout) do not count and run again first with their own params, so a study killed at trial 15 of 20 finishes with the same 20 trials. Failed trials count; --retry runs them again.

    Exit code 1 when no trial of this run completed, 2 for bad input, 130 on Ctrl-C.
    """  # noqa: E501 - typer keeps a docstring's line breaks: one line per paragraph
    from sturgeon.config import load_config

    with _clean_errors():
        if n_trials is not None and n_trials < 1:
            raise ValueError(f"The '--n-trials' option must be an integer >= 1. Got {n_trials} instead.")
        cfg = load_config(config)
        if "data" in cfg.raw:
            # n_jobs trials side by side must not oversubscribe the cores: n_jobs x threads <= cores by default
            import torch

            torch.set_num_threads(cfg.threads)
        study = Study(cfg.name, cfg.space, metric=cfg.metric, direction=cfg.direction, sampler=cfg.sampler,
                      scheduler=cfg.scheduler, store=cfg.store, attrs={"config": cfg.raw},
                      definition=cfg.definition, load_if_exists=True)
        retry_states = (TrialState.INTERRUPTED, TrialState.FAILED) if retry else (TrialState.INTERRUPTED,)
        counted = study.count(excluding=retry_states)
        total = n_trials if n_trials is not None else max(0, cfg.n_trials - counted)
        if study.interrupted_on_open:
            err.print(f"[yellow]{study.interrupted_on_open} trial(s) left running by a dead process were marked "
                      "interrupted; they run again first.")
        if total == 0:
            study.close()
            failed = sum(t.state is TrialState.FAILED for t in study.current_trials())
            hint = f"; --retry runs the {failed} failed again" if failed else ""
            err.print(f"The study '{study.name}' already has its {cfg.n_trials} trials "
                      f"({_counts(study.current_trials())}): nothing to run. -n N runs N more{hint}.",
                      highlight=False, markup=False)
        done_before = len(study.trials)
        broken = ""
        with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("best {task.fields[best]}"), TimeElapsedColumn(), TextColumn("ETA"),
                      TimeRemainingColumn(), console=err, disable=quiet or total == 0, transient=False) as progress:
            task = progress.add_task(f"{study.name}", total=total, best="-")

            def on_trial(s: Study, rec: TrialRecord) -> None:
                best = s.best
                progress.update(task, advance=1, best="-" if best is None else f"{best.value:.4g}")

            try:
                if total > 0 and cfg.caviar is not None and cfg.trainer is not None:  # fused: many models at once
                    from sturgeon.caviar import run_caviar

                    run_caviar(study, cfg.trainer.data, cfg.trainer.fixed, total, cfg.trainer.epochs, cfg.caviar,
                               callbacks=[on_trial], timeout=cfg.timeout, retry=retry_states)
                elif total > 0:
                    import warnings

                    from sturgeon.study import FailedTrialsWarning, IgnoredStopWarning

                    with warnings.catch_warnings():  # the CLI says both itself, below
                        warnings.simplefilter("ignore", FailedTrialsWarning)
                        warnings.simplefilter("ignore", IgnoredStopWarning)
                        study.optimize(cfg.objective, total, n_jobs=cfg.n_jobs, timeout=cfg.timeout,
                                       callbacks=[on_trial], retry=retry_states)
            except StudyError as e:  # e.g. ten failures in a row: the run ends with no result, exit 1 below
                broken = str(e)
            except KeyboardInterrupt:
                progress.stop()
                ran = study.trials[done_before:]
                err.print(f"[yellow]interrupted: {len(ran)} trials this run ({_counts(ran)}); run the same command "
                          "again to resume (interrupted trials run again first).", highlight=False)
                raise typer.Exit(130) from None
            finally:
                study.close()
        _after_run(study, study.trials[done_before:], cfg, broken)


def _after_run(study: Study, ran: list[TrialRecord], cfg: TuneConfig, broken: str) -> None:
    """What tune prints once the trials ran: the leaderboard, the diagnosis, what this run did and why trials
    failed; exit 1 when it gave no result (``broken``: the StudyError that ended it, if any)."""
    out.print(_leaderboard(study, 10))
    if "data" in cfg.raw:
        _print_diagnosis(study, cfg.raw.get("model", {}).get("target_error"))
    out.print(f"{len(ran)} trials this run ({_counts(ran)}); store: {cfg.store}", highlight=False)
    interrupted = sum(t.state is TrialState.INTERRUPTED for t in ran)
    if interrupted:
        err.print(f"{interrupted} interrupted trial(s) run again first when you run the same command.",
                  highlight=False)
    deaf = sum(t.state is TrialState.PRUNED and (t.error or "").startswith(RAN_ON) for t in ran)
    if deaf:
        err.print(f"[yellow]{deaf} pruned trial(s) trained on after the scheduler stopped them: the objective "
                  "should check trial.should_stop (or raise TrialPruned) after each report.", highlight=False)
    reasons = _failure_summary(ran)
    if reasons:
        err.print("why trials failed:", highlight=False)
        for line in reasons:
            err.print(f"  {line}", highlight=False, markup=False, soft_wrap=True)
    if broken:
        err.print(f"[bold red]error:[/] {escape(broken)}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    # a script must be able to tell "no result": this run's trials all broke, or there is nothing at all
    if (ran and not any(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in ran)) or (
            not ran and study.best is None):
        what = "no trial of this run completed" if ran else "the study has no complete trial"
        err.print(f"[bold red]error:[/] {what}; `sturgeon show {escape(study.name)} --all` lists every trial "
                  "with its reason.", highlight=False)
        raise typer.Exit(1)


def _print_diagnosis(study: Study, target_error: float | None) -> None:
    """The basic recipe applied to the best trial's last epoch: bias (train vs target), variance (dev vs train)."""
    from sturgeon.train import diagnose

    best = study.best
    last = best.curve[max(best.curve)] if best is not None and best.curve else {}
    if "train_error" not in last or "dev_error" not in last:
        return
    d = diagnose(last["train_error"], last["dev_error"], target_error)
    target = f", target {target_error:.1%}" if target_error is not None else ""
    out.print(f"diagnosis of trial {best.number} (train error {last['train_error']:.1%}, dev error "  # type: ignore[union-attr]
              f"{last['dev_error']:.1%}{target}): {d.advice}", highlight=False, markup=False)


@app.command()
def studies(store: Path = STORE_OPTION) -> None:
    """List the studies in a store."""
    with _clean_errors():
        st = SQLiteStore(store, readonly=True)
        table = Table(title=f"studies in {store}", title_justify="left")
        for col in ("study", "metric", "trials", "states", "best"):
            table.add_column(col, justify="right" if col in ("trials", "best") else "left")
        for s in st.studies():
            states = ", ".join(f"{n} {k}" for k, n in sorted(s.counts.items()))
            best = "-" if s.best_value is None else f"{s.best_value:.5g}"
            table.add_row(escape(s.name), f"{escape(s.metric)} ({s.direction[:3]})", str(s.n_trials), states, best)
        out.print(table)


def _reasons(s: Study) -> dict[int, str]:
    """Each trial's reason for how it ended: its error, or the event that stopped it (halving, a scheduler)."""
    out: dict[int, str] = {}
    for e in s.events():
        if e.kind in ("stop", "diverged") and e.reason:
            out[e.trial] = e.reason
        elif e.kind == "retry":
            out.setdefault(e.trial, e.reason)
    for t in s.trials:
        if t.error:
            out[t.number] = t.error
    return out


def _all_trials(s: Study) -> Table:
    table = Table(title=f"{s.name}: every trial", title_justify="left")
    for col in ("trial", "state", s.metric, *s.space.names, "epochs", "reason"):
        table.add_column(col, justify="left" if col in ("state", "reason") else "right")
    reasons = _reasons(s)
    # a reader does not mark a dead writer's trials: say so, rather than show them as if they trained
    orphaned = s.store.writer(s.study_id) is None
    for t in s.trials:
        value = "-" if t.value is None else f"{t.value:.5g}"
        state = t.state.value
        if t.state is TrialState.RUNNING and orphaned:
            state = "running (no live writer: interrupted)"
        table.add_row(str(t.number), state, value,
                      *(escape(fmt(s.space.params.get(n), t.params.get(n))) for n in s.space.names),
                      str(len(t.curve)), escape(reasons.get(t.number, "")))
    return table


@app.command()
def show(
    study: str,
    store: Path = STORE_OPTION,
    top: int = typer.Option(10, help="How many of the best complete trials."),
    all_trials: bool = typer.Option(False, "--all", "-a", help="Every trial, with its state and the reason it "
                                    "ended (failed, pruned by halving, diverged, interrupted)."),
) -> None:
    """The leaderboard of a study: its best trials, params shown on their scale."""
    with _clean_errors():
        if top < 1:
            raise ValueError(f"The '--top' option must be an integer >= 1. Got {top} instead.")
        s = _open(study, store)
        out.print(_all_trials(s) if all_trials else _leaderboard(s, top))
        out.print(f"{len(s.trials)} trials: {_counts(s.trials)}", highlight=False)


@app.command()
def best(study: str, store: Path = STORE_OPTION,
         as_json: bool = typer.Option(False, "--json", help="One JSON object on stdout, for scripts.")) -> None:
    """The best trial of a study (--json for scripts)."""
    with _clean_errors():
        s = _open(study, store)
        b = s.best
        if b is None:
            raise StudyError(f"The study '{study}' has no complete trial yet.")
        doc = {"study": s.name, "trial": b.number, "metric": s.metric, "direction": s.direction.value,
               "value": b.value, "params": b.params}
        if as_json:
            sys.stdout.write(json.dumps(doc) + "\n")
        else:
            out.print(f"trial {b.number}: {s.metric} = {b.value:.5g}", highlight=False, markup=False)
            for n in s.space.names:
                out.print(f"  {n} = {fmt(s.space.params[n], b.params[n])}", highlight=False, markup=False)


def _rows(s: Study) -> tuple[list[str], list[dict[str, Any]]]:
    """One flat row per trial; params are ``params_<name>`` columns (as in Optuna's trials_dataframe), so a
    parameter named ``state``, ``value`` or ``error`` never overwrites the trial's own."""
    cols = ["number", "state", "value", *(f"params_{n}" for n in s.space.names), "started_at", "finished_at",
            "duration", "error"]
    rows = [{"number": t.number, "state": t.state.value, "value": t.value,
             **{f"params_{n}": v for n, v in t.params.items()}, "started_at": t.started_at,
             "finished_at": t.finished_at, "duration": t.duration, "error": t.error} for t in s.trials]
    return cols, rows


@app.command()
def export(
    study: str,
    store: Path = STORE_OPTION,
    format: str = typer.Option("csv", "--format", "-f", help="csv (params as params_<name> columns) or json "
                               "(params nested, with learning curves)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="File to write (default: stdout)."),
) -> None:
    """Every trial of a study as CSV or JSON."""
    with _clean_errors():
        if format not in ("csv", "json"):
            raise ValueError(f"The '--format' option must be one of csv, json. Got {format!r} instead.")
        s = _open(study, store)
        cols, rows = _rows(s)
        if format == "csv":
            buf = io.StringIO()
            writer = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
            text = buf.getvalue()
        else:
            rows = [{"number": t.number, "state": t.state.value, "value": t.value, "params": t.params,
                     "started_at": t.started_at, "finished_at": t.finished_at, "duration": t.duration,
                     "error": t.error, "curve": [{"step": k, **v} for k, v in sorted(t.curve.items())]}
                    for t in s.trials]
            doc = {"study": s.name, "metric": s.metric, "direction": s.direction.value, "space": s.space.to_dict(),
                   "trials": rows}
            # strict JSON: a diverged run's NaN/inf metrics become null
            text = json.dumps(_finite(doc), indent=1, allow_nan=False) + "\n"
        if output is None:
            sys.stdout.write(text)
        else:
            _check_output(output, "--output")
            output.write_text(text)
            err.print(f"wrote {len(rows)} trials to {output}", highlight=False)


def _check_output(path: Path, option: str, suffixes: tuple[str, ...] = ()) -> None:
    """An output file must be writable where it is named: refused in one line before anything is computed."""
    if suffixes and path.suffix not in suffixes:
        raise ValueError(f"The '{option}' option must name a {' or '.join(suffixes)} file. Got '{path}' instead.")
    if path.is_dir():
        raise ValueError(f"The '{option}' option names a folder: '{path}'; give a file name.")
    if not path.parent.is_dir():
        raise ValueError(f"The '{option}' option names a file in a folder that does not exist: '{path.parent}'.")


def _finite(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


@app.command()
def refine(
    study: str,
    store: Path = STORE_OPTION,
    top: float = typer.Option(0.2, help="Fraction of the best complete trials the new box must cover."),
    margin: float = typer.Option(0.1, help="Padding on each side, as a fraction of the old range (unit scale)."),
    min_width: float = typer.Option(0.05, "--min-width", help="Smallest width of a range, on the unit scale."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write the refined space (.toml or .json)."),
) -> None:
    """Zoom in: the smaller space where the best trials cluster, printed and optionally saved."""
    with _clean_errors():
        if output is not None:
            _check_output(output, "--output", (".toml", ".json"))
        s = _open(study, store)
        complete = [t for t in s.trials if t.state is TrialState.COMPLETE]
        if len(complete) < 2:
            raise StudyError(f"The study '{study}' needs at least 2 complete trials to refine; it has {len(complete)}.")
        box = refine_box(s.space, s.trials, s.direction, top=top, margin=margin, min_width=min_width)
        new = box.space(s.space)
        title = f"{study}: refined around the best {top:.0%} of {len(complete)} trials"
        table = Table(title=title, title_justify="left")
        for col in ("param", "scale", "was", "now"):
            table.add_column(col)
        for n, p in s.space.params.items():
            q = new.params[n]
            scale = getattr(getattr(p, "scale", None), "value", "choice")
            table.add_row(n, scale, escape(_range(p)), escape(_range(q)))
        out.print(table)
        _print_focus(s)
        if output is not None:
            new.save(output)
            err.print(f"wrote the refined space to {output}; a config takes it as [space] file = \"{output.name}\" "
                      "(give that study a new name)", highlight=False, markup=False)


def _print_focus(s: Study) -> None:
    """Where the study's own sampler concentrates now (a model's good region, a coarse-to-fine round's box), on
    the unit scale and in values; nothing for a sampler that does not zoom (random, Sobol, grid)."""
    focus = getattr(s.sampler, "focus", None)
    box = focus(s.space, s.view(), s.direction) if focus is not None else None
    if box is None:
        return
    table = Table(title=f"where the {s.sampler.kind} sampler concentrates now", title_justify="left")
    for col in ("param", "unit", "values"):
        table.add_column(col)
    sub = box.space(s.space)
    for n in s.space.names:
        lo_hi = box.bounds.get(n)
        unit = f"[{lo_hi[0]:.3f}, {lo_hi[1]:.3f}]" if lo_hi is not None else "—"
        table.add_row(n, unit, escape(_range(sub.params[n])))
    out.print(table)


def _range(p: Param) -> str:
    d = p.to_dict()
    if d["type"] == "choice":
        return ", ".join(map(str, d["values"]))
    if d["type"] == "float":
        return f"[{fmt(p, float(d['lo']))}, {fmt(p, float(d['hi']))}]"
    return f"[{d['lo']}, {d['hi']}]"


from sturgeon.cli_panda import panda_app  # noqa: E402 - the panda sub-commands, after the shared app exists

app.add_typer(panda_app, name="panda")


def main() -> None:
    """The ``sturgeon`` console script: the app, with usage errors (a bad option value, a missing argument)
    as one red line and exit code 2 like every other error, instead of a framed help box."""
    try:
        code = app(standalone_mode=False)
    except Exception as e:  # click's UsageError family (typer vendors click, so it is matched by its interface)
        message = getattr(e, "format_message", None)
        if message is None or not hasattr(e, "exit_code"):
            raise
        err.print(f"[bold red]error:[/] {escape(message())}", highlight=False, soft_wrap=True)
        raise SystemExit(e.exit_code) from None
    raise SystemExit(code if isinstance(code, int) else 0)


if __name__ == "__main__":  # pragma: no cover
    main()
