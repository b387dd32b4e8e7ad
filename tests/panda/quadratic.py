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
        self.x, self.lr = float(params.get("x0", 1.0)), float(params["lr"])
        self.floor, self.epoch = float(params.get("floor", 0.0)), 0

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


def fill_disk(path: str) -> None:
    """Fill the filesystem of ``path`` to the last byte with the file ``path``."""
    chunk = bytes(1 << 16)
    with open(path, "ab", buffering=0) as f:
        for size in (1 << 16, 4096, 512, 1):
            try:
                while True:
                    f.write(chunk[:size])
            except OSError:
                continue  # full at this size: smaller writes take what is left


class FillsTheDisk(Trainer):
    """The built-in trainer; when ``STURGEON_TEST_FILL_AT`` names an epoch, that epoch first waits for the
    file ``STURGEON_TEST_WAIT_FOR`` (the previous epoch's checkpoint), then fills its disk with the file
    ``STURGEON_TEST_FILL``: the next write of the run (its report to the store) finds the disk full."""

    def step(self) -> dict[str, float]:
        if os.environ.get("STURGEON_TEST_FILL_AT") == str(self.epoch + 1):
            while not os.path.exists(os.environ["STURGEON_TEST_WAIT_FOR"]):
                time.sleep(0.01)
            time.sleep(0.1)  # and the copier has counted it done
            fill_disk(os.environ["STURGEON_TEST_FILL"])
        return super().step()
