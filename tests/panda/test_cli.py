"""`sturgeon panda` end to end: real processes, a real kill -9, the store as the only channel between them."""
from __future__ import annotations

import json
import math
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sturgeon.cli import app
from sturgeon.panda import Babysitter, BabysitterRules, Run
from tests.panda.conftest import leave_free

ROOT = Path(__file__).resolve().parents[2]

CONFIG = """
[run]
name = "r"
store = "s.db"
epochs = {epochs}
keep_every = 1
threads = 1
{trainable}
[data]
name = "digits"

[model]
optimizer = "momentum"
lr = 0.05
momentum = 0.9
units = 32
seed = 3

[space]
lr = {{ type = "float", lo = 1e-5, hi = 1.0, scale = "log" }}
momentum = {{ type = "float", lo = 0.5, hi = 0.999, scale = "reverse_log" }}
"""


def config(tmp_path: Path, epochs: int = 3, trainable: str = "", extra: str = "") -> Path:
    path = tmp_path / "run.toml"
    path.write_text(CONFIG.format(epochs=epochs, trainable=trainable) + extra)
    return path


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["panda", *args])
    return result.exit_code, result.output


def status(db: Path, name: str = "r") -> dict:
    code, text = cli("status", name, "--store", str(db), "--json")
    assert code == 0, text
    return json.loads(text)


def test_start_status_set_rollback_in_the_terminal(tmp_path):
    cfg = config(tmp_path)
    code, text = cli("start", str(cfg))
    assert code == 0, text
    lines = text.splitlines()
    assert lines[1].startswith("epoch   1/3  train_cost ") and lines[1].endswith("lr 5.00e-02  (branch 0)")
    assert lines[-1].startswith("run r: finished at epoch 3/3 on branch 0 (train_cost ")
    db = tmp_path / "s.db"
    code, text = cli("status", "r", "--store", str(db))
    assert code == 0 and "r: finished — epoch 3/3 on branch 0" in text and "dev_error" in text and "┤" in text
    # a set on a finished run waits for it; a rollback of a finished run continues here, as branch 1
    code, text = cli("set", "r", "momentum=0.95", "--store", str(db), "--reason", "smoother")
    assert code == 0 and text.strip() == ("queued #1: momentum 0.900 -> 0.9500, applied when the run resumes "
                                          "(it is not running now)")
    code, text = cli("rollback", "r", "--to", "1", "lr=0.01", "--store", str(db))
    assert code == 0, text
    s = status(db)
    assert (s["state"], s["branch"], s["epoch"]) == ("finished", 1, 3)
    assert s["params"] == {**s["params"], "lr": 0.01, "momentum": 0.95}
    kinds = [(e["trial"], e["step"], e["kind"], e["param"], e["source"]) for e in s["events"]]
    assert kinds == [(1, 1, "rollback", None, "cli"), (1, 1, "set", "lr", "cli"), (1, 1, "set", "momentum", "cli")]
    run = Run.open("r", db)
    assert [(c.kind, c.state.value) for c in run.store.commands(run.study_id)] == [("set", "applied"),
                                                                                     ("rollback", "applied")]
    code, text = cli("status", "r", "--store", str(db))
    assert "branch 1: epochs 2..3, finished (current)" in text and "from branch 0 at epoch 1" in text


