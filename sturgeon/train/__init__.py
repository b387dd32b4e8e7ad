"""Workloads layer: the built-in PyTorch trainer and the Trainable protocol.

Imports nothing from the rest of sturgeon.

>>> from sturgeon.train import Trainer, load_data
>>> trainer = Trainer(load_data("digits"))
>>> trainer.setup({"optimizer": "adam", "lr": 0.01, "batch_norm": True})
>>> trainer.step()["dev_error"] < 0.1
True
"""

from __future__ import annotations

from sturgeon.train.data import BUILTINS, Dataset, load_data
from sturgeon.train.diagnosis import DEFAULT_TOLERANCE, Diagnosis, diagnose
from sturgeon.train.model import Network
from sturgeon.train.optim import adam_, decayed_lr, lr_at, momentum_, rmsprop_, sgd_, with_l2
from sturgeon.train.params import (
    OPTIMIZER_PARAMS,
    UPDATABLE,
    Activation,
    Decay,
    DType,
    Init,
    ModelKind,
    Optimizer,
    TrainParams,
    ignored_params,
)
from sturgeon.train.protocol import TENSOR_REF, Trainable
from sturgeon.train.trainer import Trainer

__all__ = [
    "BUILTINS",
    "DEFAULT_TOLERANCE",
    "TENSOR_REF",
    "UPDATABLE",
    "OPTIMIZER_PARAMS",
    "ignored_params",
    "Activation",
    "DType",
    "Dataset",
    "Decay",
    "Diagnosis",
    "Init",
    "ModelKind",
    "Network",
    "Optimizer",
    "TrainParams",
    "Trainable",
    "Trainer",
    "adam_",
    "decayed_lr",
    "diagnose",
    "load_data",
    "lr_at",
    "momentum_",
    "rmsprop_",
    "sgd_",
    "with_l2",
]
