"""Bias and variance from train and dev error: the basic recipe for machine learning.

- avoidable bias = train_error - target_error (target: human-level or Bayes error; 0 by default)
- variance       = dev_error - train_error
Each counts as high when it exceeds ``tolerance`` (0.02, two percentage points, by default).

>>> d = diagnose(train_error=0.01, dev_error=0.11)
>>> d.value, d.advice
('high_variance', 'High variance: get more data, add regularization (L2, dropout), or try another architecture.')
"""

from __future__ import annotations

from enum import Enum

DEFAULT_TOLERANCE = 0.02


class Diagnosis(str, Enum):
    HIGH_BIAS = "high_bias"
    HIGH_VARIANCE = "high_variance"
    HIGH_BIAS_AND_VARIANCE = "high_bias_and_variance"
    GOOD = "good"

    @property
    def advice(self) -> str:
        """What the basic recipe says to try next."""
        return _ADVICE[self]


_BIAS = "bigger network (more layers or units), train longer, or try a better optimizer or architecture"
_VARIANCE = "get more data, add regularization (L2, dropout), or try another architecture"
_ADVICE = {
    Diagnosis.HIGH_BIAS: f"High bias: {_BIAS}.",
    Diagnosis.HIGH_VARIANCE: f"High variance: {_VARIANCE}.",
    Diagnosis.HIGH_BIAS_AND_VARIANCE: f"High bias and variance: fix the bias first ({_BIAS}), then the variance.",
    Diagnosis.GOOD: "Good: train and dev error are both close to the target.",
}


def diagnose(
    train_error: float,
    dev_error: float,
    target_error: float | None = None,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
) -> Diagnosis:
    """Classify a model by its errors (fractions in [0, 1]); ``target_error`` None means 0.

    >>> diagnose(0.15, 0.16, target_error=0.0).value
    'high_bias'
    >>> diagnose(0.15, 0.16, target_error=0.14).value
    'good'
    """
    for name, value in (("train_error", train_error), ("dev_error", dev_error), ("target_error", target_error)):
        if value is not None and not 0 <= value <= 1:
            raise ValueError(f"The {name!r} parameter must be in [0, 1]. Got {value!r} instead.")
    if not tolerance >= 0:
        raise ValueError(f"The 'tolerance' parameter must be >= 0. Got {tolerance!r} instead.")
    # 1) avoidable bias: how far training falls short of the target
    high_bias = train_error - (target_error or 0.0) > tolerance
    # 2) variance: how much worse the model does on data it has not seen
    high_variance = dev_error - train_error > tolerance
    if high_bias and high_variance:
        return Diagnosis.HIGH_BIAS_AND_VARIANCE
    if high_bias:
        return Diagnosis.HIGH_BIAS
    if high_variance:
        return Diagnosis.HIGH_VARIANCE
    return Diagnosis.GOOD
