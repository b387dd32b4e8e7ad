"""`sturgeon tune` with the built-in trainer: the main job's result, and bad configs refused in one line."""
from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from sturgeon import Study
from sturgeon.cli import app
from sturgeon.config import ConfigError, load_config
from sturgeon.train import diagnose

runner = CliRunner()
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

SMALL = """
[study]
name = "t"
store = "s.db"
n_trials = 3
[data]
name = "digits"
[model]
epochs = 2
optimizer = "adam"
units = 32
[space]
lr = { type = "float", lo = 1e-3, hi = 1e-2, scale = "log" }
beta1 = { type = "float", lo = 0.8, hi = 0.99, scale = "reverse_log" }
"""


def test_digits_example_reaches_97_percent(tmp_path):
    cfg = tmp_path / "digits.toml"
    cfg.write_text((EXAMPLES / "digits.toml").read_text().replace('"../runs/sturgeon.db"', '"s.db"'))
    result = runner.invoke(app, ["tune", str(cfg), "-q"])
    assert result.exit_code == 0, result.output
    study = Study.load("digits-mlp", tmp_path / "s.db", readonly=True)
    assert len(study.trials) == 20 and study.best.value <= 0.03  # >= 97 % dev accuracy
    assert sorted(study.best.curve) == list(range(10))
    last = study.best.curve[9]
    assert set(last) >= {"train_cost", "train_error", "dev_cost", "dev_error"}
    # the run ends with the basic recipe's diagnosis of the best trial
    advice = diagnose(last["train_error"], last["dev_error"]).advice
    assert f"diagnosis of trial {study.best.number} (train error {last['train_error']:.1%}" in result.output
    assert advice in result.output.replace("\n", " ")


def test_same_config_same_metrics_bit_for_bit(tmp_path):
    curves = []
    for run in ("a", "b"):
        cfg = tmp_path / f"{run}.toml"
        cfg.write_text(SMALL.replace('"s.db"', f'"{run}.db"'))
        assert runner.invoke(app, ["tune", str(cfg), "-q"]).exit_code == 0
        curves.append([t.curve for t in Study.load("t", tmp_path / f"{run}.db", readonly=True).trials])
    assert curves[0] == curves[1]


@pytest.mark.parametrize(
    "edit, message",
    [
        (('optimizer = "adam"', 'optimizer = "adamw"'),
         "The 'optimizer' parameter must be one of sgd, momentum, rmsprop, adam. Got 'adamw' instead."),
        (("lo = 1e-3, hi = 1e-2", "lo = -1e-3, hi = 1e-2"),
         "The 'lr' parameter has scale 'log', so lo must be > 0. Got -0.001 instead."),
        (("lo = 0.8, hi = 0.99", "lo = 0.8, hi = 1.0"),
         "The 'beta1' parameter has scale 'reverse_log' (log-uniform on 1 - x), so hi must be < 1. Got 1.0 instead."),
        (('name = "digits"', 'name = "missing.npz"'), "The 'data' parameter names a file that does not exist"),
        (("units = 32", "units = 32\nlr = 0.1"), "The 'lr' parameter is both fixed in [model] and searched in [space]; keep one."),
        (("[space]", "[space]\nlrr = [1, 2]"), "Unknown parameter 'lrr'."),
        (('name = "digits"', 'name = "digits"\nsplit = 0.1'), "Unknown key 'data.split'."),
        (('name = "digits"', 'name = "digits"\ndev_fraction = "0.2"'), "The 'data.dev_fraction' key must be a number. Got '0.2' instead."),
        (('n_trials = 3', 'n_trials = 3\nmetric = "dev_acc"'),
         "The 'study.metric' key must be one of train_cost, train_error, dev_cost, dev_error for the built-in trainer. Got 'dev_acc' instead."),
        (('[space]', '[space]\nmomentum = { type = "float", lo = 0.8, hi = 0.99, scale = "reverse_log" }'),
         "The 'momentum' parameter is searched, but optimizer 'adam' does not use it (it is read by: momentum)."),
        (('store = "s.db"', 'store = 5'), "The 'study.store' key must be a non-empty string. Got 5 instead."),
        (('[study]\nname = "t"', 'study = 3\n[x]\nname = "t"'), "The 'study' key must be a [study] table. Got 3 instead."),
        (("[space]", "[fused]\nk = 1\n[space]"), "Unknown section [fused] in "),
    ],
)
def test_bad_trainer_configs_exit_2_with_one_line(tmp_path, tune_error, edit, message):
    assert tune_error(SMALL.replace(*edit, 1)).startswith(f"error: {message}")
    assert not (tmp_path / "s.db").exists()  # nothing ran, nothing written


@pytest.mark.parametrize("name", ["digits.toml", "mnist1d.toml", "surface.toml", "caviar.toml"])
def test_shipped_examples_load(name):
    cfg = load_config(EXAMPLES / name)
    assert cfg.n_trials >= 16 and callable(cfg.objective) and cfg.store.name == "sturgeon.db"
    assert cfg.metric == "dev_error" and len(cfg.space) >= 4


def test_function_and_data_together_are_refused(tmp_path):
    cfg = tmp_path / "both.toml"
    cfg.write_text(SMALL + '\n[objective]\nfunction = "sturgeon.testfunctions:training_surface"\n')
    with pytest.raises(ConfigError, match="has both \\[objective\\] and \\[data\\]"):
        load_config(cfg)
