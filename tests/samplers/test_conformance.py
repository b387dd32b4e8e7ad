"""One suite every sampler must pass: in bounds, seeded, reproducible, resumable."""
from __future__ import annotations

import pytest

from sturgeon import Choice, CoarseToFine, Float, GridSampler, Int, RandomSampler, SobolSampler, Space, Study
from sturgeon.samplers import Sampler, sampler_from_dict
from sturgeon.testfunctions import training_surface

SPACE = Space(lr=Float(1e-4, 1, scale="log"), beta=Float(0.9, 0.999, scale="reverse_log"),
              units=Int(16, 512, scale="log"), act=Choice(["relu", "tanh"]), bs=Choice([32, 64, 128]))

MAKERS = {
    "random": lambda seed: RandomSampler(seed=seed),
    "sobol": lambda seed: SobolSampler(seed=seed),
    "grid-shuffled": lambda seed: GridSampler(points=4, shuffle=True, seed=seed),
    "coarse_to_fine": lambda seed: CoarseToFine(round_size=10, seed=seed),
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
    with pytest.raises(ValueError, match="^The 'sampler' parameter must be one of random, sobol, grid, coarse_to_fine. Got 'tpe' instead.$"):
        sampler_from_dict({"type": "tpe"})
    with pytest.raises(ValueError, match="^The 'seed' parameter must be an integer >= 0. Got -1 instead.$"):
        RandomSampler(seed=-1)
