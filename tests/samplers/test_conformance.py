"""One suite every sampler must pass: in bounds, seeded, reproducible, resumable."""
from __future__ import annotations

import pytest

from sturgeon import Choice, CoarseToFine, Float, GridSampler, Int, RandomSampler, SobolSampler, Space, Study
from sturgeon.samplers import AutoSampler, GPSampler, Sampler, TPESampler, sampler_from_dict
from sturgeon.testfunctions import training_surface
from sturgeon.trial import Direction

SPACE = Space(lr=Float(1e-4, 1, scale="log"), beta=Float(0.9, 0.999, scale="reverse_log"),
              units=Int(16, 512, scale="log"), act=Choice(["relu", "tanh"]), bs=Choice([32, 64, 128]))

MAKERS = {
    "random": lambda seed: RandomSampler(seed=seed),
    "sobol": lambda seed: SobolSampler(seed=seed),
    "grid-shuffled": lambda seed: GridSampler(points=4, shuffle=True, seed=seed),
    "coarse_to_fine": lambda seed: CoarseToFine(round_size=10, seed=seed),
    "tpe": lambda seed: TPESampler(n_startup=5, seed=seed),
    "gp": lambda seed: GPSampler(n_startup=5, n_candidates=200, seed=seed),
    "auto": lambda seed: AutoSampler(gp_trials=15, n_startup=5, seed=seed),  # hands over to its TPE mid-run
}


def run(sampler: Sampler, n: int = 40) -> list[dict]:
    study = Study(space=SPACE, sampler=sampler)
    study.optimize(training_surface, n_trials=n)
    return [t.params for t in study.trials]


@pytest.mark.parametrize("kind", MAKERS)
def test_params_are_valid_points_of_the_space(kind):
    for params in run(MAKERS[kind](0)):
        assert SPACE.validate(params) == params


@pytest.mark.parametrize("kind", MAKERS)
def test_same_seed_same_trials_other_seed_other_trials(kind):
    assert run(MAKERS[kind](3)) == run(MAKERS[kind](3))
    assert run(MAKERS[kind](3)) != run(MAKERS[kind](4))


@pytest.mark.parametrize("kind", MAKERS)
def test_round_trips_through_its_description(kind):
    sampler = MAKERS[kind](5)
    again = sampler_from_dict(sampler.to_dict())
    assert type(again) is type(sampler) and again.to_dict() == sampler.to_dict()
    assert run(again, 25) == run(MAKERS[kind](5), 25)


@pytest.mark.parametrize("kind", MAKERS)
def test_a_resumed_study_continues_the_same_sequence(kind, tmp_path):
    whole = run(MAKERS[kind](1), 30)
    db = tmp_path / "s.db"
    first = Study("s", SPACE, sampler=MAKERS[kind](1), store=db)
    first.optimize(training_surface, n_trials=13)
    first.close()
    resumed = Study.load("s", db)  # a fresh sampler, rebuilt from the stored description
    resumed.optimize(training_surface, n_trials=17)
    assert [t.params for t in resumed.trials] == whole


def test_unknown_sampler_is_refused():
    with pytest.raises(ValueError) as e:
        sampler_from_dict({"type": "hyperband"})
    assert str(e.value) == (
        "The 'sampler.type' key must be one of random, sobol, grid, coarse_to_fine, tpe, gp, auto. "
        "Got 'hyperband' instead."
    )
    with pytest.raises(ValueError, match="^The 'seed' parameter must be an integer >= 0. Got -1 instead.$"):
        RandomSampler(seed=-1)


KINDS = "random, sobol, grid, coarse_to_fine, tpe, gp, auto"
C2F_KEYS = "base, margin, min_width, round_size, seed, top"