@pytest.mark.parametrize("args, message", [
    (["set", "r", "lr=2"], "error: The 'lr' parameter must be in [1e-05, 1]. Got 2 instead."),
    (["set", "r", "lr=fast"], "error: The 'lr' parameter must be a number. Got 'fast' instead."),
    (["set", "r", "units=64"], "error: Unknown parameter 'units': this run may change lr, momentum."),
    (["set", "r", "lr"], "error: A change must look like name=value (e.g. lr=0.02). Got 'lr' instead."),
    (["set", "r", "lr=0.1", "lr=0.2"], "error: The 'lr' parameter is given twice: lr=0.1 and lr=0.2. Give each "
                                       "change once."),
    (["rollback", "r", "--to", "0", "momentum=0.9", "momentum=0.95"], "error: The 'momentum' parameter is given "
                                                                      "twice: momentum=0.9 and momentum=0.95."),
    (["set", "r", "beta1=0.95"], "error: The 'beta1' parameter cannot be set to 0.95: optimizer 'momentum' does not "
                                 "use it (it is read by: adam)."),
    (["rollback", "r", "--to", "0", "rms_beta=0.9"], "error: The 'rms_beta' parameter cannot be set to 0.9: optimizer "
                                                     "'momentum' does not use it (it is read by: rmsprop)."),
    (["set", "nope", "lr=0.1"], "error: No panda run named 'nope' in"),
    (["rollback", "r", "--to", "9"], "error: Branch 0 of 'r' has no checkpoint at epoch 9; it has: 0, 1."),
    (["pause", "r"], "error: The run 'r' is finished, not running: nothing to pause."),
    (["resume", "r"], "error: The run 'r' is complete at epoch 1 of 1: give more epochs to train further (sturgeon "
                      "panda resume r --epochs N; the config file is not read again), or roll back."),
])
def test_bad_commands_are_one_line_exit_2_and_change_nothing(tmp_path, args, message):
    assert cli("start", str(config(tmp_path, epochs=1)), "-q")[0] == 0
    db = tmp_path / "s.db"
    code, text = cli(*args, "--store", str(db))
    assert code == 2 and text.startswith(message) and text.count("\n") == 1, text
    run = Run.open("r", db)
    assert run.store.commands(run.study_id) == [] and len(run.status().trials) == 1


@pytest.mark.parametrize("extra, message", [
    ("[babysitter]\nlr_cut = 2.0\n", "The 'babysitter.lr_cut' key must be a number in (0, 1). Got 2.0 instead."),
    ("[babysitter]\ncut = 0.5\n", "Unknown key 'babysitter.cut'. Known:"),
    ("[extra]\n", "Unknown section [extra]"),
    ('beta1 = { type = "float", lo = 0.5, hi = 0.999 }\n', "The 'beta1' parameter is in [space], but optimizer "
                                                          "'momentum' does not use it (it is read by: adam)."),
])
def test_bad_configs_are_refused_before_anything_is_stored(tmp_path, extra, message):
    code, text = cli("start", str(config(tmp_path, extra=extra)))
    assert code == 2 and message in text and text.count("\n") == 1, text
    assert not (tmp_path / "s.db").exists()


def test_the_default_space_leaves_out_what_the_optimizer_does_not_read(tmp_path):
    cfg = config(tmp_path, epochs=1)
    cfg.write_text(cfg.read_text().split("[space]")[0])  # no [space]: the built-in trainer's default
    assert cli("start", str(cfg), "-q")[0] == 0
    db = str(tmp_path / "s.db")
    run = Run.open("r", db)
    assert run.space.names == ["lr", "momentum", "l2", "keep_prob"]  # no beta1, beta2, rms_beta under momentum
    for change, readers in (("beta1=0.95", "adam"), ("beta2=0.99", "adam"), ("rms_beta=0.9", "rmsprop")):
        code, text = cli("set", "r", change, "--store", db)
        name, value = change.split("=")
        assert code == 2 and text == (f"error: The '{name}' parameter cannot be set to {value}: optimizer 'momentum' "
                                      f"does not use it (it is read by: {readers}).\n"), text
    assert run.store.commands(run.study_id) == []  # nothing queued
    assert cli("set", "r", "momentum=0.95", "--store", db)[0] == 0


