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


def test_objective_section_refuses_unknown_keys(tune_error):
    text = ("[objective]\nfunction = \"sturgeon.testfunctions:curve_objective\"\ntimeout = -0.5\n"
            "[space]\nlr = { type = \"float\", lo = 1e-4, hi = 1.0, scale = \"log\" }\n")
    assert tune_error(text) == "error: Unknown key 'objective.timeout'. Known: function.\n"


def test_a_space_file_written_by_refine_is_used_by_a_config(tmp_path):
    (tmp_path / "fine.toml").write_text('[space]\nlr = { type = "float", lo = 1e-3, hi = 1e-2, scale = "log" }\n')
    cfg = tmp_path / "c.toml"
    cfg.write_text('[objective]\nfunction = "sturgeon.testfunctions:curve_objective"\n[space]\nfile = "fine.toml"\n')
    assert load_config(cfg).space.to_dict() == {"lr": {"type": "float", "lo": 1e-3, "hi": 1e-2, "scale": "log"}}
    cfg.write_text('[objective]\nfunction = "sturgeon.testfunctions:curve_objective"\n[space]\nfile = "gone.toml"\n')
    with pytest.raises(ConfigError, match=r"^The 'space.file' key names 'gone.toml': The space file does not exist"):
        load_config(cfg)


def _csv(path: Path, seed: int) -> None:
    import numpy as np

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(60, 3))
    y = (X[:, 0] > 0).astype(int)
    path.write_text("a,b,c,label\n" + "".join(f"{r[0]},{r[1]},{r[2]},{c}\n" for r, c in zip(X, y)))


def _tuned_on_csv(tmp_path: Path, model: str) -> tuple[Path, str]:
    """A study of 2 trials on a small CSV, tuned once; returns its config and the config's text."""
    _csv(tmp_path / "d.csv", 0)
    text = ('[study]\nname = "t"\nstore = "s.db"\nn_trials = 2\n[data]\nname = "d.csv"\n'
            f'[model]\n{model}[space]\nlr = {{ type = "float", lo = 1e-3, hi = 1e-2, scale = "log" }}\n')
    cfg = tmp_path / "t.toml"
    cfg.write_text(text)
    assert runner.invoke(app, ["tune", str(cfg), "-q"]).exit_code == 0
    return cfg, text


@pytest.mark.parametrize("change, what", [
    (lambda t: t.replace("epochs = 2", "epochs = 3"), "definition.model.epochs was 2 and is now 3"),
    (lambda t: t.replace("units = 8", "units = 9"), "definition.model.units was 8 and is now 9"),
    ("other data", "definition.data.sha256 was '"),
])
def test_resuming_a_study_with_other_data_or_model_is_refused(tmp_path, change, what):
    cfg, text = _tuned_on_csv(tmp_path, "epochs = 2\nunits = 8\n")
    if change == "other data":
        _csv(tmp_path / "d.csv", 1)  # same name, other rows
    else:
        cfg.write_text(change(text))
    result = runner.invoke(app, ["tune", str(cfg), "-q", "-n", "1"])
    assert result.exit_code == 2 and result.output.count("\n") == 1
    assert result.output.startswith(f"error: The study 't' in '{tmp_path / 's.db'}' was created with other settings (")
    assert what in result.output
    assert len(Study.load("t", tmp_path / "s.db", readonly=True).trials) == 2  # nothing was added


def test_writing_a_default_out_resumes_the_same_study(tmp_path):
    cfg, text = _tuned_on_csv(tmp_path, "epochs = 2\n")
    cfg.write_text(text.replace('name = "d.csv"', 'name = "d.csv"\ndev_fraction = 0.2')
                   .replace("epochs = 2", "epochs = 2\nunits = 64\noptimizer = \"adam\""))
    result = runner.invoke(app, ["tune", str(cfg), "-q", "-n", "1"])
    assert result.exit_code == 0, result.output


def test_unfused_trials_are_halved_by_the_same_rung_table(tmp_path):
    from sturgeon.schedulers import SuccessiveHalving

    cfg = tmp_path / "u.toml"
    cfg.write_text(SMALL.replace("n_trials = 3", "n_trials = 9\nn_jobs = 1").replace("epochs = 2", "epochs = 3")
                   .replace("units = 32", "units = 16") + "[caviar]\nfused = false\nrungs = [1, 2]\neta = 3\n")
    result = runner.invoke(app, ["tune", str(cfg), "-q"])
    assert result.exit_code == 0, result.output
    trials = Study.load("t", tmp_path / "s.db", readonly=True).trials
    # one trial at a time: replay the asynchronous rule by hand on the recorded curves
    table = SuccessiveHalving((1, 2), 3)
    for t in trials:
        stopped_at = None
        for step in sorted(t.curve):
            if table.judge(step + 1, {t.number: t.curve[step]["dev_error"]}):
                stopped_at = step
                break
        assert (t.state.value, len(t.curve)) == (("pruned", stopped_at + 1) if stopped_at is not None
                                                 else ("complete", 3))
    assert 0 < sum(t.state.value == "pruned" for t in trials) < 9


def test_hidden_with_units_or_layers_is_refused(tune_error):
    assert tune_error(SMALL.replace("units = 32", "units = 32\nhidden = [32]")) == (
        "error: The 'hidden' parameter (explicit widths) and 'units' are both given; 'hidden' would override "
        "'units': keep one.\n")


@pytest.mark.parametrize("extra, message", [
    ("[caviar]\nfused = false\nrefill = true\n",
     "The 'caviar.refill' key only applies to fused training; remove it or set fused = true."),
    ("[caviar]\nrungs = [1]\n[scheduler]\ntype = \"asha\"\nrungs = [2]\n",
     "Both [caviar] rungs and [scheduler] set early stopping, differently: keep one."),
    ("[scheduler]\ntype = \"median\"\n", "The 'scheduler.type' key must be one of fifo, asha. Got 'median' instead."),
    ("[scheduler]\ntype = \"asha\"\nrung = [1]\n", "Unknown key 'scheduler.rung' for the asha scheduler. Known: eta, metric, rungs."),
    ("[scheduler]\ntype = \"asha\"\nmetric = \"dev_eror\"\n",
     "The 'scheduler.metric' key must be one of train_cost, train_error, dev_cost, dev_error for the built-in "
     "trainer. Got 'dev_eror' instead."),
    ("[scheduler]\ntype = \"asha\"\nmetric = \"train_cost\"\n",
     "The 'scheduler.metric' key must be the study's metric 'dev_error' with fused training (a fused group halves "
     "on it). Got 'train_cost' instead."),
])
def test_bad_early_stopping_settings(tune_error, extra, message):
    assert tune_error(SMALL + extra) == f"error: {message}\n"
