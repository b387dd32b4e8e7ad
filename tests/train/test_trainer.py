"""Trainer behaviour: symmetry, accuracy, determinism, checkpoints, update() and the metrics."""

from __future__ import annotations

import io

import pytest
import torch
import torch.nn.functional as F

from sturgeon.train import Dataset, Diagnosis, Trainable, Trainer, diagnose, lr_at
from tests.train.conftest import tiny_data


def _train(data: Dataset, params: dict, epochs: int) -> tuple[Trainer, list[dict[str, float]]]:
    trainer = Trainer(data)
    trainer.setup(params)
    return trainer, [trainer.step() for _ in range(epochs)]


def _same_weights(a: Trainer, b: Trainer) -> bool:
    tensors = lambda t: {**t.weights, **t.buffers}  # noqa: E731
    return tensors(a).keys() == tensors(b).keys() and all(torch.equal(tensors(a)[k], tensors(b)[k]) for k in tensors(a))


def test_is_a_trainable(digits: Dataset) -> None:
    assert isinstance(Trainer(digits), Trainable)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_zero_init_keeps_every_hidden_unit_identical(digits: Dataset, activation: str) -> None:
    trainer, history = _train(digits, {"init": "zeros", "activation": activation, "lr": 0.01, "units": 16}, 3)
    W1, W2, W3 = (trainer.weights[f"W{l}"] for l in (1, 2, 3))
    assert torch.equal(W1, W1[:1].expand_as(W1))  # rows: incoming weights of each unit
    assert torch.equal(W2, W2[:1].expand_as(W2))
    assert torch.equal(W3, W3[:, :1].expand_as(W3))  # columns: outgoing weights of each last hidden unit
    assert torch.count_nonzero(trainer.weights["b3"]) > 0  # training did run: the output bias learned
    assert history[-1]["dev_error"] > 0.8  # one class for everything, no better than the class prior


def test_he_init_breaks_symmetry_and_reaches_95_percent(digits: Dataset) -> None:
    # Measured: dev accuracy 0.969 after 5 epochs (adam, lr 0.01, 2 x 64 relu, batch 64).
    trainer, history = _train(digits, {"init": "he", "lr": 0.01}, 5)
    W1 = trainer.weights["W1"]
    assert not torch.equal(W1, W1[:1].expand_as(W1))
    assert 1 - history[-1]["dev_error"] >= 0.95


def test_metrics_and_lr_schedule(digits: Dataset) -> None:
    params = {"lr": 0.02, "decay": "step", "decay_rate": 0.5, "decay_every": 2, "l2": 1e-3}
    trainer, history = _train(digits, params, 4)
    assert [m["epoch"] for m in history] == [1.0, 2.0, 3.0, 4.0]
    assert [m["lr"] for m in history] == [0.02, 0.02, 0.01, 0.01]
    assert all(set(m) == {"epoch", "lr", "train_cost", "train_error", "dev_cost", "dev_error"} for m in history)
    assert all(type(v) is float for m in history for v in m.values())
    assert all(0 <= m["train_error"] <= 1 and 0 <= m["dev_error"] <= 1 for m in history)
    # train_cost = mean cross-entropy + l2 / 2 * sum ||W||^2; dev_cost has no penalty
    cross_entropy, error = trainer.evaluate(digits.X_train, digits.y_train)
    penalty = sum(float((trainer.weights[f"W{l}"].detach() ** 2).sum()) for l in (1, 2, 3))
    assert history[-1]["train_cost"] == pytest.approx(cross_entropy + 1e-3 / 2 * penalty, rel=1e-12)
    assert history[-1]["train_error"] == error
    assert history[-1]["dev_cost"] == trainer.evaluate(digits.X_dev, digits.y_dev)[0]
    assert trainer.diagnose() is diagnose(history[-1]["train_error"], history[-1]["dev_error"])


def test_same_seed_is_bit_identical_and_other_seed_differs(digits: Dataset) -> None:
    params = {"lr": 0.01, "keep_prob": 0.8, "batch_norm": True, "units": 32}
    a, history_a = _train(digits, params, 2)
    b, history_b = _train(digits, params, 2)
    _, history_c = _train(digits, {**params, "seed": 1}, 2)
    assert history_a == history_b and _same_weights(a, b)
    assert history_a != history_c


def test_checkpoint_replays_bit_for_bit(digits: Dataset) -> None:
    params = {"lr": 0.01, "optimizer": "adam", "batch_norm": True, "keep_prob": 0.9, "units": 32, "decay": "cosine"}
    trainer, _ = _train(digits, params, 3)
    buffer = io.BytesIO()
    torch.save(trainer.save(), buffer)  # the state survives torch.save / torch.load
    first = [trainer.step() for _ in range(3)]
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    # load into the same trainer, and into a fresh one
    trainer_weights = {k: w.detach().clone() for k, w in trainer.weights.items()}
    trainer.load(state)
    fresh = Trainer(digits)
    fresh.load(state)
    assert trainer.epoch == fresh.epoch == 3
    again = [trainer.step() for _ in range(3)]
    fresh_again = [fresh.step() for _ in range(3)]
    assert first == again == fresh_again
    assert _same_weights(trainer, fresh)
    assert all(torch.equal(trainer_weights[k], w) for k, w in trainer.weights.items())


def test_save_is_a_copy(digits: Dataset) -> None:
    trainer, _ = _train(digits, {"units": 8}, 1)
    state = trainer.save()
    W1 = state["weights"]["W1"].clone()
    trainer.step()
    assert torch.equal(state["weights"]["W1"], W1)


