"""The basic recipe's bias/variance diagnosis."""

from __future__ import annotations

import pytest

from sturgeon.train import DEFAULT_TOLERANCE, Diagnosis, diagnose


@pytest.mark.parametrize(
    ("train_error", "dev_error", "target_error", "expected"),
    [
        (0.01, 0.11, None, Diagnosis.HIGH_VARIANCE),  # the course's four cases, target (human) error 0
        (0.15, 0.16, None, Diagnosis.HIGH_BIAS),
        (0.15, 0.30, None, Diagnosis.HIGH_BIAS_AND_VARIANCE),
        (0.005, 0.01, None, Diagnosis.GOOD),
        (0.15, 0.16, 0.14, Diagnosis.GOOD),  # a hard task: 15% train error is close to the target
        (0.02, 0.04, 0.0, Diagnosis.GOOD),  # exactly at the tolerance is not "high"
        (0.021, 0.0, 0.0, Diagnosis.HIGH_BIAS),
    ],
)
def test_four_cases(train_error: float, dev_error: float, target_error: float | None, expected: Diagnosis) -> None:
    assert DEFAULT_TOLERANCE == 0.02
    assert diagnose(train_error, dev_error, target_error) is expected


def test_tolerance_and_advice() -> None:
    assert diagnose(0.01, 0.11, tolerance=0.2) is Diagnosis.GOOD
    assert Diagnosis.HIGH_BIAS.advice.startswith("High bias: bigger network")
    assert "train longer" in Diagnosis.HIGH_BIAS.advice
    assert Diagnosis.HIGH_VARIANCE.advice.startswith("High variance: get more data, add regularization")
    assert Diagnosis.HIGH_BIAS_AND_VARIANCE.advice.startswith("High bias and variance: fix the bias first")
    assert Diagnosis("good") is Diagnosis.GOOD and Diagnosis.GOOD.value == "good"


def test_bad_errors_are_refused() -> None:
    with pytest.raises(ValueError) as info:
        diagnose(1.5, 0.1)
    assert str(info.value) == "The 'train_error' parameter must be in [0, 1]. Got 1.5 instead."
