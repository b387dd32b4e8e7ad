"""The model-based samplers (tpe, gp, and auto: the default): they zoom in by themselves, serve parallel,
batch, resumed and pruned studies, and ignore what a trial did not use."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.special import ndtri

from sturgeon import Choice, CoarseToFine, Float, Int, Space, Study
from sturgeon.samplers import AutoSampler, GPSampler, TPESampler, sampler_from_dict
from sturgeon.schedulers import SuccessiveHalving
from sturgeon.testfunctions import OPTIMUM, curve_objective, training_surface
from sturgeon.trial import Direction, TrialRecord, TrialState
from tests.samplers.test_samplers import _evals_to_hit

MODELS = {"tpe": TPESampler, "gp": GPSampler, "auto": AutoSampler}

SPACE = Space(lr=Float(1e-4, 1, scale="log"), beta=Float(0.9, 0.999, scale="reverse_log"),
              units=Int(16, 512, scale="log"))


def test_auto_needs_at_most_half_the_evaluations_of_coarse_to_fine_on_a_narrow_optimum():
    # measured at these seeds: auto (its GP phase) 15.0 evaluations on average, coarse-to-fine 53.9
    auto = np.mean([_evals_to_hit(AutoSampler(seed=s)) for s in range(10)])
    c2f = np.mean([_evals_to_hit(CoarseToFine(round_size=20, top=0.2, seed=s)) for s in range(10)])
    assert auto <= 0.5 * c2f


def _finished(space, n, seed=0, objective=training_surface):
    """``n`` complete trials at random points, numbered 0..n-1."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        params = space.from_unit(rng.random(len(space)).tolist())
        out.append(TrialRecord(i, params, TrialState.COMPLETE, value=objective(params)))
    return out


def _unit(space, params):
    return np.array(space.to_unit(params))


@pytest.mark.parametrize("kind", MODELS)
def test_the_first_trials_are_sobol_points_then_the_model_zooms_in(kind):
    study = Study(space=SPACE, sampler=MODELS[kind](n_startup=10, seed=4))
    study.optimize(training_surface, n_trials=60)
    sobol = Study(space=SPACE, sampler={"type": "sobol", "seed": 4})
    sobol.optimize(training_surface, n_trials=10)
    assert [t.params for t in study.trials[:10]] == [t.params for t in sobol.trials]
    u_opt = np.array([SPACE["lr"].to_unit(OPTIMUM["lr"]), SPACE["beta"].to_unit(OPTIMUM["beta"])])
    dist = [np.linalg.norm(_unit(SPACE, t.params)[:2] - u_opt) for t in study.trials]
    assert np.median(dist[40:]) < 0.5 * np.median(dist[:10])  # later trials gather around the optimum


@pytest.mark.parametrize("kind", MODELS)
def test_a_random_floor_keeps_every_region_open(kind):
    s = MODELS[kind](random_fraction=0.25, seed=0)
    history = _finished(SPACE, 30)
    coins = [np.random.default_rng([0, n, 1]).random() < 0.25 for n in range(30, 230)]
    far = 0
    for n, coin in zip(range(30, 230), coins, strict=True):
        if not coin and kind != "tpe":
            continue  # the model's own proposals are tested elsewhere; a GP's are slower
        params = s.sample(SPACE, n, history, Direction.MINIMIZE)
        if coin:  # the floor's draws are the uniform point of the same stream: anywhere in the cube
            rng = np.random.default_rng([0, n, 1])
            rng.random()
            assert params == SPACE.from_unit(rng.random(3).tolist())
            far += SPACE.to_unit(params)[0] > 0.8  # lr > 0.16: far from the optimum at 3e-3
    assert sum(coins) > 30 and far > 0


