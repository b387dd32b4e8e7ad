"""Successive halving: the rung table by hand, and inside a real fused study."""
from __future__ import annotations

import pytest

from sturgeon import Float, Space, Study, TrialPruned, TrialState
from sturgeon.caviar import CaviarSettings, run_caviar
from sturgeon.schedulers import SuccessiveHalving


def test_rung_table_27_models_eta_3():
    sh = SuccessiveHalving(rungs=(1, 3, 9), eta=3)
    # value of model m is m (lower is better); 27 -> 9 -> 3 -> 1
    stops1 = sh.judge(1, {m: float(m) for m in range(27)})
    assert sorted(stops1) == list(range(9, 27))
    assert sh.judge(2, {m: float(m) for m in range(9)}) == {}  # not a rung
    stops3 = sh.judge(3, {m: float(10 - m) for m in range(9)})  # now model 8 is best
    assert sorted(stops3) == list(range(0, 6))
    stops9 = sh.judge(9, {6: 0.5, 7: 0.25, 8: 0.75})
    assert sorted(stops9) == [6, 8]
    assert stops9[8].reason == "successive halving at epoch 9: rank 3 of 3, the best 1 continue"


def test_asynchronous_rule_judges_latecomers_against_everything_seen():
    sh = SuccessiveHalving(rungs=(1,), eta=2)
    assert sh.judge(1, {0: 0.1, 1: 0.9}) .keys() == {1}
    # a latecomer at 0.5 ranks 2nd of 3: the best max(1, 3 // 2) = 1 continue, so it stops; 0.05 would stay
    assert sh.judge(1, {2: 0.5}).keys() == {2}
    assert sh.judge(1, {3: 0.05}) == {}


def test_ties_rank_by_model_id_and_maximize_flips():
    sh = SuccessiveHalving(rungs=(1,), eta=2)
    assert sh.judge(1, {0: 1.0, 1: 1.0, 2: 1.0, 3: 1.0}).keys() == {2, 3}
    assert SuccessiveHalving(rungs=(1,), eta=2).judge(1, {0: 0.1, 1: 0.9}, minimize=False).keys() == {0}


@pytest.mark.parametrize("rungs, eta, message", [
    ((3, 1), 3, "The 'rungs' parameter must be increasing epochs >= 1. Got (3, 1) instead."),
    ((1, 3), 1, "The 'eta' parameter must be an integer >= 2. Got 1 instead."),
])
def test_bad_settings(rungs, eta, message):
    with pytest.raises(ValueError) as e:
        CaviarSettings(rungs=rungs, eta=eta)
    assert str(e.value) == message


def test_halving_inside_a_fused_study_stops_exactly_the_right_trials(digits32):
    study = Study(space=Space(lr=Float(1e-4, 1e-1, scale="log")), metric="dev_error",
                  sampler={"type": "random", "seed": 3})
    run_caviar(study, digits32, {"units": 16, "batch_size": 128}, n_trials=9, epochs=3,
               settings=CaviarSettings(rungs=(1, 2), eta=3))
    trials = study.trials
    # rung 1: 9 -> best 3 continue (ties by trial number, as the models were added in trial order)
    rank1 = sorted(trials, key=lambda t: (t.curve[0]["dev_error"], t.number))
    assert {t.number for t in trials if len(t.curve) == 1} == {t.number for t in rank1[3:]}
    # rung 2: 3 -> best 1 continues and completes epoch 3
    survivors = sorted(rank1[:3], key=lambda t: (t.curve[1]["dev_error"], t.number))
    assert [t.number for t in trials if t.state is TrialState.COMPLETE] == [survivors[0].number]
    assert all(t.state is TrialState.PRUNED for t in trials if t.number != survivors[0].number)
    assert study.trials[survivors[0].number].value == survivors[0].curve[2]["dev_error"]
    events = [e for e in study.events() if e.kind != "group"]  # the group event names the 9 draws fused
    assert len(events) == 8 and all(e.kind == "stop" and e.source == "caviar" for e in events)
    assert {e.step for e in events} == {0, 1}


def test_a_value_reported_again_at_a_rung_replaces_the_old_one():
    sh = SuccessiveHalving(rungs=(1,), eta=2)
    sh.judge(1, {0: 0.1, 1: 0.9, 2: 0.5})
    assert sh.judge(1, {0: 0.95}).keys() == {0}  # 0 now ranks 3rd of 3 (not 4 entries): the best 1 continues
    assert sh.seen[1] == {0: 0.95, 1: 0.9, 2: 0.5}


def test_one_scheduler_object_shared_by_two_studies_ranks_each_on_its_own():
    def curves(study):
        def objective(trial):
            for step in range(3):
                trial.report(step, err=trial["lr"] * (step + 1))
                if trial.should_stop:
                    raise TrialPruned()
            return trial["lr"]
        study.optimize(objective, n_trials=8)
        return [t.state for t in study.trials]

    space = Space(lr=Float(1e-3, 1.0, scale="log"))
    shared = SuccessiveHalving(rungs=(1, 2), eta=2)
    Study(space=space, metric="loss", scheduler=shared).optimize(lambda t: (t.report(0, loss=1.0), 1.0)[1],
                                                                 n_trials=4)
    b = curves(Study(space=space, metric="err", scheduler=shared, sampler={"type": "random", "seed": 1}))
    alone = curves(Study(space=space, metric="err", scheduler=SuccessiveHalving(rungs=(1, 2), eta=2),
                         sampler={"type": "random", "seed": 1}))
    assert b == alone and TrialState.PRUNED in b
