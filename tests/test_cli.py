"""The sturgeon command: tune from a config, read studies, one-line errors with exit code 2."""
from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sturgeon import Space, Study
from sturgeon.cli import app, fmt

runner = CliRunner()
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

CONFIG = """
[study]
name = "demo"
store = "runs/s.db"
metric = "dev_error"
n_trials = 30
seed = 0

[sampler]
type = "coarse_to_fine"
round_size = 10

[objective]
function = "sturgeon.testfunctions:curve_objective"

[space]
lr = { type = "float", lo = 1e-4, hi = 1.0, scale = "log" }
beta = { type = "float", lo = 0.9, hi = 0.999, scale = "reverse_log" }
act = ["relu", "tanh"]
"""


@pytest.fixture(autouse=True)
def runs_folder(tmp_path):
    """The configs here keep their store in runs/, which a store never creates by itself."""
    (tmp_path / "runs").mkdir()


@pytest.fixture()
def tuned(tmp_path):
    cfg = tmp_path / "demo.toml"
    cfg.write_text(CONFIG)
    result = runner.invoke(app, ["tune", str(cfg), "--quiet"])
    assert result.exit_code == 0, result.output
    return tmp_path / "runs" / "s.db", result


def test_tune_runs_the_study_and_prints_the_leaderboard(tuned):
    db, result = tuned
    study = Study.load("demo", db, readonly=True)
    assert len(study.trials) == 30 and study.sampler.to_dict()["round_size"] == 10
    assert "demo: best dev_error (minimize)" in result.output
    assert f"{study.best.value:.5g}" in result.output
    assert "30 trials this run (30 complete)" in result.output


def test_tune_again_resumes_the_same_study(tuned, tmp_path):
    db, _ = tuned
    result = runner.invoke(app, ["tune", str(tmp_path / "demo.toml"), "-q", "-n", "5"])
    assert result.exit_code == 0 and "5 trials this run" in result.output
    assert len(Study.load("demo", db, readonly=True).trials) == 35


def test_studies_show_and_best_json(tuned):
    db, _ = tuned
    study = Study.load("demo", db, readonly=True)
    out = runner.invoke(app, ["studies", "-s", str(db)]).output
    assert "demo" in out and "30 complete" in out
    out = runner.invoke(app, ["show", "demo", "-s", str(db), "--top", "3"]).output
    for t in study.leaderboard(3):
        assert fmt(study.space["lr"], t.params["lr"]) in out
    best = json.loads(runner.invoke(app, ["best", "demo", "-s", str(db), "--json"]).stdout)
    assert best == {"study": "demo", "trial": study.best.number, "metric": "dev_error", "direction": "minimize",
                    "value": study.best.value, "params": study.best.params}


def test_export_csv_and_json(tuned, tmp_path):
    db, _ = tuned
    study = Study.load("demo", db, readonly=True)
    rows = list(csv.DictReader(io.StringIO(runner.invoke(app, ["export", "demo", "-s", str(db)]).stdout)))
    assert len(rows) == 30 and float(rows[7]["value"]) == study.trials[7].value
    assert rows[7]["params_act"] == study.trials[7].params["act"]
    out = tmp_path / "all.json"
    runner.invoke(app, ["export", "demo", "-s", str(db), "-f", "json", "-o", str(out)])
    doc = json.loads(out.read_text())
    assert doc["trials"][3]["curve"][9]["dev_error"] == study.trials[3].curve[9]["dev_error"]
    assert doc["trials"][3]["params"] == study.trials[3].params


def test_params_named_like_a_trials_fields_never_overwrite_them(tmp_path):
    db = tmp_path / "s.db"
    space = Space.from_dict({"state": {"type": "int", "lo": 1, "hi": 3}, "error": ["a", "b"],
                             "value": {"type": "float", "lo": 0, "hi": 1}})
    Study("c", space, store=db).optimize(lambda t: t["value"], n_trials=2)
    row = next(csv.DictReader(io.StringIO(runner.invoke(app, ["export", "c", "-s", str(db)]).stdout)))
    trial = Study.load("c", db, readonly=True).trials[0]
    assert (row["state"], row["error"], float(row["value"])) == ("complete", "", trial.value)
    assert (int(row["params_state"]), row["params_error"]) == (trial.params["state"], trial.params["error"])
    doc = json.loads(runner.invoke(app, ["export", "c", "-s", str(db), "-f", "json"]).stdout)
    assert doc["trials"][0]["state"] == "complete" and doc["trials"][0]["params"] == trial.params


