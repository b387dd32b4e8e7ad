"""Where trial objectives run. An executor is a ``concurrent.futures.Executor``: the study submits objective
calls and reads their futures; it never lets an executor write to the store (one writer).

- ``InlineExecutor``: in the calling thread, one at a time (``n_jobs=1``).
- ``DaemonThreadPool`` (``n_jobs > 1``, or a study with a timeout): PyTorch and NumPy release the GIL inside
  their kernels, so threads overlap real training work without pickling the objective; the threads are
  daemons, so a study that stops early never waits for a stuck objective.
Processes and Ray come with later issues behind the same interface.

>>> ex = make_executor(1)
>>> ex.submit(lambda: 41 + 1).result()
42
"""
from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, TypeVar

from sturgeon.executors._threads import DaemonThreadPool

__all__ = ["InlineExecutor", "DaemonThreadPool", "make_executor"]

T = TypeVar("T")


class InlineExecutor(Executor):
    """Runs each submitted call at once in the caller's thread; the future is already done."""

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as e:  # delivered through the future, like any executor
            future.set_exception(e)
        return future


def make_executor(n_jobs: int, *, threaded: bool = False) -> Executor:
    """``n_jobs`` calls at a time: inline for one (unless ``threaded``: a caller that must be able to stop
    waiting, e.g. at a deadline), daemon threads otherwise."""
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs < 1:
        raise ValueError(f"The 'n_jobs' parameter must be an integer >= 1. Got {n_jobs!r} instead.")
    return InlineExecutor() if n_jobs == 1 and not threaded else DaemonThreadPool(n_jobs)
