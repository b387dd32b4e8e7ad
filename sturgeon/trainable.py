"""Run a Trainable (the built-in trainer or a user's class) as a study objective: one ``step`` per epoch
("day"), each epoch's metrics reported to the trial, stopped early when the scheduler says so.

>>> from sturgeon import Study, Space, Float
>>> from sturgeon.train import Trainer, load_data
>>> data = load_data("digits")
>>> objective = TrainableObjective(lambda: Trainer(data), fixed={"units": 32, "seed": 0}, epochs=2,
...                                metric="dev_error")
>>> study = Study(space=Space(lr=Float(1e-3, 1e-2, scale="log")), metric="dev_error")
>>> study.optimize(objective, n_trials=1)
>>> sorted(study.trials[0].curve)
[0, 1]
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from sturgeon.train import Trainable
from sturgeon.trial import Trial, TrialPruned

__all__ = ["TrainableObjective"]


class TrainableObjective:
    """``objective(trial)``: build a Trainable, ``setup(fixed | trial.params)``, ``epochs`` × ``step()``.

    1. setup with the fixed settings overlaid by the sampled params;
    2. each epoch: ``step()``, report every numeric metric at that epoch;
    3. a non-finite ``metric`` (a diverged run) ends the trial at once: it is FAILED with the epoch named;
    4. a STOP decision prunes it; otherwise the value is the last epoch's ``metric``.
    """

    def __init__(
        self, make: Callable[[], Trainable], fixed: Mapping[str, Any], epochs: int, metric: str
    ) -> None:
        self.make, self.fixed, self.epochs, self.metric = make, dict(fixed), epochs, metric

    def __call__(self, trial: Trial) -> float:
        trainable = self.make()
        trainable.setup({**self.fixed, **trial.params})  # 1)
        value = math.nan
        for epoch in range(self.epochs):
            metrics = trainable.step()  # 2)
            trial.report(epoch, **{k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))})
            if self.metric not in metrics:
                raise ValueError(
                    f"the trainable's step() returned {sorted(metrics)} without the metric '{self.metric}'")
            value = float(metrics[self.metric])
            if not math.isfinite(value):  # 3)
                raise FloatingPointError(f"{self.metric} became {value} at epoch {epoch} (diverged)")
            if trial.should_stop:  # 4)
                raise TrialPruned()
        return value
