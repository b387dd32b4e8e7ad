"""Study behaviour: values, failures, pruning, interrupts, parallel trials, resume."""
from __future__ import annotations

import math
import threading

import pytest

from sturgeon import Choice, Decision, Float, Space, StoreError, Study, StudyError, TrialPruned, TrialState
from sturgeon.schedulers import Scheduler

SPACE = Space(x=Float(-1, 1), act=Choice(["relu", "tanh"]))


def test_value_from_number_dict_or_last_report():
    study = Study(space=SPACE, metric="loss")
    answers = iter([0.5, {"loss": 0.25, "acc": 0.9}, None])

    def objective(trial):
        trial.report(0, loss=0.75)
        return next(answers)

    study.optimize(objective, n_trials=3)
    assert [t.value for t in study.trials] == [0.5, 0.25, 0.75]


@pytest.mark.parametrize(
    "result, error",
    [(float("nan"), "the objective returned nan for 'loss'"),
     ({"acc": 1.0}, "the objective returned ['acc'] without the metric 'loss'"),
     ("high", "the objective returned 'high', a string, not a number"),
     ("0.5", "the objective returned '0.5', a string, not a number"),
     (True, "the objective returned True, a bool, not a number"),
     ([0.5], "the objective returned [0.5], not a number"),
     (None, "the objective returned None and never reported 'loss'")],
)
def test_bad_objective_results_fail_the_trial_with_the_reason(result, error):
    study = Study(space=SPACE, metric="loss")
    study.optimize(lambda t: result, n_trials=1)
    t = study.trials[0]
    assert (t.state, t.value, t.error) == (TrialState.FAILED, None, error)


def test_a_raising_objective_fails_its_trial_and_the_search_goes_on():
    study = Study(space=SPACE)

    def objective(trial):
        if trial.number == 1:
            raise RuntimeError("CUDA out of memory")
        return trial["x"]

    study.optimize(objective, n_trials=3)
    states = [t.state for t in study.trials]
    assert states == [TrialState.COMPLETE, TrialState.FAILED, TrialState.COMPLETE]
    assert study.trials[1].error.startswith("RuntimeError: CUDA out of memory (at test_study.py:")


def test_many_failures_in_a_row_stop_the_study():
    study = Study(space=SPACE, max_failures_in_a_row=4)
    with pytest.raises(StudyError, match=r"^4 trials failed in a row; the last error: KeyError: 'lr'"):
        study.optimize(lambda t: t["lr"], n_trials=100)
    assert len(study.trials) == 4


def test_pruning_by_exception_and_by_scheduler():
    class StopAtTwo(Scheduler):
        def on_report(self, trial, step, metrics, history):
            return Decision.STOP if step >= 2 and trial.number % 2 else Decision.CONTINUE

    study = Study(space=SPACE, metric="loss", scheduler=StopAtTwo())

    def objective(trial):
        for step in range(5):
            trial.report(step, loss=10.0 - step)
            if trial.should_stop:
                raise TrialPruned()
        return 5.0

    study.optimize(objective, n_trials=4)
    assert [(t.state, t.value) for t in study.trials] == [
        (TrialState.COMPLETE, 5.0), (TrialState.PRUNED, 8.0), (TrialState.COMPLETE, 5.0), (TrialState.PRUNED, 8.0)]
    assert [(e.trial, e.step, e.kind, e.source) for e in study.events()] == [(1, 2, "stop", "scheduler"), (3, 2, "stop", "scheduler")]


def test_ctrl_c_marks_the_trial_interrupted_and_reraises(tmp_path):
    study = Study("s", SPACE, store=tmp_path / "s.db")

    def objective(trial):
        if trial.number == 2:
            raise KeyboardInterrupt
        return trial["x"]

    with pytest.raises(KeyboardInterrupt):
        study.optimize(objective, n_trials=5)
    assert [t.state for t in Study.load("s", tmp_path / "s.db").trials] == [
        TrialState.COMPLETE, TrialState.COMPLETE, TrialState.INTERRUPTED]


def test_parallel_trials_get_the_same_params_by_number_and_use_threads():
    serial = Study(space=SPACE, sampler={"type": "random", "seed": 9})
    serial.optimize(lambda t: t["x"], n_trials=12)
    threads: set[str] = set()
    barrier = threading.Barrier(3)

    def objective(trial):
        if trial.number < 3:
            barrier.wait(timeout=10)  # three objectives really run at the same time
        threads.add(threading.current_thread().name)
        return trial["x"]

    parallel = Study(space=SPACE, sampler={"type": "random", "seed": 9})
    parallel.optimize(objective, n_trials=12, n_jobs=3)
    assert [t.params for t in parallel.trials] == [t.params for t in serial.trials]
    assert [t.value for t in parallel.trials] == [t.value for t in serial.trials]
    assert len(threads) == 3


