"""Hyperparameters of the built-in trainer: one flat dict in, one frozen dataclass out.

Samplers and the CLI speak flat ``dict[str, Any]``; the trainer speaks :class:`TrainParams`.
:meth:`TrainParams.from_dict` is the only door between the two, so every check happens once,
at construction, with one error template that names the parameter and the value::

    The 'optimizer' parameter must be one of sgd, momentum, rmsprop, adam. Got 'adamw' instead.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass
from enum import Enum
from typing import Any

import torch


class ModelKind(str, Enum):
    MLP = "mlp"
    CNN = "cnn"


class Activation(str, Enum):
    RELU = "relu"
    TANH = "tanh"
    LEAKY_RELU = "leaky_relu"


class Init(str, Enum):
    ZEROS = "zeros"  # every unit identical: shows why symmetry must be broken
    LARGE = "large"  # N(0, 1) * init_scale: saturates tanh, explodes relu
    XAVIER = "xavier"  # N(0, 1/fan_in), the course's choice for tanh
    HE = "he"  # N(0, 2/fan_in), for relu


class Optimizer(str, Enum):
    SGD = "sgd"
    MOMENTUM = "momentum"
    RMSPROP = "rmsprop"
    ADAM = "adam"


class Decay(str, Enum):
    NONE = "none"
    INVERSE_TIME = "inverse_time"
    EXPONENTIAL = "exponential"
    STEP = "step"
    COSINE = "cosine"


class DType(str, Enum):
    FLOAT32 = "float32"
    FLOAT64 = "float64"

    @property
    def torch(self) -> torch.dtype:
        return torch.float32 if self is DType.FLOAT32 else torch.float64


@dataclass(frozen=True)
class TrainParams:
    """Validated hyperparameters; build one with :meth:`from_dict`.

    >>> p = TrainParams.from_dict({"lr": 0.01, "layers": 3, "units": 32})
    >>> p.widths, p.optimizer.value, p.beta2
    ((32, 32, 32), 'adam', 0.999)
    """

    # architecture (fixed by setup(); update() refuses to change them)
    model: ModelKind = ModelKind.MLP
    layers: int = 2  # hidden dense layers
    units: int = 64  # width of each hidden layer
    hidden: tuple[int, ...] | None = None  # explicit widths; overrides layers/units
    activation: Activation = Activation.RELU
    channels: int = 16  # feature maps of each of the CNN's two conv layers
    init: Init = Init.HE
    init_scale: float = 10.0  # multiplier of N(0, 1) for init="large"
    batch_norm: bool = False
    optimizer: Optimizer = Optimizer.ADAM
    seed: int = 0
    dtype: DType = DType.FLOAT32
    # batch norm's running averages (running = bn_beta * running + (1 - bn_beta) * batch)
    bn_beta: float = 0.9
    bn_eps: float = 1e-5
    # optimization (update() may change these between epochs)
    lr: float = 1e-3
    momentum: float = 0.9
    rms_beta: float = 0.99
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    decay: Decay = Decay.NONE
    decay_rate: float = 0.5
    decay_base: float = 0.95
    decay_every: int = 10
    epochs: int = 10
    batch_size: int = 64
    l2: float = 0.0
    keep_prob: float = 1.0
    target_error: float | None = None

    @property
    def widths(self) -> tuple[int, ...]:
        """Hidden layer widths: ``hidden`` when given, else ``layers`` copies of ``units``."""
        return self.hidden if self.hidden is not None else (self.units,) * self.layers

    @classmethod
    def from_dict(cls, params: dict[str, Any]) -> TrainParams:
        """Validate a flat dict; missing keys take the defaults above, unknown keys are refused."""
        known = [f.name for f in dataclasses.fields(cls)]
        values: dict[str, Any] = {}
        for key, value in params.items():
            if key not in _CHECKS:
                raise ValueError(f"Unknown parameter {key!r}. Known: {', '.join(known)}.")
            values[key] = _CHECKS[key](key, value)
        checked = cls(**values)
        # Batch norm's statistics need two examples; a trailing batch of one is skipped (see Trainer.step).
        if checked.batch_norm and checked.batch_size < 2:
            raise _fail("batch_size", "an integer >= 2 with batch_norm", checked.batch_size)
        return checked

    def to_dict(self) -> dict[str, Any]:
        """Plain python values (enums as strings, hidden as a list), so that json and torch.save take it."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Enum):
                value = value.value
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out