@pytest.mark.parametrize("kind", ["tpe", "gp"])
def test_running_trials_push_new_proposals_away(kind):
    # a constant liar: K proposals asked before any of them tells are spread, not K copies of one optimum
    space, k = SPACE, 16
    history = _finished(space, 40, seed=1)
    spread_liar, spread_blind = [], []
    for seed in range(6 if kind == "tpe" else 2):
        s = MODELS[kind](random_fraction=0.0, seed=seed)
        pending: list[TrialRecord] = []
        blind = []
        for n in range(40, 40 + k):
            p = s.sample(space, n, history + pending, Direction.MINIMIZE)
            pending.append(TrialRecord(n, p, TrialState.RUNNING))
            blind.append(s.sample(space, n, history, Direction.MINIMIZE))  # as if the pending trials were unseen
        assert len({tuple(p.params.values()) for p in pending}) == k
        for batch, out in ((pending, spread_liar), (blind, spread_blind)):
            pts = np.array([_unit(space, b.params if isinstance(b, TrialRecord) else b) for b in batch])
            out.append(np.mean([np.linalg.norm(a - b) for i, a in enumerate(pts) for b in pts[i + 1:]]))
    assert np.mean(spread_liar) > np.mean(spread_blind)


@pytest.mark.parametrize("kind", MODELS)
def test_a_fused_batch_asks_distinct_points(kind):
    study = Study(space=SPACE, sampler=MODELS[kind](seed=2))
    study.optimize(training_surface, n_trials=20)
    batch = [study.ask() for _ in range(32)]  # a caviar group: asked together, trained together
    assert len({tuple(t.params.values()) for t in batch}) == 32
    units = np.array([_unit(SPACE, t.params) for t in batch])
    assert units.std(axis=0).min() > 0.02  # spread in every dimension, not one point jittered


@pytest.mark.parametrize("kind", MODELS)
def test_parallel_workers_get_distinct_points_and_a_serial_study_is_reproducible(kind):
    runs = []
    for n_jobs in (1, 1, 4):
        study = Study(space=SPACE, sampler=MODELS[kind](seed=3))
        study.optimize(training_surface, n_trials=40, n_jobs=n_jobs)
        runs.append([t.params for t in study.trials])
    assert runs[0] == runs[1]
    assert len({tuple(p.values()) for p in runs[2]}) == 40


@pytest.mark.parametrize("kind", MODELS)
def test_a_resumed_study_proposes_what_an_unbroken_one_would(kind, tmp_path):
    whole = Study(space=SPACE, sampler=MODELS[kind](seed=6))
    whole.optimize(training_surface, n_trials=40)
    db = tmp_path / "s.db"
    first = Study("s", SPACE, sampler=MODELS[kind](seed=6), store=db)
    first.optimize(training_surface, n_trials=23)
    first.close()
    resumed = Study.load("s", db)  # a fresh sampler from the stored description, the history from the file
    resumed.optimize(training_surface, n_trials=17)
    assert [t.params for t in resumed.trials] == [t.params for t in whole.trials]


def test_pruned_trials_rank_after_every_complete_one():
    s = TPESampler(gamma=0.5)
    space = Space(x=Float(0, 1))
    complete = [TrialRecord(i, {"x": i / 10}, TrialState.COMPLETE, value=1.0 + i) for i in range(4)]
    # an early report can look better than any final value; it is not a result, and never counts as one
    pruned = [TrialRecord(4, {"x": 0.9}, TrialState.PRUNED, value=0.01, curve={0: {"value": 0.01}}),
              TrialRecord(5, {"x": 0.8}, TrialState.PRUNED, value=0.5, curve={3: {"value": 0.5}})]
    failed = TrialRecord(6, {"x": 0.7}, TrialState.FAILED, error="boom")
    table = s.history_for(space)
    idx = table.sync(complete + pruned + [failed], 7)
    good, bad = table.split(idx, Direction.MINIMIZE, 0.5)
    assert good.tolist() == [0, 1, 2]  # ceil(0.5 * 6) = 3 good: complete ones first
    assert bad.tolist() == [3, 5, 4]  # then the pruned one that got further (step 3) before the one at step 0
    idx = table.sync(pruned, 7)  # with no complete trial, the pruned ones are ranked among themselves
    assert table.split(idx, Direction.MINIMIZE, 0.5)[0].tolist() == [5]