@pytest.mark.parametrize(
    "spec, message",
    [
        # an unhashable type gave "TypeError: unhashable type: 'list'"
        ({"type": ["random"]}, f"The 'sampler.type' key must be one of {KINDS}. Got ['random'] instead."),
        ({"type": {"kind": "random"}},
         f"The 'sampler.type' key must be one of {KINDS}. Got {{'kind': 'random'}} instead."),
        ({"type": 3}, f"The 'sampler.type' key must be one of {KINDS}. Got 3 instead."),
        # a typo gave "CoarseToFine.__init__() got an unexpected keyword argument"
        ({"type": "coarse_to_fine", "round_sise": 10},
         f"Unknown key 'sampler.round_sise' for the coarse_to_fine sampler. Known: {C2F_KEYS}."),
        ({"type": "random", "points": 3}, "Unknown key 'sampler.points' for the random sampler. Known: seed."),
        ({"round_size": 10},
         "Unknown key 'sampler.round_size' for the random sampler (type = \"coarse_to_fine\" reads it). Known: seed."),
        # a table was reported as an "unknown setting"
        ({"type": "coarse_to_fine", "top": {"a": 1}},
         "The 'sampler.top' key must be a number in (0, 1]. Got {'a': 1} instead."),
        ({"type": "coarse_to_fine", "top": True},
         "The 'sampler.top' key must be a number in (0, 1]. Got True instead."),
        ({"type": "coarse_to_fine", "top": 0}, "The 'sampler.top' key must be a number in (0, 1]. Got 0 instead."),
        ({"type": "coarse_to_fine", "margin": -0.1},
         "The 'sampler.margin' key must be a number >= 0. Got -0.1 instead."),
        ({"type": "coarse_to_fine", "margin": float("nan")},
         "The 'sampler.margin' key must be a number >= 0. Got nan instead."),
        ({"type": "coarse_to_fine", "min_width": "0.1"},
         "The 'sampler.min_width' key must be a number in (0, 1]. Got '0.1' instead."),
        ({"type": "coarse_to_fine", "round_size": 10.0},
         "The 'sampler.round_size' key must be an integer >= 2. Got 10.0 instead."),
        ({"type": "coarse_to_fine", "round_size": True},
         "The 'sampler.round_size' key must be an integer >= 2. Got True instead."),
        ({"type": "coarse_to_fine", "base": ["sobol"]},
         "The 'sampler.base' key must be one of random, sobol. Got ['sobol'] instead."),
        ({"type": "sobol", "seed": 1.5}, "The 'sampler.seed' key must be an integer >= 0. Got 1.5 instead."),
        ({"type": "sobol", "seed": True}, "The 'sampler.seed' key must be an integer >= 0. Got True instead."),
        ({"type": "random", "seed": -3}, "The 'sampler.seed' key must be an integer >= 0. Got -3 instead."),
        ({"type": "grid", "shuffle": "no"}, "The 'sampler.shuffle' key must be true or false. Got 'no' instead."),
        ({"type": "grid", "points": 0},
         "The 'sampler.points' key must be an integer >= 1 or a table of integers >= 1 by parameter name. "
         "Got 0 instead."),
        ({"type": "grid", "points": {"lr": 2.5}},
         "The 'sampler.points' key must be an integer >= 1 or a table of integers >= 1 by parameter name. "
         "Got {'lr': 2.5} instead."),
    ],
)
def test_sampler_descriptions_are_checked_key_by_key(spec, message):
    with pytest.raises(ValueError) as e:
        sampler_from_dict(spec)
    assert str(e.value) == message


def test_sampler_description_must_be_a_table_and_constructors_refuse_bools():
    with pytest.raises(ValueError) as e:
        sampler_from_dict("sobol")  # type: ignore[arg-type]
    assert str(e.value) == (
        "The 'sampler' parameter must be a table such as {'type': 'sobol', 'seed': 3}. Got 'sobol' instead."
    )
    assert type(sampler_from_dict(None)) is RandomSampler and type(sampler_from_dict({})) is RandomSampler
    for make, message in [
        (lambda: GridSampler(shuffle="no"),
         "The 'shuffle' parameter of GridSampler must be true or false. Got 'no' instead."),
        (lambda: CoarseToFine(top=True), "The 'top' parameter of coarse-to-fine must be in (0, 1]. Got True instead."),
        (lambda: CoarseToFine(top="0.2"),
         "The 'top' parameter of coarse-to-fine must be in (0, 1]. Got '0.2' instead."),
        (lambda: CoarseToFine(margin=-1),
         "The 'margin' parameter of coarse-to-fine must be in [0, inf). Got -1 instead."),
        (lambda: SobolSampler(seed=False), "The 'seed' parameter must be an integer >= 0. Got False instead."),
    ]:
        with pytest.raises(ValueError) as e:
            make()
        assert str(e.value) == message


def test_grid_points_for_a_parameter_the_space_lacks_are_refused():
    # a misspelt name silently gave that parameter the default 5 points
    grid = GridSampler(points={"lrr": 3})
    with pytest.raises(ValueError) as e:
        grid.sample(SPACE, 0, [], Direction.MINIMIZE)
    assert str(e.value) == "Unknown parameter 'lrr' in the grid sampler's points. Known: lr, beta, units, act, bs."
