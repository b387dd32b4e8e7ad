"""Coarse-to-fine's incremental state: the same points as a sampler that remembers nothing, at O(1) per ask."""
from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

import sturgeon.samplers.coarse_to_fine as c2f_module
from sturgeon import Choice, CoarseToFine, Float, Int, Space, Study
from sturgeon.testfunctions import training_surface
from sturgeon.trial import Direction, TrialRecord, TrialState

SPACE = Space(lr=Float(1e-4, 1, scale="log"), beta=Float(0.9, 0.999, scale="reverse_log"),
              units=Int(16, 512, scale="log"), act=Choice(["relu", "tanh", "elu"]), bs=Choice([32, 64, 128]))


def flaky(params: dict[str, Any]) -> float | None:
    """The training surface, but no value for one trial in seven (a failed trial, which boxes skip)."""
    return None if int(params["lr"] * 1e6) % 7 == 0 else training_surface(params)


@pytest.mark.parametrize("base", ["random", "sobol"])
def test_every_trial_of_a_study_is_what_a_fresh_sampler_proposes(base):
    c2f = CoarseToFine(round_size=10, base=base, seed=3)
    study = Study(space=SPACE, sampler=c2f)
    for number in range(200):
        # a fresh object has no state to reuse: it computes every box from the history alone
        expected = CoarseToFine(round_size=10, base=base, seed=3).sample(
            SPACE, number, study.view(), Direction.MINIMIZE)
        trial = study.ask()
        assert trial.params == expected, number
        value = flaky(trial.params)
        if value is None:
            study.tell(trial, state=TrialState.FAILED, error="flaky")
        else:
            study.tell(trial, value)
    assert sum(t.state is TrialState.FAILED for t in study.trials) > 5


def test_a_round_box_is_computed_once_not_once_per_ask(monkeypatch):
    calls = {"refine_box": 0, "restrict": 0}
    refine, restrict = c2f_module.refine_box, Space.restrict

    def counting_refine(*args: Any, **kwargs: Any) -> c2f_module.Box:
        calls["refine_box"] += 1
        return refine(*args, **kwargs)

    def counting_restrict(self: Space, *args: Any, **kwargs: Any) -> Space:
        calls["restrict"] += 1
        return restrict(self, *args, **kwargs)

    c2f = CoarseToFine(round_size=20, seed=0)  # its own check of top, margin and min_width calls refine_box
    monkeypatch.setattr(c2f_module, "refine_box", counting_refine)
    monkeypatch.setattr(Space, "restrict", counting_restrict)
    study = Study(space=SPACE, sampler=c2f)
    study.optimize(training_surface, n_trials=400)  # ready() and sample() on every ask
    assert calls["refine_box"] == 400 // 20 - 1  # rounds 1..19, each once
    assert calls["restrict"] <= 400 // 20  # one restricted space per round


class CountingList(list):
    """A list that counts the records read from it (by index, by slice or by iteration)."""

    reads = 0

    def __getitem__(self, index: Any) -> Any:
        got = super().__getitem__(index)
        CountingList.reads += len(got) if isinstance(index, slice) else 1
        return got

    def __iter__(self) -> Any:
        for t in super().__iter__():
            CountingList.reads += 1
            yield t


def test_an_ask_reads_a_bounded_number_of_records_of_the_history():
    # what a study does: one list, appended to on ask, its records replaced on tell; with 4 trials in flight
    c2f = CoarseToFine(round_size=20, seed=1)
    history = CountingList()
    per_ask = []
    for number in range(400):
        if number >= 4 and history[number - 4].state is TrialState.RUNNING:  # tell the oldest of the 4 running
            t = history[number - 4]
            history[number - 4] = replace(t, state=TrialState.COMPLETE, value=training_surface(t.params))
        before = CountingList.reads
        if c2f.ready(number, history):
            params = c2f.sample(SPACE, number, history, Direction.MINIMIZE)
        else:  # the round waits for its last trials: finish them all, as a study's workers would
            for i in range(number - 3, number):
                t = history[i]
                history[i] = replace(t, state=TrialState.COMPLETE, value=training_surface(t.params))
            assert c2f.ready(number, history)
            params = c2f.sample(SPACE, number, history, Direction.MINIMIZE)
        per_ask.append(CountingList.reads - before)
        history.append(TrialRecord(number, params, TrialState.RUNNING))
    # ready() and sample() each read the trials in flight, the new record and two probes: never the whole
    # study (the last asks, with 400 trials, read no more than the first)
    assert max(per_ask) <= 20
    assert max(per_ask[-100:]) <= max(per_ask[:100])