def test_maximize_and_leaderboard():
    study = Study(space=SPACE, direction="maximize")
    study.optimize(lambda t: t["x"], n_trials=30)
    xs = sorted((t.params["x"] for t in study.trials), reverse=True)
    assert study.best.params["x"] == xs[0]
    assert [t.value for t in study.leaderboard(3)] == xs[:3]


def test_enqueued_params_are_validated():
    study = Study(space=SPACE)
    t = study.ask({"x": 0.5, "act": "tanh"})
    study.tell(t, 1.0)
    assert study.trials[0].params == {"x": 0.5, "act": "tanh"}
    with pytest.raises(ValueError, match=r"^The 'x' parameter must be in \[-1, 1\]. Got 3 instead.$"):
        study.ask({"x": 3, "act": "tanh"})
    assert len(study.trials) == 1  # a refused ask records nothing


def test_tell_twice_and_bad_arguments():
    study = Study(space=SPACE)
    t = study.ask()
    study.tell(t, 0.1)
    with pytest.raises(StoreError, match="^Trial 0 is not running in study"):
        study.tell(t, 0.2)
    with pytest.raises(ValueError, match="^The 'n_trials' parameter must be an integer >= 0. Got -1 instead.$"):
        study.optimize(lambda t: 0.0, n_trials=-1)
    with pytest.raises(ValueError, match="^The 'direction' parameter must be one of minimize, maximize. Got 'down' instead.$"):
        Study(space=SPACE, direction="down")
    with pytest.raises(ValueError, match="^The 'step' of a report must be an integer >= 0. Got -1 instead.$"):
        study.ask().report(-1, loss=1.0)


def test_resume_refuses_a_changed_space(tmp_path):
    Study("s", SPACE, store=tmp_path / "s.db").optimize(lambda t: t["x"], n_trials=2)
    with pytest.raises(StoreError, match="^A study named 's' already exists"):
        Study("s", SPACE, store=tmp_path / "s.db")
    with pytest.raises(StoreError) as e:
        Study("s", Space(x=Float(0, 1)), store=tmp_path / "s.db", load_if_exists=True)
    assert str(e.value) == (
        f"The study 's' in '{tmp_path / 's.db'}' was created with other settings (space.act was {{'type': 'choice', "
        "'values': ['relu', 'tanh']} and is now unset; space.x.lo was -1.0 and is now 0.0); "
        "its trials would not compare with new ones: give the new settings another study name.")
    again = Study("s", SPACE, store=tmp_path / "s.db", load_if_exists=True)
    again.optimize(lambda t: t["x"], n_trials=1)
    assert len(again.trials) == 3


def test_timeout_stops_asking():
    study = Study(space=SPACE)
    study.optimize(lambda t: t["x"], n_trials=10**6, timeout=0.2)
    # the one trial in flight at the deadline (if any) is recorded interrupted; all others completed
    states = [t.state for t in study.trials]
    assert 0 < len(states) < 10**6 and set(states[:-1]) == {TrialState.COMPLETE}
    assert states[-1] in (TrialState.COMPLETE, TrialState.INTERRUPTED)
    assert not math.isnan(study.best.value)


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_timeout_returns_at_the_deadline_even_when_objectives_hang(tmp_path, n_jobs):
    import time as _time

    release = threading.Event()  # set at the end: the hung objectives then return (after the study has)

    def objective(trial):
        trial.report(0, loss=1.0)
        if trial.number >= 1:
            release.wait(60)  # hangs between reports
        return trial["x"]

    study = Study("s", SPACE, store=tmp_path / "s.db", metric="loss")
    t0 = _time.monotonic()
    study.optimize(objective, n_trials=5, n_jobs=n_jobs, timeout=1.0)
    took = _time.monotonic() - t0
    release.set()
    assert took < 10  # it returned at the deadline, not after 60 s
    stored = Study.load("s", tmp_path / "s.db", readonly=True).trials
    assert [t.state for t in stored] == [TrialState.COMPLETE] + [TrialState.INTERRUPTED] * n_jobs
    assert {t.error for t in stored[1:]} == {"still running when the study's timeout of 1 s passed"}
    # resumed, the interrupted trials run again with their own params before any new draw
    again = Study.load("s", tmp_path / "s.db")
    again.optimize(lambda t: t["x"], n_trials=n_jobs)
    assert [t.params for t in again.trials[-n_jobs:]] == [t.params for t in stored[1:]]
    assert again.count() == 1 + n_jobs


