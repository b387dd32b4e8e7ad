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

__all__ = ["TENSOR_REF", "Trainable"]

TENSOR_REF = "__tensor__"  # in a split state's skeleton, {TENSOR_REF: "t<i>"} stands for its i-th tensor


@runtime_checkable
class Trainable(Protocol):
    """Contract:

    - ``setup(params)`` builds the model and optimizer; the same params (seed included) give the same run.
    - ``step()`` trains one epoch and returns its metrics as floats (e.g. ``train_cost``, ``dev_error``).
    - ``save()`` returns the exact state (model, optimizer, RNG, data order, epoch, params), torch.save-able,
      independent of later training; ``load(save())`` followed by the same steps replays bit for bit.
    - ``update(params)`` changes hyperparameters in place between epochs without rebuilding the model.

    Optional, for speed: ``state_split()`` returns ``save()``'s state as ``(skeleton, tensors)``, the
    skeleton JSON-able with ``{TENSOR_REF: "t<i>"}`` in place of ``tensors[i]``, the tensors live (not
    copied). Panda's checkpoint writer copies them at once, so a class offering it skips both ``save()``'s
    copy and a walk over the state at each epoch boundary. The built-in trainer has it. Panda takes it only
    from the class that defines ``save()`` or a subclass of it: a subclass that adds state by overriding
    ``save()`` alone is checkpointed through its ``save()``.
    """

    def setup(self, params: dict[str, Any]) -> None: ...

    def step(self) -> dict[str, float]: ...

    def save(self) -> dict[str, Any]: ...

    def load(self, state: dict[str, Any]) -> None: ...

    def update(self, params: dict[str, Any]) -> None: ...
