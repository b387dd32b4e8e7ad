"""The CNN on 2-D images (digits, Conv2d) and 1-D signals (mnist1d, Conv1d), in short runs."""

from __future__ import annotations

import torch

from sturgeon.train import Dataset, Network, Trainer, TrainParams


def _final(data: Dataset, params: dict, epochs: int) -> dict[str, float]:
    trainer = Trainer(data)
    trainer.setup(params)
    return [trainer.step() for _ in range(epochs)][-1]


def test_conv_layers_follow_the_example_shape() -> None:
    p = TrainParams.from_dict({"model": "cnn", "channels": 6, "layers": 1, "units": 20})
    image, signal = Network(p, (8, 8), 10), Network(p, (40,), 10)
    assert [layer.shape for layer in image.layers] == [(6, 1, 3, 3), (6, 6, 3, 3), (20, 6 * 2 * 2), (10, 20)]
    assert [layer.shape for layer in signal.layers] == [(6, 1, 3), (6, 6, 3), (20, 6 * 10), (10, 20)]
    for net, shape in ((image, (8, 8)), (signal, (40,))):
        weights, buffers = net.init(torch.Generator().manual_seed(0), torch.float32)
        assert net.forward(weights, buffers, torch.zeros(2, *shape), training=False).shape == (2, 10)


def test_cnn_learns_digits(digits: Dataset) -> None:
    # Measured: dev accuracy 0.956 after 4 epochs (about 0.3 s).
    metrics = _final(digits, {"model": "cnn", "layers": 1, "units": 64, "lr": 0.003, "batch_size": 32}, 4)
    assert 1 - metrics["dev_error"] >= 0.94


def test_cnn_beats_the_mlp_on_mnist1d(mnist1d: Dataset) -> None:
    # Measured: CNN dev accuracy 0.898 after 6 epochs (about 1 s); the MLP reaches 0.60 in as many.
    cnn = _final(mnist1d, {"model": "cnn", "channels": 32, "layers": 1, "units": 64, "lr": 0.01}, 6)
    mlp = _final(mnist1d, {"model": "mlp", "units": 128, "lr": 0.01}, 6)
    assert 1 - cnn["dev_error"] >= 0.85
    assert cnn["dev_error"] < mlp["dev_error"] - 0.2