def test_equal_values_share_one_normal_score():
    # a small validation set gives few distinct values: trials 1 and 2 tie and must look alike to the model
    space = Space(x=Float(0, 1))
    records = [TrialRecord(i, {"x": i / 10}, TrialState.COMPLETE, value=v) for i, v in enumerate([0.3, 0.1, 0.1, 0.7])]
    table = TPESampler().history_for(space)
    idx = table.sync(records, 4)
    ranked = table.ranked(idx, Direction.MINIMIZE)
    z = table.scores(ranked, Direction.MINIMIZE)
    q = ndtri((np.arange(4) + 0.5) / 4)
    assert ranked.tolist() == [1, 2, 0, 3]
    np.testing.assert_array_equal(z, [(q[0] + q[1]) / 2, (q[0] + q[1]) / 2, q[2], q[3]])


def test_smoothing_prefers_a_good_neighbourhood_to_one_lucky_draw():
    # trial 0 has the best value but sits alone among bad ones (a lucky draw); trials 4..7 are a good region
    space = Space(x=Float(0, 1))
    xs = [0.9, 0.85, 0.95, 0.8] + [0.2, 0.22, 0.25, 0.18]
    values = [0.10, 2.0, 2.1, 1.9] + [0.30, 0.25, 0.35, 0.28]
    records = [TrialRecord(i, {"x": x}, TrialState.COMPLETE, value=v) for i, (x, v) in enumerate(zip(xs, values))]
    table = TPESampler().history_for(space)
    idx = table.sync(records, 8)
    assert table.split(idx, Direction.MINIMIZE, 0.125)[0].tolist() == [0]  # raw: the luckiest value
    good, bad = table.split(idx, Direction.MINIMIZE, 0.125, smoothing=0.1)
    # closed form: each trial's kernel average of the normal scores of all 8 (ranks by value, no ties)
    x, q = np.array(xs), ndtri((np.argsort(np.argsort(values)) + 0.5) / 8)
    w = np.exp(-0.5 * ((x[:, None] - x[None, :]) / 0.1) ** 2)
    average = w @ q / w.sum(axis=1)
    assert good.tolist() == [int(np.argmin(average))] and good[0] in (4, 5, 6, 7)  # in the good region
    assert sorted(good.tolist() + bad.tolist()) == list(range(8))
    with pytest.raises(ValueError, match="The 'smoothing' parameter must be a number in \\[0, 1\\]. Got -1 instead."):
        TPESampler(smoothing=-1)


def test_an_asha_study_with_the_model_prunes_and_still_zooms_in():
    space = Space(lr=Float(1e-4, 1, scale="log"), beta=Float(0.9, 0.999, scale="reverse_log"))
    study = Study(space=space, metric="dev_error", sampler=AutoSampler(seed=0),
                  scheduler=SuccessiveHalving(rungs=(1, 3), eta=3))
    study.optimize(curve_objective, n_trials=60)
    states = [t.state for t in study.trials]
    assert TrialState.PRUNED in states and TrialState.COMPLETE in states
    assert study.best.value < 0.1


