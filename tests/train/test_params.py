"""TrainParams: defaults, coercion and the one-line error template."""

from __future__ import annotations

import numpy as np
import pytest

from sturgeon.train import UPDATABLE, Decay, DType, Optimizer, TrainParams


def test_defaults_and_widths() -> None:
    p = TrainParams.from_dict({})
    assert (p.model.value, p.layers, p.units, p.widths) == ("mlp", 2, 64, (64, 64))
    assert (p.optimizer, p.lr, p.momentum, p.rms_beta, p.beta1, p.beta2, p.eps) == (
        Optimizer.ADAM, 1e-3, 0.9, 0.99, 0.9, 0.999, 1e-8,
    )  # fmt: skip
    assert (p.bn_beta, p.bn_eps, p.init.value, p.init_scale) == (0.9, 1e-5, "he", 10.0)
    assert (p.decay, p.decay_rate, p.decay_base, p.decay_every, p.epochs) == (Decay.NONE, 0.5, 0.95, 10, 10)
    assert (p.batch_size, p.l2, p.keep_prob, p.seed, p.dtype, p.target_error) == (64, 0.0, 1.0, 0, DType.FLOAT32, None)
    assert TrainParams.from_dict({"hidden": [7, 3], "layers": 5}).widths == (7, 3)
    assert TrainParams.from_dict({"layers": 0}).widths == ()


def test_coercion_of_sampler_values() -> None:
    p = TrainParams.from_dict({"units": np.int64(32), "layers": 3.0, "lr": np.float64(0.5), "optimizer": Optimizer.SGD})
    assert (p.units, p.layers, p.lr, p.optimizer) == (32, 3, 0.5, Optimizer.SGD)
    assert type(p.units) is int and type(p.lr) is float


def test_round_trip_through_dict() -> None:
    p = TrainParams.from_dict({"hidden": [4, 2], "decay": "cosine", "dtype": "float64", "target_error": 0.05})
    d = p.to_dict()
    assert d["hidden"] == [4, 2] and d["decay"] == "cosine" and d["dtype"] == "float64"
    assert TrainParams.from_dict(d) == p


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"optimizer": "adamw"}, "The 'optimizer' parameter must be one of sgd, momentum, rmsprop, adam. Got 'adamw' instead."),
        ({"lr": -0.1}, "The 'lr' parameter must be > 0. Got -0.1 instead."),
        ({"lr": float("nan")}, "The 'lr' parameter must be > 0. Got nan instead."),
        ({"lr": "0.1"}, "The 'lr' parameter must be > 0. Got '0.1' instead."),
        ({"model": "rnn"}, "The 'model' parameter must be one of mlp, cnn. Got 'rnn' instead."),
        ({"activation": "gelu"}, "The 'activation' parameter must be one of relu, tanh, leaky_relu. Got 'gelu' instead."),
        ({"init": "ones"}, "The 'init' parameter must be one of zeros, large, xavier, he. Got 'ones' instead."),
        ({"decay": "linear"}, "The 'decay' parameter must be one of none, inverse_time, exponential, step, cosine. Got 'linear' instead."),
        ({"dtype": "float16"}, "The 'dtype' parameter must be one of float32, float64. Got 'float16' instead."),
        ({"layers": -1}, "The 'layers' parameter must be an integer >= 0. Got -1 instead."),
        ({"units": 1.5}, "The 'units' parameter must be an integer >= 1. Got 1.5 instead."),
        ({"batch_size": 0}, "The 'batch_size' parameter must be an integer >= 1. Got 0 instead."),
        ({"seed": True}, "The 'seed' parameter must be an integer. Got True instead."),
        ({"hidden": [8, 0]}, "The 'hidden' parameter must be a list of integers >= 1. Got [8, 0] instead."),
        ({"batch_norm": 1}, "The 'batch_norm' parameter must be true or false. Got 1 instead."),
        ({"momentum": 1.0}, "The 'momentum' parameter must be in [0, 1). Got 1.0 instead."),
        ({"beta2": -0.5}, "The 'beta2' parameter must be in [0, 1). Got -0.5 instead."),
        ({"keep_prob": 0.0}, "The 'keep_prob' parameter must be in (0, 1]. Got 0.0 instead."),
        ({"decay_base": 1.5}, "The 'decay_base' parameter must be in (0, 1]. Got 1.5 instead."),
        ({"l2": -1e-4}, "The 'l2' parameter must be >= 0. Got -0.0001 instead."),
        ({"eps": 0}, "The 'eps' parameter must be > 0. Got 0 instead."),
        ({"target_error": 2}, "The 'target_error' parameter must be in [0, 1] or None. Got 2 instead."),
        ({"batch_norm": True, "batch_size": 1}, "The 'batch_size' parameter must be an integer >= 2 with batch_norm. Got 1 instead."),
    ],
)  # fmt: skip
def test_bad_values_are_refused_in_one_line(params: dict, message: str) -> None:
    with pytest.raises(ValueError) as info:
        TrainParams.from_dict(params)
    assert str(info.value) == message


def test_unknown_key_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ValueError) as info:
        TrainParams.from_dict({"lrr": 0.1})
    assert str(info.value) == (
        "Unknown parameter 'lrr'. Known: model, layers, units, hidden, activation, channels, init, init_scale, "
        "batch_norm, optimizer, seed, dtype, bn_beta, bn_eps, lr, momentum, rms_beta, beta1, beta2, eps, decay, "
        "decay_rate, decay_base, decay_every, epochs, batch_size, l2, keep_prob, target_error."
    )


def test_updatable_keys_exclude_architecture() -> None:
    assert {"lr", "momentum", "rms_beta", "beta1", "beta2", "eps", "l2", "keep_prob", "decay"} <= set(UPDATABLE)
    fixed = {"model", "layers", "units", "hidden", "activation", "channels", "init", "batch_norm", "optimizer", "seed", "dtype"}
    assert not fixed & set(UPDATABLE)