def test_failures_are_recorded_warned_about_and_catch_empty_reraises():
    study = Study(space=SPACE)

    def objective(trial):
        if trial.number % 3 == 1:
            raise KeyError("lr")
        return trial["x"]

    with pytest.warns(Warning, match=r"^3 of 9 trials failed in study .*; the last error: KeyError: 'lr'"):
        study.optimize(objective, n_trials=9)
    assert [t.state for t in study.trials].count(TrialState.FAILED) == 3
    strict = Study(space=SPACE)
    with pytest.raises(KeyError):
        strict.optimize(objective, n_trials=9, catch=())
    assert [t.state for t in strict.trials] == [TrialState.COMPLETE, TrialState.FAILED]
    assert strict.trials[1].error.startswith("KeyError: 'lr'")


def test_retry_failed_reruns_the_same_params_and_replaces_them(tmp_path):
    broken = {"on": True}

    def objective(trial):
        if broken["on"] and trial.number % 2:
            raise RuntimeError("flaky")
        return trial["x"]

    study = Study("s", SPACE, store=tmp_path / "s.db", sampler={"type": "random", "seed": 4})
    with pytest.warns(Warning):
        study.optimize(objective, n_trials=6)
    assert study.count() == 6 and study.count(excluding=(TrialState.INTERRUPTED, TrialState.FAILED)) == 3
    broken["on"] = False
    again = Study.load("s", tmp_path / "s.db")
    again.optimize(objective, n_trials=3, retry=(TrialState.INTERRUPTED, TrialState.FAILED))
    current = again.current_trials()
    assert [t.state for t in current] == [TrialState.COMPLETE] * 6
    assert [t.number for t in current] == [0, 6, 2, 7, 4, 8]
    reference = Study(space=SPACE, sampler={"type": "random", "seed": 4})
    reference.optimize(lambda t: t["x"], n_trials=6)
    assert [t.params for t in current] == [t.params for t in reference.trials]
    # what the sampler sees continues the same sequence: the next draw is the reference's trial 6
    again.optimize(objective, n_trials=1)
    reference.optimize(lambda t: t["x"], n_trials=1)
    assert again.trials[-1].params == reference.trials[-1].params


def test_parallel_trials_with_reports_on_a_file_store(tmp_path):
    db = tmp_path / "s.db"
    study = Study("s", SPACE, store=db, metric="loss")

    def objective(trial):
        for step in range(5):
            trial.report(step, loss=trial["x"] + step)
        return trial["x"]

    study.optimize(objective, n_trials=16, n_jobs=4)
    stored = Study.load("s", db, readonly=True).trials
    assert [t.curve for t in stored] == [{s: {"loss": t.params["x"] + s} for s in range(5)} for t in stored]
    assert all(t.state is TrialState.COMPLETE for t in stored)


def test_ctrl_c_with_threads_stops_running_objectives_at_their_next_report(tmp_path):
    import time as _time

    study = Study("s", SPACE, store=tmp_path / "s.db", metric="loss")
    steps_run: dict[int, int] = {}

    def objective(trial):
        if trial.number == 0:
            return 0.0
        for step in range(100):
            steps_run[trial.number] = step + 1
            trial.report(step, loss=1.0)
            if trial.should_stop:
                raise TrialPruned()
            _time.sleep(0.01)
        return 1.0

    def interrupt(study, rec):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        study.optimize(objective, n_trials=3, n_jobs=3, callbacks=[interrupt])
    _time.sleep(0.3)  # let the worker threads notice
    assert [t.state for t in study.trials] == [TrialState.COMPLETE, TrialState.INTERRUPTED, TrialState.INTERRUPTED]
    assert all(n < 100 for n in steps_run.values())  # they stopped instead of finishing their 100 steps
    stored = Study.load("s", tmp_path / "s.db", readonly=True).trials
    assert all(len(t.curve) <= steps_run.get(t.number, 0) for t in stored[1:])  # one cancelled before it began: 0