def test_space_must_hold_updatable_params_and_the_start(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[data]\nname = "digits"\n[space]\nunits = { type = "int", lo = 8, hi = 64 }\n')
    code, text = cli("start", str(path))
    assert code == 2 and "The 'units' parameter cannot change while a run trains" in text
    path.write_text('[data]\nname = "digits"\n[model]\nlr = 0.5\n'
                    '[space]\nlr = { type = "float", lo = 1e-4, hi = 0.1 }\n')
    code, text = cli("start", str(path))
    assert code == 2 and ("[model] starts outside [space]: The 'lr' parameter must be in [0.0001, 0.1]. Got 0.5 "
                          "instead.") in text


PANDA = [sys.executable, "-m", "sturgeon", "panda"]
SLOW = '[trainable]\nclass = "tests.panda.quadratic:SlowDigits"\n'  # the built-in trainer, sleeping in one epoch
CALM = {k: v for k, v in os.environ.items() if not k.startswith("STURGEON_TEST")}


def panda(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """``sturgeon panda ARGS`` in a process of its own."""
    return subprocess.run([*PANDA, *args], env=env or CALM, cwd=ROOT, capture_output=True, text=True)


def gone(pid: int) -> None:
    while Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text():
        time.sleep(0.05)


def kill9_in_epoch(folder: Path, epoch: int, *command: str) -> int:
    """Run a panda command that trains a SlowDigits run detached (``start CONFIG --detach``, the default, or
    ``rollback ... --detach``) and kill -9 its worker in the middle of ``epoch``; returns the worker's pid."""
    flag = folder / f"in-epoch-{epoch}"
    env = {**CALM, "STURGEON_TEST_SLOW_EPOCH": str(epoch), "STURGEON_TEST_FLAG": str(flag)}
    started = panda(*(command or ("start", str(folder / "run.toml"), "--detach")), env=env)
    assert started.returncode == 0, started.stderr
    deadline = time.monotonic() + 120
    while not flag.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    pid = int(flag.read_text())
    os.kill(pid, signal.SIGKILL)
    gone(pid)
    return pid


def test_kill9_during_epoch_7_then_resume_finishes_like_an_uninterrupted_run(tmp_path):
    cfg = config(tmp_path, epochs=10, trainable=SLOW)
    db = tmp_path / "s.db"
    kill9_in_epoch(tmp_path, 7)
    crashed = status(db)
    assert (crashed["state"], crashed["epoch"]) == ("crashed", 6)
    resumed = panda("resume", "r", "--store", str(db))
    assert resumed.returncode == 0, resumed.stderr
    reference = panda("start", str(cfg), "--name", "ref", "-q")
    assert reference.returncode == 0, reference.stderr
    done, ref = status(db), status(db, "ref")
    assert (done["state"], done["epoch"], done["branch"]) == ("finished", 10, 1)
    assert done["curve"] == ref["curve"]  # all ten epochs, every metric, exactly
    restart = [e for e in done["events"] if e["kind"] == "restart"]
    assert [(e["trial"], e["step"], e["reason"]) for e in restart] == [(1, 6, "its process died; continues from "
                                                                          "epoch 6")]
    run = Run.open("r", db)
    assert [t.state.value for t in run.status().trials] == ["interrupted", "complete"]


def test_after_kill9_the_branch_tree_says_crashed_and_a_rollback_names_the_branch_it_comes_from(tmp_path):
    cfg = config(tmp_path, epochs=4, trainable=SLOW)
    db = str(tmp_path / "s.db")
    assert panda("start", str(cfg), "-q").returncode == 0  # branch 0: epochs 1..4
    assert cli("rollback", "r", "--to", "2", "--store", db)[0] == 0  # branch 1: epochs 3..4, from branch 0
    # from branch 1, back to a checkpoint of branch 0: the new branch's parent, and its event's source, is 0
    kill9_in_epoch(tmp_path, 4, "rollback", "r", "--to", "3", "-b", "0", "--store", db, "--detach")
    s = status(tmp_path / "s.db")
    assert (s["state"], s["branch"]) == ("crashed", 2)
    assert [(b["trial"], b["parent"], b["step"]) for b in s["branches"]] == [(0, None, 0), (1, 0, 2), (2, 0, 3)]
    rollbacks = [(e["trial"], e["old"], e["new"]) for e in s["events"] if e["kind"] == "rollback"]
    assert rollbacks == [(1, 0, 2), (2, 0, 3)]
    code, text = cli("status", "r", "--store", db)
    assert code == 0 and "r: crashed — epoch 3/4 on branch 2" in text
    assert "branch 2: from epoch 3, none trained, crashed (current)" in text and "running" not in text, text
    assert text.count("from branch 0 at epoch") == 2 and "from branch 1" not in text


def story(events: list[dict]) -> list[tuple]:
    """A run's events as a replay compares them: without the restart a kill added, nor branch numbers."""
    return [(e["step"], e["kind"], e["param"], e["old"], e["new"], e["reason"], e["source"]) for e in events
            if e["kind"] != "restart"]


def test_kill9_of_a_babysat_run_then_resume_continues_its_plateau_count(tmp_path):
    """The babysitter's state (where α last changed: the plateau rule counts from there) is in the checkpoint:
    a run killed between two plateau cuts makes its next cut where an uninterrupted run does."""
    rules = "\n[babysitter]\nplateau_epochs = 3\nwarmup_epochs = 2\n"
    cfg = config(tmp_path, epochs=24, trainable=SLOW, extra=rules)
    db = tmp_path / "s.db"
    reference = panda("start", str(cfg), "--name", "ref", "-q")
    assert reference.returncode == 0, reference.stderr
    ref = status(db, "ref")
    cuts = [e["step"] for e in ref["events"] if e["source"] == "babysitter" and "has not improved" in e["reason"]]
    assert len(cuts) >= 2, f"this test needs two plateau cuts in 24 epochs; got {cuts}"
    # killed in epoch k, the run restarts from k - 1: anywhere strictly between two cuts the count matters
    epoch = random.choice([k for k in range(cuts[0] + 2, cuts[-1] + 1) if k - 1 not in cuts])
    kill9_in_epoch(tmp_path, epoch)
    resumed = panda("resume", "r", "--store", str(db), "-q")
    assert resumed.returncode == 0, resumed.stderr
    done = status(db)
    assert (done["state"], done["epoch"], done["branch"]) == ("finished", 24, 1), f"killed in epoch {epoch}"
    assert done["curve"] == ref["curve"], f"killed in epoch {epoch}"
    assert story(done["events"]) == story(ref["events"]), f"killed in epoch {epoch}"


def test_usage_errors_of_the_console_script_are_one_line(tmp_path):
    done = subprocess.run([sys.executable, "-m", "sturgeon", "panda", "rollback", "r", "--to", "abc"], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == ("error: Invalid value for '--to': Input should be a valid integer, unable to parse string "
                           "as an integer\n")


def test_wait_must_be_a_finite_number_of_seconds(tmp_path):
    assert cli("start", str(config(tmp_path, epochs=1)), "-q")[0] == 0
    code, text = cli("set", "r", "lr=0.01", "--wait", "nan", "--store", str(tmp_path / "s.db"))
    assert code == 2 and text.startswith("error: The '--wait' option must be a number of seconds >= 0. Got nan "
                                         "instead.")
    run = Run.open("r", tmp_path / "s.db")
    assert run.store.commands(run.study_id) == []  # nothing queued


def test_waiting_on_a_run_that_is_not_running_says_so_at_once(tmp_path):
    assert cli("start", str(config(tmp_path, epochs=1)), "-q")[0] == 0
    code, text = cli("set", "r", "lr=0.01", "--wait", "30", "--store", str(tmp_path / "s.db"))
    assert code == 0 and text.strip() == ("queued #1: lr 5.00e-02 -> 1.00e-02, applied when the run resumes "
                                          "(it is not running now)")


def test_pause_and_stop_wait_for_a_detached_run_to_apply_them(tmp_path):
    cfg = config(tmp_path, epochs=100000)  # far more than it will train: only the stop ends it
    cmd = [sys.executable, "-m", "sturgeon", "panda"]
    started = subprocess.run([*cmd, "start", str(cfg), "--detach"], cwd=tmp_path, capture_output=True, text=True)
    assert started.returncode == 0, started.stderr
    db = str(tmp_path / "s.db")
    pid = status(tmp_path / "s.db")["pid"]
    code, text = cli("pause", "r", "--store", db, "--wait", "60")
    assert code == 0 and text.startswith("applied #1: pause, at epoch "), text
    paused = status(tmp_path / "s.db")
    assert paused["state"] == "paused"
    code, text = cli("stop", "r", "--store", db, "--wait", "60")  # a paused run still takes commands
    stopped_at = paused["epoch"]
    assert code == 0 and text.strip() == f"applied #2: stop, stopped at epoch {stopped_at}", text
    deadline = time.monotonic() + 60
    while Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text():
        assert time.monotonic() < deadline, "the worker did not exit after stop"
        time.sleep(0.05)
    done = status(tmp_path / "s.db")
    assert (done["state"], done["epoch"]) == ("stopped", stopped_at)
    code, text = cli("stop", "r", "--store", db, "--wait", "-1")
    assert code == 2 and text.startswith("error: The '--wait' option must be a number of seconds >= 0. Got -1.0 "
                                         "instead.")


BROKEN = '''
class Broken:
    def setup(self, params): raise RuntimeError("no GPU here")
    def step(self): return {}
    def save(self): return {}
    def load(self, state): pass
    def update(self, params): pass


class NotTrainable:
    def setup(self, params): pass


class BadStep(Broken):
    def setup(self, params): pass
    def step(self): raise ValueError("shapes (3,) and (4,) do not match")
'''


def test_a_trainable_beside_the_config_that_fails_to_set_up_is_one_line_recorded_and_replaceable(tmp_path):
    (tmp_path / "mytrain_setup.py").write_text(BROKEN)  # beside the config: importable without PYTHONPATH
    extra = '[trainable]\nclass = "mytrain_setup:Broken"\n'
    cfg = tmp_path / "run.toml"
    cfg.write_text(CONFIG.format(epochs=3, trainable=extra).replace('[data]\nname = "digits"\n', ""))
    code, text = cli("start", str(cfg))
    assert code == 1 and text.splitlines()[-1] == ("error: the run failed: RuntimeError: no GPU here (sturgeon "
                                                   "panda status r shows it)")
    s = status(tmp_path / "s.db")
    assert (s["state"], s["epoch"], s["error"]) == ("failed", 0, "RuntimeError: no GPU here")
    code, text = cli("status", "r", "--store", str(tmp_path / "s.db"))
    assert "why: RuntimeError: no GPU here" in text
    cfg.write_text(cfg.read_text().replace(":Broken", ":NotTrainable"))
    code, text = cli("start", str(cfg))  # the failed run had no checkpoint: starting again replaces it
    assert code == 2 and text.strip() == ("error: The 'trainable.class' key names 'mytrain_setup:NotTrainable', "
                                          "which is not a Trainable: it has no step, save, load, update (a "
                                          "Trainable has setup, step, save, load and update).")


def test_run_names_cannot_leave_the_stores_folder(tmp_path):
    code, text = cli("start", str(config(tmp_path)), "--name", "../escape")
    assert code == 2 and text.strip() == ("error: The run name must be letters, digits, '.', '_' or '-', starting "
                                          "with a letter or a digit (it names the run's folder). Got '../escape' "
                                          "instead.")
    assert not (tmp_path / "escape").exists()


def by_hand(cfg: Path, epochs: int) -> dict[int, dict[str, float]]:
    """The config's run trained by hand in this process, without panda: its curve. A diverging run's numbers
    (which epoch overflows, to NaN or to inf) depend on the CPU's float kernels: tests compare with this,
    made on the same machine, never with numbers recorded elsewhere."""
    from sturgeon.config_panda import load_panda_config

    c = load_panda_config(cfg)
    trainer = c.make()
    trainer.setup(c.params)
    return {e: trainer.step() for e in range(1, epochs + 1)}


def test_a_diverged_run_exits_1_and_its_json_status_is_strict(tmp_path):
    cfg = config(tmp_path, epochs=4)
    cfg.write_text(cfg.read_text().replace("lr = 0.05", "lr = 100.0").replace("hi = 1.0", "hi = 1000.0"))
    bad = [(e, k, v) for e, m in by_hand(cfg, 4).items() for k, v in m.items() if not math.isfinite(v)]
    assert bad, "α = 100 must overflow within 4 epochs for this test to mean anything"
    code, text = cli("start", str(cfg), "-q")
    assert code == 1 and "diverged at epoch" in text
    code, text = cli("status", "r", "--store", str(tmp_path / "s.db"), "--json")
    doc = json.loads(text, parse_constant=lambda c: pytest.fail(f"bare {c} in the JSON"))
    epoch, name, value = bad[0]
    assert (doc["state"], doc["epoch"], doc["error"]) == ("diverged", epoch, f"{name} became {value} at epoch {epoch}")
    assert None in doc["curve"][str(doc["epoch"])].values()  # the NaN (or infinite) cost, as null


def test_set_says_the_value_before_the_change_and_the_value_as_the_run_takes_it(tmp_path):
    assert cli("start", str(config(tmp_path, epochs=1)), "-q")[0] == 0
    code, text = cli("set", "r", "lr=1", "--store", str(tmp_path / "s.db"))
    assert code == 0 and text.strip() == ("queued #1: lr 5.00e-02 -> 1.00e+00, applied when the run resumes "
                                          "(it is not running now)")


def test_commands_to_a_run_held_by_a_python_process_say_when_they_apply(tmp_path):
    from sturgeon.train import Trainer, load_data

    run = Run.create("held", {"optimizer": "momentum", "lr": 0.05, "units": 8, "seed": 1}, store=tmp_path / "s.db")
    run.train(lambda: Trainer(load_data("digits")), until=1)  # this process holds it, paused, between calls
    code, text = cli("stop", "held", "--store", str(tmp_path / "s.db"), "--wait", "5")
    assert code == 0 and text.strip() == (f"queued #1: stop, applied when the Python process holding it (pid "
                                          f"{os.getpid()}) calls train() again")
    assert run.train(lambda: Trainer(load_data("digits"))).epoch == 1  # applied at once: stopped where it was


def test_a_babysitter_rescue_is_a_line_of_its_own_in_the_foreground(tmp_path):
    cfg = config(tmp_path, epochs=2, extra="\n[babysitter]\nlr_cut = 0.001\n")
    cfg.write_text(cfg.read_text().replace("lr = 0.05", "lr = 100.0").replace("hi = 1.0", "hi = 1000.0"))
    why = Babysitter(BabysitterRules(lr_cut=0.001)).diverged(1, by_hand(cfg, 1))
    assert why is not None, "α = 100 must blow up in one epoch for this test to mean anything"
    code, text = cli("start", str(cfg))
    lines = text.splitlines()
    assert code == 0 and lines[1] == f"branch 1: rollback from branch 0 at epoch 0 (babysitter: {why}: roll back and " \
                                     "cut lr x0.001)"
    assert lines[2].startswith("epoch   1/2  ") and lines[2].endswith("lr 1.00e-01  (branch 1)")


def test_a_trainable_raising_a_value_error_in_training_is_a_failed_run_exit_1(tmp_path):
    (tmp_path / "mytrain_step.py").write_text(BROKEN)
    cfg = tmp_path / "run.toml"
    cfg.write_text(CONFIG.format(epochs=3, trainable='[trainable]\nclass = "mytrain_step:BadStep"\n')
                   .replace('[data]\nname = "digits"\n', ""))
    code, text = cli("start", str(cfg))
    assert code == 1 and text.splitlines()[-1] == ("error: the run failed: ValueError: shapes (3,) and (4,) do not "
                                                   "match (sturgeon panda status r shows it)")


def test_paths_with_brackets_are_printed_as_they_are(tmp_path):
    (tmp_path / "runs[old]").mkdir()
    cfg = config(tmp_path, epochs=1)
    cfg.write_text(cfg.read_text().replace('store = "s.db"', 'store = "runs[old]/s.db"'))
    code, text = cli("start", str(cfg), "-q")
    assert code == 0 and text.splitlines()[0] == f"run r: 1 epochs, store {tmp_path / 'runs[old]' / 's.db'}", text


def check_stopped_for_a_full_disk(disk: Path, code: int, text: str, *written: str) -> None:
    """One line naming what could not be written (one of ``written``) and saying the disk is full, exit 1,
    nothing half-written left, and the run's record says why."""
    lines = text.splitlines()
    assert code == 1 and len(lines) == 2, text
    assert lines[1].startswith(tuple(f"error: Cannot write {w}" for w in written)), text
    assert "the disk is full" in lines[1] and "The run stopped; free some space, then: sturgeon panda resume r" \
        in lines[1], text
    assert not list(disk.rglob("*.tmp")) and not list(disk.rglob(".reserve"))
    s = status(disk / "s.db")
    assert s["state"] == "failed" and "the disk is full" in s["error"] and s["pid"] is None, s
    code, shown = cli("status", "r", "--store", str(disk / "s.db"))
    assert code == 0 and "r: failed" in shown and "why: Cannot write" in shown and "the disk is full" in shown


def resumed_like_an_uninterrupted_run(tmp_path: Path, cfg: Path, filler: Path) -> None:
    db = filler.parent / "s.db"
    filler.unlink()  # space freed
    code, text = cli("resume", "r", "--store", str(db), "-q")
    assert code == 0, text
    ref_cfg = tmp_path / "ref.toml"
    ref_cfg.write_text(cfg.read_text().replace(f'store = "{db}"', 'store = "ref.db"'))
    assert cli("start", str(ref_cfg), "-q")[0] == 0
    done, ref = status(db), status(tmp_path / "ref.db")
    assert (done["state"], done["epoch"]) == ("finished", 12) and done["curve"] == ref["curve"]
    assert [e["kind"] for e in done["events"]] == ["failed", "restart"]


def test_a_disk_filled_by_checkpoints_stops_the_run_with_one_line_and_resume_continues_exactly(tmp_path, small_disk):
    cfg = config(tmp_path, epochs=12)
    cfg.write_text(cfg.read_text().replace('store = "s.db"', f'store = "{small_disk / "s.db"}"'))
    filler = leave_free(small_disk, 600 << 10)  # the store, the run's reserve, then a few checkpoints of 35 kB
    code, text = cli("start", str(cfg), "-q")
    # the checkpoint the disk had no room for, or the store's write that found it full first
    check_stopped_for_a_full_disk(small_disk, code, text, f"the checkpoint '{small_disk}/s.artifacts/r/branch-",
                                  f"to the store '{small_disk / 's.db'}'")
    resumed_like_an_uninterrupted_run(tmp_path, cfg, filler)


def test_a_disk_full_when_the_store_writes_stops_the_run_with_one_line_and_resume_continues_exactly(
        tmp_path, small_disk, monkeypatch):
    cfg = config(tmp_path, epochs=12, trainable='[trainable]\nclass = "tests.panda.quadratic:FillsTheDisk"\n')
    cfg.write_text(cfg.read_text().replace('store = "s.db"', f'store = "{small_disk / "s.db"}"'))
    filler = small_disk / "filler"
    monkeypatch.setenv("STURGEON_TEST_FILL_AT", "5")  # epoch 4's checkpoint written, then not a byte left
    monkeypatch.setenv("STURGEON_TEST_WAIT_FOR", str(small_disk / "s.artifacts/r/branch-0/epoch-00004.ckpt"))
    monkeypatch.setenv("STURGEON_TEST_FILL", str(filler))
    code, text = cli("start", str(cfg), "-q")
    check_stopped_for_a_full_disk(small_disk, code, text, f"to the store '{small_disk / 's.db'}'")
    monkeypatch.delenv("STURGEON_TEST_FILL_AT")
    resumed_like_an_uninterrupted_run(tmp_path, cfg, filler)


@pytest.mark.parametrize("name, run", [("panda.toml", "digits-panda"), ("panda-mnist1d.toml", "mnist1d-panda")])
def test_the_shipped_panda_examples_load_and_train(tmp_path, name, run):
    import dataclasses

    from sturgeon.config_panda import load_panda_config
    from sturgeon.panda import RunState

    cfg = load_panda_config(ROOT / "examples" / name)
    assert cfg.name == run and cfg.store == ROOT / "runs" / "sturgeon.db" and cfg.settings.babysitter is not None
    assert {"lr", "momentum"} <= set(cfg.space.names) and cfg.threads == 1
    one = dataclasses.replace(cfg.settings, epochs=1)  # the examples run for minutes; a test trains one epoch
    status = Run.create(cfg.name, cfg.params, store=tmp_path / "s.db", space=cfg.space, settings=one).train(cfg.make)
    assert (status.state, status.epoch) == (RunState.FINISHED, 1) and math.isfinite(status.curve[1]["train_cost"])