# Keys update() may change between epochs; everything else shapes the model or its RNG stream.
UPDATABLE = (
    "lr", "momentum", "rms_beta", "beta1", "beta2", "eps", "l2", "keep_prob",
    "decay", "decay_rate", "decay_base", "decay_every", "epochs",
    "batch_size", "bn_beta", "bn_eps", "target_error",
)  # fmt: skip

# Params that only some optimizers read: searching or setting one under another optimizer changes nothing.
OPTIMIZER_PARAMS: dict[str, frozenset[str]] = {
    "momentum": frozenset({"momentum"}), "rms_beta": frozenset({"rmsprop"}), "beta1": frozenset({"adam"}),
    "beta2": frozenset({"adam"}), "eps": frozenset({"rmsprop", "adam"}),
}


def ignored_params(optimizer: str) -> dict[str, str]:
    """The params ``optimizer`` does not read, each with why (for one-line refusals).

    >>> ignored_params("momentum")["beta1"]
    "optimizer 'momentum' does not use it (it is read by: adam)"
    """
    return {name: f"optimizer '{optimizer}' does not use it (it is read by: {', '.join(sorted(users))})"
            for name, users in OPTIMIZER_PARAMS.items() if optimizer not in users}


# --- checks: each takes (name, raw value) and returns the clean value or raises ValueError -------


def _fail(name: str, must: str, value: Any) -> ValueError:
    return ValueError(f"The {name!r} parameter must be {must}. Got {value!r} instead.")


def _choice(enum: type[Enum]) -> Any:
    def check(name: str, value: Any) -> Enum:
        options = ", ".join(str(m.value) for m in enum)
        try:
            return enum(value)
        except ValueError:
            raise _fail(name, f"one of {options}", value) from None

    return check


def _as_int(value: Any) -> int | None:
    # Accept numpy integers and integral floats (64.0) from samplers; refuse bools and 1.5.
    if isinstance(value, bool):
        return None
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real) and float(value).is_integer():
        return int(float(value))
    return None


def _int(low: int | None) -> Any:
    must = "an integer" if low is None else f"an integer >= {low}"

    def check(name: str, value: Any) -> int:
        as_int = _as_int(value)
        if as_int is None or (low is not None and as_int < low):
            raise _fail(name, must, value)
        return as_int

    return check


def _float(must: str, ok: Any, optional: bool = False) -> Any:
    def check(name: str, value: Any) -> float | None:
        if optional and value is None:
            return None
        good = isinstance(value, numbers.Real) and not isinstance(value, bool)
        if not good or not math.isfinite(float(value)) or not ok(float(value)):
            raise _fail(name, must, value)
        return float(value)

    return check


def _bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _fail(name, "true or false", value)
    return value


def _widths(name: str, value: Any) -> tuple[int, ...] | None:
    if value is None:
        return None
    widths = [_as_int(v) for v in value] if isinstance(value, (list, tuple)) else [None]
    if any(w is None or w < 1 for w in widths):
        raise _fail(name, "a list of integers >= 1", value)
    return tuple(w for w in widths if w is not None)


_POSITIVE = _float("> 0", lambda x: x > 0)
_NONNEGATIVE = _float(">= 0", lambda x: x >= 0)
_BETA = _float("in [0, 1)", lambda x: 0 <= x < 1)

_CHECKS: dict[str, Any] = {
    "model": _choice(ModelKind),
    "layers": _int(0),
    "units": _int(1),
    "hidden": _widths,
    "activation": _choice(Activation),
    "channels": _int(1),
    "init": _choice(Init),
    "init_scale": _POSITIVE,
    "batch_norm": _bool,
    "optimizer": _choice(Optimizer),
    "seed": _int(None),
    "dtype": _choice(DType),
    "bn_beta": _BETA,
    "bn_eps": _POSITIVE,
    "lr": _POSITIVE,
    "momentum": _BETA,
    "rms_beta": _BETA,
    "beta1": _BETA,
    "beta2": _BETA,
    "eps": _POSITIVE,
    "decay": _choice(Decay),
    "decay_rate": _NONNEGATIVE,
    "decay_base": _float("in (0, 1]", lambda x: 0 < x <= 1),
    "decay_every": _int(1),
    "epochs": _int(1),
    "batch_size": _int(1),
    "l2": _NONNEGATIVE,
    "keep_prob": _float("in (0, 1]", lambda x: 0 < x <= 1),
    "target_error": _float("in [0, 1] or None", lambda x: 0 <= x <= 1, optional=True),
}

# A field without a check (or a check without a field) is a bug caught at import time.
assert set(_CHECKS) == {f.name for f in dataclasses.fields(TrainParams)}
assert set(UPDATABLE) <= set(_CHECKS)