@pytest.mark.parametrize("kind", ["tpe", "gp"])
def test_a_param_the_trial_did_not_use_does_not_steer_the_model(kind):
    space = Space(optimizer=Choice(["adam", "momentum"]), lr=Float(1e-4, 1, scale="log"),
                  momentum=Float(0.5, 0.99, scale="reverse_log"))
    conditions = {"momentum": {"optimizer": ["momentum"]}}
    base = _finished(space, 30, seed=5, objective=lambda p: training_surface({"lr": p["lr"]}))
    rng = np.random.default_rng(9)
    # the same trials with other momentum values wherever adam ignored them
    other = [t if t.params["optimizer"] == "momentum" else
             TrialRecord(t.number, {**t.params, "momentum": float(rng.uniform(0.5, 0.99))}, t.state, t.value)
             for t in base]
    assert other != base
    numbers = range(30, 50 if kind == "tpe" else 34)
    make = MODELS[kind]
    for n in numbers:
        a = make(conditions=conditions, random_fraction=0.0, seed=1).sample(space, n, base, Direction.MINIMIZE)
        b = make(conditions=conditions, random_fraction=0.0, seed=1).sample(space, n, other, Direction.MINIMIZE)
        assert a == b
    blind = [make(random_fraction=0.0, seed=1).sample(space, n, h, Direction.MINIMIZE)
             for n in numbers for h in (base, other)]
    assert blind[0::2] != blind[1::2]  # without the conditions, the ignored values would have moved proposals


def test_focus_is_the_box_of_the_good_trials_in_unit_and_natural_coordinates():
    space = Space(x=Float(0, 100), act=Choice(["relu", "tanh", "elu"]))
    trials = [TrialRecord(i, {"x": float(10 * i), "act": "tanh" if i == 4 else "relu"}, TrialState.COMPLETE,
                          value=abs(10 * i - 42)) for i in range(11)]
    s = TPESampler(gamma=0.25, n_startup=0)
    box = s.focus(space, trials, Direction.MINIMIZE)
    h = s.parzen(s._history, np.array([4, 5, 3])).h[0]  # ceil(0.25 * 11) = 3 good: x = 40, 50, 30
    assert box.bounds == {"x": (round(0.3 - h, 12), round(0.5 + h, 12))}
    assert box.keep == {"act": ["relu", "tanh"]}
    sub = box.space(space)
    assert sub["x"].lo == pytest.approx(100 * (0.3 - h)) and sub["act"].values == ["relu", "tanh"]
    assert TPESampler().focus(space, trials[:5], Direction.MINIMIZE) is None  # still in its Sobol start
    auto = AutoSampler(n_startup=0)
    auto.tpe.gamma = auto.tpe.focus_gamma = 0.25
    assert auto.focus(space, trials, Direction.MINIMIZE) == box  # the default shows the same box


@pytest.mark.parametrize(("spec", "message"), [
    ({"type": "tpe", "n_startup": -1}, "The 'sampler.n_startup' key must be an integer >= 0. Got -1 instead."),
    ({"type": "tpe", "gamma": 0}, "The 'sampler.gamma' key must be a number in (0, 1]. Got 0 instead."),
    ({"type": "tpe", "random_fraction": True}, "The 'sampler.random_fraction' key must be a number in [0, 1]. "
                                               "Got True instead."),
    ({"type": "tpe", "n_candidates": 0}, "The 'sampler.n_candidates' key must be an integer >= 1. Got 0 instead."),
    ({"type": "auto", "gp_trials": -5}, "The 'sampler.gp_trials' key must be an integer >= 0. Got -5 instead."),
    ({"type": "auto", "round_size": 5}, "Unknown key 'sampler.round_size' for the auto sampler. "
                        "Known: conditions, gp_trials, n_startup, random_fraction, seed."),
    ({"type": "tpe", "conditions": {"momentum": ["momentum"]}},
     "The 'conditions.momentum' entry must be a table {other: [values]} such as {optimizer = [\"momentum\"]}. "
     "Got ['momentum'] instead."),
])
def test_bad_settings_are_refused_in_one_line(spec, message):
    with pytest.raises(ValueError) as e:
        sampler_from_dict(spec)
    assert str(e.value) == message


def test_conditions_naming_a_missing_parameter_are_refused():
    s = TPESampler(conditions={"momentum": {"optimizer": ["momentum"]}}, n_startup=0)
    history = _finished(SPACE, 5)
    with pytest.raises(ValueError, match=r"^The 'sampler.conditions' name the parameter 'momentum', which the "
                                         r"space does not have. Known: lr, beta, units.$"):
        s.sample(SPACE, 5, history, Direction.MINIMIZE)
