"""Caviar studies end to end: every model a trial, divergence recorded, refill, grouping, tune."""
from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from sturgeon import Choice, Float, Space, Study, TrialState
from sturgeon.caviar import CaviarSettings, make_groups, run_caviar
from sturgeon.cli import app
from sturgeon.train import Trainer, TrainParams

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_each_model_is_a_trial_with_the_unfused_result(digits64):
    space = Space(lr=Float(1e-3, 1e-2, scale="log"), beta1=Float(0.8, 0.99, scale="reverse_log"))
    study = Study(space=space, metric="dev_cost", sampler={"type": "random", "seed": 1})
    fixed = {"units": 16, "dtype": "float64"}
    run_caviar(study, digits64, fixed, n_trials=5, epochs=2)
    for t in study.trials:
        trainer = Trainer(digits64)
        trainer.setup({**fixed, **t.params})
        curve = [trainer.step() for _ in range(2)]
        assert t.state is TrialState.COMPLETE
        assert t.value == pytest.approx(curve[-1]["dev_cost"], abs=1e-9)
        assert t.curve[0]["train_cost"] == pytest.approx(curve[0]["train_cost"], abs=1e-9)


def test_a_diverging_model_is_recorded_diverged_and_the_rest_complete(digits32):
    study = Study(space=Space(lr=Choice([0.01, 50.0, 0.02])), metric="dev_error", sampler={"type": "grid"})
    run_caviar(study, digits32, {"hidden": [64, 64], "optimizer": "sgd", "batch_size": 32}, n_trials=3, epochs=3)
    by_lr = {t.params["lr"]: t for t in study.trials}
    assert by_lr[50.0].state is TrialState.DIVERGED and by_lr[50.0].error.startswith("diverged at epoch 0: train_cost")
    assert [by_lr[lr].state for lr in (0.01, 0.02)] == [TrialState.COMPLETE] * 2
    assert [(e.trial, e.kind, e.source) for e in study.events() if e.kind != "group"] == [
        (by_lr[50.0].number, "diverged", "caviar")]


def test_refill_gives_freed_slots_to_new_trials(digits32):
    study = Study(space=Space(lr=Float(1e-4, 1e-1, scale="log")), metric="dev_error", sampler={"type": "random", "seed": 0})
    run_caviar(study, digits32, {"units": 16, "batch_size": 128}, n_trials=12, epochs=3,
               settings=CaviarSettings(rungs=(1,), eta=3, refill=True, max_models=6))
    trials = study.trials
    assert len(trials) == 12 and all(t.state.finished for t in trials)
    # 6 start; 4 stop at epoch 1 and 4 newcomers take their slots, and so on: newcomers ran in the first group
    assert sum(t.state is TrialState.PRUNED for t in trials) >= 6
    assert {len(t.curve) for t in trials} <= {1, 3}


def test_groups_split_on_what_cannot_be_fused_and_on_the_budget():
    ps = [TrainParams.from_dict(d) for d in
          [{"units": 32}, {"units": 64}, {"units": 32, "lr": 0.1}, {"units": 32, "batch_norm": True}, {"units": 32, "lr": 0.2}]]
    assert make_groups(ps, shape=(8, 8), n_classes=10) == [[0, 2, 4], [1], [3]]
    assert make_groups(ps, shape=(8, 8), n_classes=10, max_models=2) == [[0, 2], [4], [1], [3]]
    from sturgeon.caviar.groups import model_bytes
    one = model_bytes(ps[0], (8, 8), 10)
    assert make_groups(ps, shape=(8, 8), n_classes=10, budget=one) == [[0], [2], [4], [1], [3]]


def test_tune_is_fused_by_default_and_fused_false_turns_it_off(tmp_path):
    runner = CliRunner()
    base = (EXAMPLES / "caviar.toml").read_text().replace('"../runs/sturgeon.db"', '"s.db"').replace("n_trials = 64", "n_trials = 6").replace(
        "epochs = 10", 'epochs = 2\ndtype = "float64"')
    curves = {}
    for fused in (True, False):
        cfg = tmp_path / f"{fused}.toml"
        text = base.replace('[caviar]', f'[caviar]\nfused = {str(fused).lower()}').replace('"s.db"', f'"{fused}.db"')
        text = text.replace("rungs = [1, 3]", "rungs = []")
        cfg.write_text(text)
        result = runner.invoke(app, ["tune", str(cfg), "-q"])
        assert result.exit_code == 0, result.output
        curves[fused] = [t.curve for t in Study.load("caviar-digits", tmp_path / f"{fused}.db", readonly=True).trials]
    # dropout is off and the data order shared: fused and unfused record the same curves
    assert len(curves[True]) == len(curves[False]) == 6
    for a, b in zip(curves[True], curves[False]):
        assert sorted(a) == sorted(b) == [0, 1]
        for step in b:
            for key in b[step]:
                assert a[step][key] == pytest.approx(b[step][key], abs=1e-9)


@pytest.mark.parametrize("edit, message", [
    ("eta = 3", "eta = 1", ),
    ("rungs = [1, 3]", "rungs = 3"),
    ("[caviar]", "[caviar]\nspeed = 2"),
])
def test_bad_caviar_sections(tune_error, edit, message):
    expected = {"eta = 1": "The 'caviar.eta' key must be an integer >= 2. Got 1 instead.",
                "rungs = 3": "The 'caviar.rungs' key must be a list of epochs. Got 3 instead.",
                "[caviar]\nspeed = 2": "Unknown key 'caviar.speed'."}[message]
    assert tune_error((EXAMPLES / "caviar.toml").read_text().replace(edit, message)).startswith(f"error: {expected}")


def test_groups_side_by_side_give_the_same_trials_as_one_after_another(digits64):
    space = Space(lr=Float(1e-3, 1e-2, scale="log"), units=Choice([8, 16]))
    results = []
    for n_jobs in (1, 2):
        study = Study(space=space, metric="dev_cost", sampler={"type": "random", "seed": 4})
        run_caviar(study, digits64, {"dtype": "float64"}, n_trials=6, epochs=2, settings=CaviarSettings(n_jobs=n_jobs))
        results.append([(t.params, t.state, t.value) for t in study.trials])
    assert results[0] == results[1]
    assert {p["units"] for p, _, _ in results[0]} == {8, 16}  # two groups really ran