def test_refine_writes_a_smaller_space_that_tune_can_use(tuned, tmp_path):
    db, _ = tuned
    out = tmp_path / "fine.toml"
    result = runner.invoke(app, ["refine", "demo", "-s", str(db), "--top", "0.2", "-o", str(out)])
    assert result.exit_code == 0, result.output
    fine, coarse = Space.load(out), Study.load("demo", db, readonly=True).space
    assert coarse["lr"].lo <= fine["lr"].lo < fine["lr"].hi <= coarse["lr"].hi
    assert fine["lr"].hi / fine["lr"].lo < coarse["lr"].hi / coarse["lr"].lo
    assert fine["beta"].scale.value == "reverse_log"


@pytest.mark.parametrize(
    "args, message",
    [
        (["show", "nope"], "error: No study named 'nope' in "),
        (["best", "demo", "--store", "missing.db"], "error: No store at 'missing.db'."),
        (["export", "demo", "--format", "xml"], "error: The '--format' option must be one of csv, json. Got 'xml' instead."),
        (["tune", "nothere.toml"], "error: The config file does not exist: 'nothere.toml'."),
    ],
)
def test_errors_are_one_line_and_exit_2(tuned, monkeypatch, args, message):
    db, _ = tuned
    monkeypatch.chdir(db.parent)
    if "--store" not in args and args[0] != "tune":
        args = [*args, "--store", str(db)]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert result.output.startswith(message) and result.output.count("\n") == 1
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "edit, message",
    [
        (('scale = "reverse_log"', 'scale = "reverse_log", hi2 = 1'), "Unknown key 'beta.hi2' for a float parameter. Known: hi, lo, scale, step."),
        (("hi = 0.999", "hi = 1.0"), "The 'beta' parameter has scale 'reverse_log' (log-uniform on 1 - x), so hi must be < 1. Got 1.0 instead."),
        (("lo = 1e-4", "lo = -1e-4"), "The 'lr' parameter has scale 'log', so lo must be > 0. Got -0.0001 instead."),
        (('type = "coarse_to_fine"', 'type = "hyperband"'), "The 'sampler.type' key must be one of random, sobol, grid, coarse_to_fine, tpe, gp, auto. Got 'hyperband' instead."),
        (("n_trials = 30", "n_trials = 0"), "The 'study.n_trials' key must be an integer >= 1. Got 0 instead."),
        (("curve_objective", "nothing_here"), "The 'objective.function' key names 'sturgeon.testfunctions:nothing_here', which cannot be imported"),
        (("[space]", "[spaces]"), "Unknown section [spaces]"),
    ],
)
def test_bad_configs_are_one_line_and_exit_2(tune_error, edit, message):
    assert tune_error(CONFIG.replace(*edit, 1)).startswith(f"error: {message}")


