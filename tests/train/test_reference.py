"""Whole training runs against plain PyTorch: nn layers, nn.BatchNorm and torch.optim.

The reference gets the trainer's initial weights and a copy of its generator (so the same data
order), then trains with torch's own modules. In float64 the two must agree to 1e-9: this is the
contract a fused trainer of many models will be held to as well.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from sturgeon.train import Dataset, ModelKind, Optimizer, Trainer, lr_at
from sturgeon.train.model import LayerKind

EPOCHS = 2
D = torch.float64  # modules are built in float64: copying into float32 ones would round the weights


def _reference(trainer: Trainer) -> tuple[nn.Sequential, dict[str, torch.Tensor]]:
    """torch modules holding the trainer's initial weights, and our tensor names -> their tensors."""
    p = trainer.params
    modules: list[nn.Module] = []
    mirror: dict[str, Any] = {}
    for layer in trainer.network.layers:
        l, out = layer.index, layer.shape[0]
        core: nn.Conv2d | nn.Linear
        if layer.kind is LayerKind.CONV:
            core = nn.Conv2d(layer.shape[1], out, 3, padding=1, bias=not layer.batch_norm, dtype=D)
        else:
            if not modules or isinstance(modules[-1], nn.MaxPool2d):
                modules.append(nn.Flatten())
            core = nn.Linear(layer.shape[1], out, bias=not layer.batch_norm, dtype=D)
        modules.append(core)
        mirror[f"W{l}"] = core.weight
        if core.bias is not None:
            mirror[f"b{l}"] = core.bias
        if layer.kind is LayerKind.OUTPUT:
            break
        if layer.batch_norm:
            bn_type: type[nn.BatchNorm1d | nn.BatchNorm2d]
            bn_type = nn.BatchNorm2d if layer.kind is LayerKind.CONV else nn.BatchNorm1d
            bn = bn_type(out, eps=p.bn_eps, momentum=1 - p.bn_beta, dtype=D)
            modules.append(bn)
            mirror.update({f"gamma{l}": bn.weight, f"beta{l}": bn.bias})
            mirror.update({f"mean{l}": bn.running_mean, f"var{l}": bn.running_var})
        modules.append(nn.ReLU())
        if layer.kind is LayerKind.CONV:
            modules.append(nn.MaxPool2d(2, ceil_mode=True))
    assert mirror.keys() == {**trainer.weights, **trainer.buffers}.keys()
    with torch.no_grad():
        for name, tensor in {**trainer.weights, **trainer.buffers}.items():
            mirror[name].copy_(tensor)
    return nn.Sequential(*modules), mirror


def _optimizer(model: nn.Sequential, trainer: Trainer) -> torch.optim.Optimizer:
    p = trainer.params
    weights = [m.weight for m in model if isinstance(m, (nn.Linear, nn.Conv2d))]
    others = [q for q in model.parameters() if all(q is not w for w in weights)]
    groups: list[dict[str, Any]] = [{"params": weights, "weight_decay": p.l2}, {"params": others, "weight_decay": 0.0}]
    if p.optimizer is Optimizer.SGD:
        return torch.optim.SGD(groups, lr=p.lr)
    if p.optimizer is Optimizer.MOMENTUM:
        return torch.optim.SGD(groups, lr=p.lr, momentum=p.momentum)
    if p.optimizer is Optimizer.RMSPROP:
        return torch.optim.RMSprop(groups, lr=p.lr, alpha=p.rms_beta, eps=p.eps)
    return torch.optim.Adam(groups, lr=p.lr, betas=(p.beta1, p.beta2), eps=p.eps)


@pytest.mark.parametrize(
    "params",
    [
        {"optimizer": "sgd", "lr": 0.1},
        {"optimizer": "momentum", "lr": 0.05, "momentum": 0.8},
        {"optimizer": "rmsprop", "lr": 0.002, "rms_beta": 0.9, "eps": 1e-6},
        {"optimizer": "adam", "lr": 0.005, "beta1": 0.8, "beta2": 0.99, "eps": 1e-6},
        {"optimizer": "adam", "lr": 0.005, "model": "cnn", "channels": 4, "layers": 1},
    ],
    ids=["sgd", "momentum", "rmsprop", "adam", "cnn-adam"],
)
def test_training_matches_plain_pytorch(digits64: Dataset, params: dict) -> None:
    data = digits64
    common = {"dtype": "float64", "batch_norm": True, "bn_beta": 0.8, "units": 32, "batch_size": 100,
              "l2": 1e-3, "decay": "exponential", "decay_base": 0.7}  # fmt: skip
    trainer = Trainer(data)
    trainer.setup({**common, **params})
    model, mirror = _reference(trainer)
    optimizer = _optimizer(model, trainer)
    gen = torch.Generator()
    gen.set_state(trainer.gen.get_state())
    cnn = trainer.params.model is ModelKind.CNN
    X_all = data.X_train.unsqueeze(1) if cnn else data.X_train
    for epoch in range(EPOCHS):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(epoch, trainer.params)
        model.train()
        order = torch.randperm(len(data.y_train), generator=gen)
        X, y = X_all[order], data.y_train[order]
        for start in range(0, len(y), 100):
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(X[start : start + 100]), y[start : start + 100])
            loss.backward()
            optimizer.step()
        metrics = trainer.step()
    # the same weights and running averages (measured: at most 1e-15 apart) ...
    for name, tensor in {**trainer.weights, **trainer.buffers}.items():
        assert torch.allclose(tensor, mirror[name], rtol=0, atol=1e-10), (name, (tensor - mirror[name]).abs().max())
    # ... and the same dev error in evaluation mode
    model.eval()
    with torch.no_grad():
        X_dev = data.X_dev.unsqueeze(1) if cnn else data.X_dev
        dev_error = (model(X_dev).argmax(1) != data.y_dev).double().mean().item()
    assert metrics["dev_error"] == pytest.approx(dev_error, abs=1e-12)