def test_load_refuses_a_checkpoint_for_another_model() -> None:
    trainer, _ = _train(tiny_data(features=5), {"units": 4}, 1)
    other = Trainer(tiny_data(features=6))
    with pytest.raises(ValueError) as info:
        other.load(trainer.save())
    assert str(info.value) == "The checkpoint's weight 'W1' does not fit this model and data."


def test_update_lr_takes_effect_at_the_next_mini_batch(tiny: Dataset) -> None:
    # Full batch: one epoch is one SGD step, so the update is observable exactly.
    params = {"optimizer": "sgd", "lr": 0.1, "batch_size": 1000, "dtype": "float64", "units": 4}
    reference, history_reference = _train(tiny, params, 2)
    trainer, history = _train(tiny, params, 2)
    trainer.update({"lr": 0.5})
    assert history == history_reference  # earlier epochs unaffected
    # by hand: the same data order from a copy of the generator, then w - 0.5 * g
    gen = torch.Generator()
    gen.set_state(trainer.gen.get_state())
    order = torch.randperm(len(tiny.y_train), generator=gen)
    weights = {k: w.detach().clone().requires_grad_(True) for k, w in trainer.weights.items()}
    logits = trainer.network.forward(weights, {}, tiny.X_train[order], training=True, gen=gen)
    grads = torch.autograd.grad(F.cross_entropy(logits, tiny.y_train[order]), list(weights.values()))
    expected = {k: (w - 0.5 * g).detach() for (k, w), g in zip(weights.items(), grads)}
    metrics = trainer.step()
    assert metrics["lr"] == 0.5
    assert all(torch.equal(trainer.weights[k], expected[k]) for k in expected)
    assert trainer.step()["lr"] == 0.5 == trainer.params.lr
    reference.step()
    assert not _same_weights(trainer, reference)


def test_update_lr_becomes_lr0_of_the_schedule(tiny: Dataset) -> None:
    trainer, _ = _train(tiny, {"lr": 0.1, "decay": "inverse_time", "decay_rate": 1.0}, 2)
    trainer.update({"lr": 0.3})
    assert trainer.step()["lr"] == pytest.approx(0.3 / 3)  # epoch index 2
    assert lr_at(3, trainer.params) == pytest.approx(0.3 / 4)


def test_update_keeps_model_and_optimizer_state(tiny: Dataset) -> None:
    trainer, _ = _train(tiny, {"optimizer": "momentum", "units": 4}, 2)
    before = trainer.save()
    trainer.update({"momentum": 0.5, "l2": 0.01, "keep_prob": 0.9, "decay": "exponential", "units": 4})
    after = trainer.save()
    assert trainer.params.momentum == 0.5 and trainer.params.l2 == 0.01 and trainer.params.keep_prob == 0.9
    for part in ("weights", "buffers"):
        assert all(torch.equal(before[part][k], after[part][k]) for k in before[part])
    assert all(torch.equal(before["slots"][k]["v"], after["slots"][k]["v"]) for k in before["slots"])
    assert torch.equal(before["generator"], after["generator"]) and after["epoch"] == 2


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"units": 128},
            "The 'units' parameter cannot be changed by update(); it is fixed by setup(). Updatable: lr, momentum, "
            "rms_beta, beta1, beta2, eps, l2, keep_prob, decay, decay_rate, decay_base, decay_every, epochs, "
            "batch_size, bn_beta, bn_eps, target_error.",
        ),
        ({"optimizer": "sgd"}, "The 'optimizer' parameter cannot be changed by update(); it is fixed by setup()."),
        ({"lrr": 0.1}, "Unknown parameter 'lrr'."),
        ({"lr": -1}, "The 'lr' parameter must be > 0. Got -1 instead."),
    ],
)
def test_update_refuses_architecture_and_bad_values(tiny: Dataset, change: dict, message: str) -> None:
    trainer, _ = _train(tiny, {"units": 4}, 1)
    before = trainer.params
    with pytest.raises(ValueError) as info:
        trainer.update(change)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)
    assert trainer.params == before


def test_batch_size_one_and_full_batch_count_updates(tiny: Dataset) -> None:
    stochastic, _ = _train(tiny, {"batch_size": 1, "units": 4, "lr": 0.01}, 2)
    full, _ = _train(tiny, {"batch_size": 10_000, "units": 4}, 2)
    assert stochastic.t == 2 * len(tiny.y_train) and full.t == 2


def test_diagnose_needs_a_step_and_uses_target_error(tiny: Dataset) -> None:
    trainer = Trainer(tiny)
    trainer.setup({"units": 4, "target_error": 1.0})
    with pytest.raises(RuntimeError):
        trainer.diagnose()
    metrics = trainer.step()
    assert trainer.diagnose() is diagnose(metrics["train_error"], metrics["dev_error"], 1.0)
    assert trainer.diagnose() in (Diagnosis.GOOD, Diagnosis.HIGH_VARIANCE)


def test_methods_before_setup_say_so(tiny: Dataset) -> None:
    with pytest.raises(RuntimeError, match=r"Call setup\(params\) or load\(state\)"):
        Trainer(tiny).step()


def test_load_refuses_an_unknown_checkpoint_version(tiny: Dataset) -> None:
    trainer, _ = _train(tiny, {"units": 4}, 1)
    state = {**trainer.save(), "version": 99}
    with pytest.raises(ValueError, match=r"^The checkpoint's version must be 1. Got 99.$"):
        Trainer(tiny).load(state)