def _finished(seed: int, n: int, target: float) -> list[TrialRecord]:
    """``n`` finished trials of a study that proposed its points with ``seed`` and minimised |x - target|."""
    space = Space(x=Float(0, 1))
    study = Study(space=space, sampler=CoarseToFine(round_size=10, seed=seed))
    study.optimize(lambda t: abs(t["x"] - target), n_trials=n)
    return study.view()


def fresh_box(space: Space, round_: int, history: list[TrialRecord]) -> c2f_module.Box:
    return CoarseToFine(round_size=10, seed=0).box(space, round_, history, Direction.MINIMIZE)


def test_another_history_gets_its_own_box():
    space = Space(x=Float(0, 1))
    a, b = _finished(0, 30, 0.1), _finished(0, 30, 0.9)  # the same first round, other values
    c2f = CoarseToFine(round_size=10, seed=0)
    for history in (a, b, a, list(b), b[:25], b):  # alternating studies, a copy, a shorter prefix
        for r in (1, 2, 3):
            assert c2f.box(space, r, history, Direction.MINIMIZE) == fresh_box(space, r, history)
    assert c2f.box(space, 2, a, Direction.MINIMIZE) != c2f.box(space, 2, b, Direction.MINIMIZE)
    # the same history for the other direction, or another space, is another box too
    assert c2f.box(space, 2, a, Direction.MAXIMIZE) == CoarseToFine(round_size=10, seed=0).box(
        space, 2, a, Direction.MAXIMIZE)
    wide = Space(x=Float(0, 2))
    assert c2f.box(wide, 2, a, Direction.MINIMIZE) == fresh_box(wide, 2, a)


def test_the_same_list_changed_in_place_gets_the_right_box():
    space = Space(x=Float(0, 1))
    c2f = CoarseToFine(round_size=10, seed=0)
    history = _finished(0, 30, 0.1)
    history[3] = replace(history[3], state=TrialState.FAILED, value=None)
    assert c2f.box(space, 2, history, Direction.MINIMIZE) == fresh_box(space, 2, history)
    # a retry, as a study makes one: round 0's failed trial re-run as a new, running trial in its place, which
    # holds round 2 back, then finishes with the best value, which moves round 2's box
    history[3] = TrialRecord(3, history[3].params, TrialState.RUNNING)
    assert not c2f.ready(20, history) and not CoarseToFine(round_size=10).ready(20, history)
    history[3] = replace(history[3], state=TrialState.COMPLETE, value=-1.0)
    assert c2f.ready(20, history)
    moved = c2f.box(space, 2, history, Direction.MINIMIZE)
    assert moved == fresh_box(space, 2, history) and moved != fresh_box(space, 2, _finished(0, 30, 0.1))
    # the list emptied and refilled with another study's trials
    other = _finished(1, 30, 0.9)
    history[:] = other
    assert c2f.box(space, 2, history, Direction.MINIMIZE) == fresh_box(space, 2, other)
    # a hand-made history whose numbers are not its positions: boxes go by the trials' numbers
    shuffled = other[::-1]
    assert c2f.box(space, 2, shuffled, Direction.MINIMIZE) == fresh_box(space, 2, other)
    assert c2f.sample(space, 25, shuffled, Direction.MINIMIZE) == CoarseToFine(round_size=10, seed=0).sample(
        space, 25, other, Direction.MINIMIZE)
