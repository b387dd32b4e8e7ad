"""The Trainable protocol: what panda, caviar and PBT need from a model, built-in or user-written.

An epoch is a "day": the unit at which the tuner watches curves, changes hyperparameters and
takes checkpoints. Any class with these five methods qualifies; no base class is needed.

>>> class Constant:
...     def setup(self, params): self.c = params["c"]
...     def step(self): return {"dev_error": self.c}
...     def save(self): return {"c": self.c}
...     def load(self, state): self.c = state["c"]
...     def update(self, params): self.c = params.get("c", self.c)
>>> isinstance(Constant(), Trainable)
True
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Trainable(Protocol):
    """Contract:

    - ``setup(params)`` builds the model and optimizer; the same params (seed included) give the same run.
    - ``step()`` trains one epoch and returns its metrics as floats (e.g. ``train_cost``, ``dev_error``).
    - ``save()`` returns the exact state (model, optimizer, RNG, data order, epoch, params), torch.save-able,
      independent of later training; ``load(save())`` followed by the same steps replays bit for bit.
    - ``update(params)`` changes hyperparameters in place between epochs without rebuilding the model.
    """

    def setup(self, params: dict[str, Any]) -> None: ...

    def step(self) -> dict[str, float]: ...

    def save(self) -> dict[str, Any]: ...

    def load(self, state: dict[str, Any]) -> None: ...

    def update(self, params: dict[str, Any]) -> None: ...
