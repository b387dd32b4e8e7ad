"""Exact checkpoint files for a babysat run: written off the training thread, kept by retention rules.

A checkpoint is whatever ``Trainable.save()`` returned (tensors nested in dicts and lists, plus plain
values), wrapped with the run's own bookkeeping (epoch, branch, current params). Files are safetensors:
tensors stored raw, everything else as JSON in the header, so loading such a checkpoint never runs code and
a digits-MLP checkpoint costs about a millisecond. A state with values JSON cannot hold (tuples, numpy
arrays, objects) falls back to ``torch.save``, whose loading unpickles (trust your own artifact folder). Every file is written to a temporary name and renamed, so a
kill -9 leaves either the whole file or none.

>>> import torch, tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "epoch-0001.ckpt"
>>> write_state({"epoch": 1, "weights": {"W1": torch.ones(2, 3)}}, path)
>>> read_state(path)["weights"]["W1"].shape
torch.Size([2, 3])
"""
from __future__ import annotations

import json
import os
import queue
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

__all__ = ["write_state", "read_state", "Retention", "CheckpointWriter"]

_TENSOR = "__tensor__"
_MAGIC_TORCH = b"PK\x03\x04"  # torch.save's zip container; a safetensors file starts with its header's length


def _split(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """The JSON skeleton of ``obj`` with each tensor replaced by a reference into ``tensors`` (t0, t1, ...)."""
    if isinstance(obj, torch.Tensor):
        key = f"t{len(tensors)}"
        tensors[key] = obj.detach().contiguous()
        return {_TENSOR: key}
    if isinstance(obj, dict):
        if not all(isinstance(k, str) for k in obj) or _TENSOR in obj:
            raise TypeError("a key JSON cannot hold, or our marker")
        return {k: _split(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_split(v, tensors) for v in obj]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(type(obj).__name__)


def _join(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {_TENSOR}:
            return tensors[obj[_TENSOR]]
        return {k: _join(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_join(v, tensors) for v in obj]
    return obj


def write_state(state: dict[str, Any], path: Path) -> None:
    """Write ``state`` to ``path`` atomically (temporary file, then rename)."""
    from safetensors.torch import save_file

    tmp = path.with_name(path.name + ".tmp")
    tensors: dict[str, torch.Tensor] = {}
    try:
        skeleton = json.dumps(_split(state, tensors))
    except TypeError:  # a value JSON cannot hold: keep it exact with torch.save instead
        torch.save(state, tmp)
    else:
        # safetensors refuses tensors that share memory; a checkpoint's tensors are independent copies anyway
        save_file({k: t.clone() if t.data_ptr() in _shared(tensors, k) else t for k, t in tensors.items()},
                  str(tmp), metadata={"state": skeleton})
    os.replace(tmp, path)


def _shared(tensors: dict[str, torch.Tensor], key: str) -> set[int]:
    """Data pointers of tensors other than ``key`` (cheap: checkpoints hold a few dozen tensors)."""
    return {t.data_ptr() for k, t in tensors.items() if k != key and t.numel()}


def read_state(path: Path) -> dict[str, Any]:
    """Read a file written by :func:`write_state`."""
    with open(path, "rb") as f:
        head = f.read(4)
    if head == _MAGIC_TORCH:
        return torch.load(path, weights_only=False)  # type: ignore[no-any-return]
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        skeleton = json.loads(f.metadata()["state"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    return _join(skeleton, tensors)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Retention:
    """Which epochs' checkpoints a branch keeps: the last ``keep_last``, every ``keep_every``-th, epoch 0,
    and any epoch another branch was forked from (``protected``).

    >>> sorted(Retention(keep_last=2, keep_every=5).keep([0, 1, 2, 3, 4, 5, 6, 7], protected={3}))
    [0, 3, 5, 6, 7]
    """

    keep_last: int = 3
    keep_every: int = 5

    def __post_init__(self) -> None:
        if isinstance(self.keep_last, bool) or not isinstance(self.keep_last, int) or self.keep_last < 1:
            raise ValueError(f"The 'keep_last' parameter must be an integer >= 1. Got {self.keep_last!r} instead.")
        if isinstance(self.keep_every, bool) or not isinstance(self.keep_every, int) or self.keep_every < 0:
            raise ValueError(f"The 'keep_every' parameter must be an integer >= 0 (0: none). Got {self.keep_every!r} instead.")

    def keep(self, steps: Iterable[int], protected: Iterable[int] = ()) -> set[int]:
        ordered = sorted(set(steps))
        kept = set(ordered[-self.keep_last:]) | set(protected) & set(ordered)
        kept |= {s for s in ordered if s == 0 or (self.keep_every and s % self.keep_every == 0)}
        return kept


class CheckpointWriter:
    """Writes checkpoints on a background thread, so training does not wait for the disk.

    ``submit`` hands over a state that ``Trainable.save()`` already copied, after waiting for the previous
    write: one checkpoint at most is ever on its way to the disk, so a kill -9 loses at most the epoch in
    progress and, in the millisecond or so a write takes, the epoch just before it. ``done(path)`` runs on
    the writer thread after each file is complete, which is where the run records it and applies retention.
    ``flush`` waits for every submitted write; an error on the writer thread is raised by the next
    ``submit`` or ``flush``.
    """

    def __init__(self) -> None:
        self._queue: queue.Queue[tuple[dict[str, Any], Path, Callable[[Path], None]] | None] = queue.Queue()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name="sturgeon-checkpoints", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                state, path, done = item
                if self._error is None:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    write_state(state, path)
                    done(path)
            except BaseException as e:  # surfaced on the training thread
                self._error = e
            finally:
                self._queue.task_done()

    def _raise(self) -> None:
        if self._error is not None:
            e, self._error = self._error, None
            raise RuntimeError(f"Writing a checkpoint failed: {e}") from e

    def submit(self, state: dict[str, Any], path: Path, done: Callable[[Path], None]) -> None:
        self.flush()
        self._queue.put((state, path, done))

    def flush(self) -> None:
        self._queue.join()
        self._raise()

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()
        self._raise()
