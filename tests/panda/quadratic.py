"""Trainables for panda tests whose curves have closed forms, and a slow digits trainer to kill mid-epoch."""
from __future__ import annotations

import os
import time
from typing import Any

from sturgeon.train import Trainer


class Quadratic:
    """Gradient descent on cost(x) = x², one update per epoch: x ← (1 − 2·lr)·x. It diverges for lr > 1.

    ``dev_error`` is the cost floored at ``floor``, so the curve flattens once the cost is below it.
    """

    def setup(self, params: dict[str, Any]) -> None:
        self.x, self.lr, self.floor, self.epoch = float(params.get("x0", 1.0)), float(params["lr"]), float(params.get("floor", 0.0)), 0

    def step(self) -> dict[str, float]:
        self.x *= 1 - 2 * self.lr
        self.epoch += 1
        cost = self.x * self.x
        return {"epoch": self.epoch, "lr": self.lr, "train_cost": cost, "dev_error": max(cost, self.floor)}

    def save(self) -> dict[str, Any]:
        return {"x": self.x, "lr": self.lr, "floor": self.floor, "epoch": self.epoch}

    def load(self, state: dict[str, Any]) -> None:
        self.x, self.lr, self.floor, self.epoch = state["x"], state["lr"], state["floor"], state["epoch"]

    def update(self, params: dict[str, Any]) -> None:
        self.lr = float(params.get("lr", self.lr))


class SlowDigits(Trainer):
    """The built-in trainer; when ``STURGEON_TEST_SLOW_EPOCH`` names an epoch, that epoch first writes
    ``STURGEON_TEST_FLAG`` and sleeps, so a test can kill the process in the middle of it."""

    def step(self) -> dict[str, float]:
        if os.environ.get("STURGEON_TEST_SLOW_EPOCH") == str(self.epoch + 1):
            with open(os.environ["STURGEON_TEST_FLAG"], "w") as f:
                f.write(str(os.getpid()))
            time.sleep(60)
        return super().step()