def test_the_installed_console_script_runs(tmp_path):
    cfg = tmp_path / "demo.toml"
    cfg.write_text(CONFIG.replace("n_trials = 30", "n_trials = 4"))
    done = subprocess.run([sys.executable, "-m", "sturgeon", "tune", str(cfg), "-q"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "4 trials this run (4 complete)" in done.stdout
    bad = subprocess.run([sys.executable, "-m", "sturgeon", "show", "x", "-s", str(tmp_path / "none.db")],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.strip().startswith("error: No store at") and bad.stdout == ""


def test_example_surface_config_is_valid():
    from sturgeon.config import load_config

    cfg = load_config(EXAMPLES / "surface.toml")
    assert cfg.sampler.to_dict()["type"] == "coarse_to_fine" and cfg.n_trials == 60


def test_tune_again_runs_only_what_n_trials_still_lacks(tmp_path):
    cfg = tmp_path / "demo.toml"
    cfg.write_text(CONFIG)
    assert runner.invoke(app, ["tune", str(cfg), "-q", "-n", "12"]).exit_code == 0  # as if killed at trial 12
    result = runner.invoke(app, ["tune", str(cfg), "-q"])
    assert "18 trials this run" in result.output
    assert len(Study.load("demo", tmp_path / "runs" / "s.db", readonly=True).trials) == 30
    assert "0 trials this run" in runner.invoke(app, ["tune", str(cfg), "-q"]).output


def test_json_export_is_strict_json_even_with_nan_metrics(tmp_path):
    db = tmp_path / "s.db"
    study = Study("nan", Space.from_dict({"x": {"type": "float", "lo": 0, "hi": 1}}), store=db, metric="loss")

    def objective(trial):
        trial.report(0, loss=float("nan"))
        return 1.0

    study.optimize(objective, n_trials=1)
    study.close()
    text = runner.invoke(app, ["export", "nan", "-s", str(db), "-f", "json"]).stdout
    doc = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    assert doc["trials"][0]["curve"] == [{"step": 0, "loss": None}]


FAILING = """
[study]
name = "broken"
store = "s.db"
n_trials = 3
[objective]
function = "broken_objective:objective"
[space]
x = { type = "float", lo = 0, hi = 1 }
"""


def test_a_tune_whose_every_trial_failed_says_why_and_exits_1_and_retry_runs_them_again(tmp_path):
    (tmp_path / "broken_objective.py").write_text(
        "import os\n"
        "def objective(trial):\n"
        "    return 0.5 if os.environ.get('FIXED') else 'nope'\n")
    cfg = tmp_path / "broken.toml"
    cfg.write_text(FAILING)
    result = runner.invoke(app, ["tune", str(cfg), "-q"])
    assert result.exit_code == 1, result.output
    assert "3 trials this run (3 failed)" in result.output
    assert "3 x failed: the objective returned 'nope', a string, not a number" in result.output
    assert "error: no trial of this run completed" in result.output
    # the failed trials count toward n_trials: a rerun says so and offers --retry
    again = runner.invoke(app, ["tune", str(cfg), "-q"])
    assert again.exit_code == 1 and "already has its 3 trials (3 failed): nothing to run" in again.output
    assert "--retry runs the 3 failed again" in again.output
    fixed = runner.invoke(app, ["tune", str(cfg), "-q", "--retry"], env={"FIXED": "1"})
    assert fixed.exit_code == 0, fixed.output
    study = Study.load("broken", tmp_path / "s.db", readonly=True)
    assert [t.state.value for t in study.current_trials()] == ["complete"] * 3
    assert [t.params for t in study.current_trials()] == [t.params for t in study.trials[:3]]


@pytest.mark.parametrize("args, message", [
    (["tune", "{cfg}", "-n", "0"], "The '--n-trials' option must be an integer >= 1. Got 0 instead."),
    (["tune", "{cfg}", "-n", "-3"], "The '--n-trials' option must be an integer >= 1. Got -3 instead."),
    (["show", "demo", "-s", "{db}", "--top", "-1"], "The '--top' option must be an integer >= 1. Got -1 instead."),
    (["refine", "demo", "-s", "{db}", "-o", "{tmp}/out.yaml"],
     "The '--output' option must name a .toml or .json file. Got '{tmp}/out.yaml' instead."),
    (["export", "demo", "-s", "{db}", "-o", "{tmp}/nowhere/t.csv"],
     "The '--output' option names a file in a folder that does not exist: '{tmp}/nowhere'."),
    (["export", "demo", "-s", "{db}", "-o", "{tmp}"], "The '--output' option names a folder: '{tmp}'; give a file name."),
    (["tune", "{tmp}"], "The config file '{tmp}' is a folder; give the path of a .toml file."),
])
def test_bad_options_are_refused_in_one_line(tuned, tmp_path, args, message):
    db, _ = tuned
    fill = {"cfg": str(tmp_path / "demo.toml"), "db": str(db), "tmp": str(tmp_path)}
    result = runner.invoke(app, [a.format(**fill) for a in args])
    assert result.exit_code == 2
    assert result.output == f"error: {message.format(**fill)}\n"


def test_show_all_lists_every_trial_with_its_state_and_reason(tmp_path):
    cfg = tmp_path / "halved.toml"
    cfg.write_text(CONFIG.replace("[sampler]", "[scheduler]\ntype = \"asha\"\nrungs = [2, 4]\neta = 3\n\n[sampler]")
                   .replace("n_trials = 30", "n_trials = 12"))
    assert runner.invoke(app, ["tune", str(cfg), "-q"]).exit_code == 0
    db = tmp_path / "runs" / "s.db"
    study = Study.load("demo", db, readonly=True)
    pruned = [t for t in study.trials if t.state.value == "pruned"]
    assert pruned  # ASHA stopped some of them
    shown = runner.invoke(app, ["show", "demo", "-s", str(db), "--all"]).output
    for t in study.trials:
        assert f"│ {t.number:>5} │ {t.state.value}" in shown.replace("┃", "│")
    stop = next(e for e in study.events() if e.kind == "stop")
    assert stop.reason.startswith("successive halving at epoch ") and stop.reason in shown


def test_ctrl_c_with_two_jobs_ends_the_process_at_once(tmp_path):
    import signal
    import sqlite3
    import time

    (tmp_path / "slow_objective.py").write_text(
        "import time\n"
        "def objective(trial):\n"
        "    trial.report(0, loss=1.0)\n"
        "    time.sleep(300)  # between reports: nothing can stop it but the end of the process\n"
        "    return 1.0\n")
    cfg = tmp_path / "slow.toml"
    cfg.write_text('[study]\nname = "slow"\nstore = "s.db"\nn_trials = 4\nn_jobs = 2\n'
                   '[objective]\nfunction = "slow_objective:objective"\n[space]\nx = { type = "float", lo = 0, hi = 1 }\n')
    proc = subprocess.Popen([sys.executable, "-m", "sturgeon", "tune", str(cfg), "-q"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    reported = 0
    while reported < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
        try:
            with sqlite3.connect(f"file:{tmp_path / 's.db'}?mode=ro", uri=True) as con:
                reported = con.execute("SELECT count(*) FROM reports").fetchone()[0]
        except sqlite3.Error:
            pass
    assert reported == 2
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert time.monotonic() - t0 < 10  # not the 300 s the objectives still sleep
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert "interrupted: 2 trials this run (2 interrupted); run the same command again to resume" in err
    stored = Study.load("slow", tmp_path / "s.db", readonly=True).trials
    assert [t.state.value for t in stored] == ["interrupted", "interrupted"]


@pytest.mark.parametrize("group", [None, "panda"])
def test_every_commands_help_shows_its_text_as_written(group):
    """Help goes through rich markup: "[run]" must not be eaten as a style, nor RST markup shown raw."""
    import typer

    top = typer.main.get_command(app)
    commands = top.commands if group is None else top.commands[group].commands
    prefix = [] if group is None else [group]
    for name, command in commands.items():
        if command.hidden or hasattr(command, "commands"):  # a sub-group is checked on its own
            continue
        result = CliRunner().invoke(app, [*prefix, name, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
        shown = " ".join(result.output.replace("│", " ").split())
        for text in [command.help or "", *(getattr(p, "help", None) or "" for p in command.params)]:
            written = " ".join(text.replace("\\[", "[").split())
            assert written in shown, f"{' '.join(prefix + [name])} --help lost: {written!r}"
        assert "``" not in shown and ":class:" not in shown and "default:  " not in result.output, shown
    if group == "panda":
        start = CliRunner().invoke(app, ["panda", "start", "--help"], env={"COLUMNS": "200"}).output
        assert "Run name (default: the config's [run] name, else its file name)." in start


def test_ten_failures_in_a_row_end_the_run_with_exit_1_not_2(tmp_path):
    (tmp_path / "stringy_objective.py").write_text("def objective(trial):\n    return '0.5'\n")
    cfg = tmp_path / "broken.toml"  # (a module name of its own: the other test's is imported already)
    cfg.write_text(FAILING.replace("n_trials = 3", "n_trials = 30").replace("broken_objective", "stringy_objective"))
    result = runner.invoke(app, ["tune", str(cfg), "-q"])
    assert result.exit_code == 1, result.output
    assert "10 x failed: the objective returned '0.5', a string, not a number" in result.output
    assert result.output.rstrip().splitlines()[-1] == (
        "error: 10 trials failed in a row; the last error: the objective returned '0.5', a string, not a number")


def test_show_all_says_when_a_running_trial_has_no_live_writer(tmp_path):
    import os
    import signal
    import time

    db = tmp_path / "s.db"
    script = ("import sys, time\nfrom sturgeon import Study, Space, Float\n"
              "s = Study('k', Space(x=Float(0, 1)), store=sys.argv[1])\n"
              "t = s.ask(); print('asked', flush=True); time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", script, str(db)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "asked"
    live = runner.invoke(app, ["show", "k", "-s", str(db), "--all"]).output
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(0.1)
    dead = runner.invoke(app, ["show", "k", "-s", str(db), "--all"]).output
    assert "no live writer" not in live and "running (no live writer: interrupted)" in " ".join(dead.split())