def test_numpy_integers_are_valid_steps():
    import numpy as np

    study = Study(space=SPACE, metric="loss")

    def objective(trial):
        for epoch in np.arange(3):
            trial.report(epoch, loss=float(epoch))
        return None

    study.optimize(objective, n_trials=1)
    assert study.trials[0].state is TrialState.COMPLETE and sorted(study.trials[0].curve) == [0, 1, 2]


def test_a_report_the_full_disk_cannot_store_stops_the_study_and_is_not_the_objectives_failure(tiny_disk, fill):
    from sturgeon.store import StoreWriteError

    disk = tiny_disk(1 << 20)
    db = disk / "s.db"
    filler: list = []

    def objective(trial):
        if trial.number == 2:
            filler.append(fill(disk))
        trial.report(0, loss=trial["x"])
        return trial["x"]

    study = Study("s", SPACE, store=db, metric="loss")
    with pytest.raises(StoreWriteError, match=rf"^Cannot write to the store '{db}': the disk is full"):
        study.optimize(objective, n_trials=5)
    filler[0].unlink()
    again = Study.load("s", db)
    assert [t.state for t in again.trials] == [TrialState.COMPLETE, TrialState.COMPLETE, TrialState.INTERRUPTED]
    again.optimize(objective, n_trials=1)  # room again: the interrupted trial runs again with its own params
    assert again.trials[3].params == again.trials[2].params and again.trials[3].state is TrialState.COMPLETE


def test_retrying_failed_trials_runs_each_failed_draw_once_per_call():
    study = Study(space=SPACE, sampler={"type": "random", "seed": 2})

    def objective(trial):
        if trial.params == study.trials[0].params:  # the first point always fails
            raise RuntimeError("always")
        return trial["x"]

    study.optimize(objective, n_trials=3)
    study.optimize(objective, n_trials=3, retry=(TrialState.INTERRUPTED, TrialState.FAILED))
    # trial 3 re-runs draw 0 (and fails again); trials 4 and 5 are new draws, not draw 0 over and over
    assert [study.draw(t.number) for t in study.trials] == [0, 1, 2, 0, 3, 4]
    with pytest.raises(ValueError, match=r"^The 'retry' parameter may hold the states interrupted and failed. "
                                         r"Got 'pruned' instead.$"):
        study.optimize(objective, n_trials=1, retry=(TrialState.PRUNED,))


def test_a_study_reopened_in_the_same_process_takes_over_the_old_objects_trials(tmp_path):
    old = Study("s", SPACE, store=tmp_path / "s.db")
    left = old.ask()  # e.g. a notebook cell raised after ask()
    new = Study.load("s", tmp_path / "s.db")
    assert new.trials[0].state is TrialState.INTERRUPTED and left.should_stop
    new.optimize(lambda t: t["x"], n_trials=1)
    assert new.trials[1].params == left.params and new.count() == 1


def test_a_read_only_study_sees_what_the_writer_added(tmp_path):
    writer = Study("s", SPACE, store=tmp_path / "s.db")
    reader = Study.load("s", tmp_path / "s.db", readonly=True)
    writer.optimize(lambda t: t["x"], n_trials=2)
    assert reader.count() == 2 and len(reader.current_trials()) == 2 and reader.draw(1) == 1


def test_an_error_message_of_several_lines_is_stored_as_one():
    study = Study(space=SPACE)

    def objective(trial):
        raise ValueError("shapes do not match:\n  (3,)\n  (4,)")

    study.optimize(objective, n_trials=1)
    assert study.trials[0].error.startswith("ValueError: shapes do not match: (3,) (4,) (at test_study.py:")


def test_an_objective_that_ignores_the_stop_is_pruned_with_a_note_and_a_warning():
    from sturgeon import SuccessiveHalving
    from sturgeon.study import IgnoredStopWarning

    study = Study(space=SPACE, metric="loss", scheduler=SuccessiveHalving(rungs=(1,), eta=2),
                  sampler={"type": "random", "seed": 0})

    def deaf(trial):
        for step in range(4):
            trial.report(step, loss=trial["x"])  # never looks at trial.should_stop
        return trial["x"]

    with pytest.warns(IgnoredStopWarning, match=r"trained on after the scheduler stopped them"):
        study.optimize(deaf, n_trials=6)
    pruned = [t for t in study.trials if t.state is TrialState.PRUNED]
    assert pruned and all(t.error == "ran on after the scheduler's stop: stopped at step 0, it reported up to "
                          "step 3 (check trial.should_stop or raise TrialPruned to save that compute)" for t in pruned)
