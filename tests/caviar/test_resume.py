"""A fused caviar study killed at any point and resumed ends as the study that never stopped: the interrupted
models train again with their own params, the rung table continues, and only a batch is asked at a time."""
from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sturgeon import Choice, Float, Space, Study, TrialState
from sturgeon.caviar import CaviarSettings, run_caviar
from sturgeon.cli import app
from sturgeon.train import load_data

CONFIG = """
[study]
name = "c"
store = "{store}"
n_trials = 27
seed = 0
[data]
name = "digits"
[model]
hidden = [96, 96]
epochs = 4
optimizer = "adam"
batch_size = 32
[caviar]
rungs = [1, 2]
eta = 3
max_models = 9    # three groups: a re-run is judged with its own group-mates, not regrouped
[space]
lr = {{ type = "float", lo = 1e-4, hi = 3e-2, scale = "log" }}
beta1 = {{ type = "float", lo = 0.8, hi = 0.99, scale = "reverse_log" }}
"""


def _reports(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as con:
            return int(con.execute("SELECT count(*) FROM reports").fetchone()[0])
    except sqlite3.Error:  # not created yet
        return 0


def _result(db: Path) -> tuple[dict[tuple[float, float], float], float]:
    study = Study.load("c", db, readonly=True)
    complete = {(t.params["lr"], t.params["beta1"]): t.value for t in study.trials if t.state is TrialState.COMPLETE}
    return complete, study.best.value


def test_killed_at_random_points_and_resumed_the_study_ends_as_if_never_stopped(tmp_path):
    (tmp_path / "ref.toml").write_text(CONFIG.format(store="ref.db"))
    (tmp_path / "k.toml").write_text(CONFIG.format(store="k.db"))
    ref = CliRunner().invoke(app, ["tune", str(tmp_path / "ref.toml"), "-q"])
    assert ref.exit_code == 0, ref.output
    total = _reports(tmp_path / "ref.db")  # every epoch of every model, in all
    rng = random.Random(7)
    kills = 0
    for threshold in sorted(rng.sample(range(1, total - 2), 3)):
        proc = subprocess.Popen([sys.executable, "-m", "sturgeon", "tune", str(tmp_path / "k.toml"), "-q"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while proc.poll() is None and _reports(tmp_path / "k.db") < threshold and time.monotonic() < deadline:
            time.sleep(0.005)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
    assert kills >= 1  # at least one kill landed mid-study
    resumed = CliRunner().invoke(app, ["tune", str(tmp_path / "k.toml"), "-q"])
    assert resumed.exit_code == 0, resumed.output
    assert _result(tmp_path / "k.db") == _result(tmp_path / "ref.db")
    study = Study.load("c", tmp_path / "k.db", readonly=True)
    assert study.count() == 27 and all(t.state.finished for t in study.trials)
    assert [t.state for t in study.current_trials()].count(TrialState.INTERRUPTED) == 0


def test_a_huge_n_trials_asks_one_batch_at_a_time(tmp_path):
    data = load_data("digits")
    study = Study("big", Space(lr=Float(1e-3, 1e-1, scale="log")), metric="dev_error", store=tmp_path / "s.db")
    seen: list[int] = []

    def stop_after_the_first_batch(s: Study, rec) -> None:
        seen.append(len(s.trials))
        if len(seen) == 8:
            raise KeyboardInterrupt

    try:
        run_caviar(study, data, {"units": 8, "batch_size": 256}, n_trials=2**63 - 1, epochs=1,
                   settings=CaviarSettings(batch=8), callbacks=[stop_after_the_first_batch])
    except KeyboardInterrupt:
        pass
    assert seen == [8] * 8  # the first batch's 8 trials were all the study had asked while they trained
    assert len(study.trials) == 8


def test_timeout_interrupts_the_group_at_an_epoch_boundary(tmp_path):
    study = Study("t", Space(lr=Float(1e-3, 1e-1, scale="log")), metric="dev_error", store=tmp_path / "s.db")
    t0 = time.monotonic()
    run_caviar(study, load_data("digits"), {"units": 64, "batch_size": 16}, n_trials=4, epochs=10**6,
               timeout=1.0)
    assert time.monotonic() - t0 < 30
    assert {t.state for t in study.trials} == {TrialState.INTERRUPTED}
    assert {t.error for t in study.trials} == {"still running when the study's timeout of 1 s passed"}
    assert all(len(t.curve) >= 1 for t in study.trials)


def _two_groups_study(tmp_path: Path) -> Study:
    # two batch sizes cannot be fused: two groups of two models
    return Study("g", Space(lr=Float(1e-3, 1e-1, scale="log"), batch_size=Choice([16, 32])), metric="dev_error",
                 store=tmp_path / "s.db", sampler={"type": "grid", "points": 2})


def test_ctrl_c_in_one_group_stops_the_run_at_once_and_interrupts_the_groups_not_yet_trained(tmp_path):
    study = _two_groups_study(tmp_path)

    def ctrl_c(s, rec):
        raise KeyboardInterrupt

    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        run_caviar(study, load_data("digits"), {"units": 16}, n_trials=4, epochs=10**6, callbacks=[ctrl_c],
                   settings=CaviarSettings(rungs=(1,), eta=2))
    assert time.monotonic() - t0 < 60
    trials = study.trials
    first = [t for t in trials if t.params["batch_size"] == trials[0].params["batch_size"]]
    second = [t for t in trials if t not in first]
    assert sorted(t.state.value for t in first) == ["interrupted", "pruned"]  # the callback ran at the stop
    assert [t.state for t in second] == [TrialState.INTERRUPTED] * 2
    assert all(len(t.curve) == 0 for t in second)  # the second group never started


def test_an_error_in_one_of_two_groups_side_by_side_stops_the_other(tmp_path):
    study = _two_groups_study(tmp_path)

    def fail_once_trained(s, rec):
        raise RuntimeError("a callback's bug")

    with pytest.raises(RuntimeError, match="a callback's bug"):
        run_caviar(study, load_data("digits"), {"units": 16}, n_trials=4, epochs=10**6,
                   callbacks=[fail_once_trained], settings=CaviarSettings(rungs=(1,), eta=2, n_jobs=2))
    assert all(t.state.finished for t in study.trials)  # the other group stopped at its next epoch boundary
    assert TrialState.INTERRUPTED in {t.state for t in study.trials}
