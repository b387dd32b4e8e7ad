"""Where trial objectives run. An executor is a ``concurrent.futures.Executor``: the study submits objective
calls and reads their futures; it never lets an executor write to the store (one writer).

- ``InlineExecutor``: in the calling thread, one at a time (``n_jobs=1``).
- threads (``n_jobs > 1``): PyTorch and NumPy release the GIL inside their kernels, so threads overlap real
  training work without pickling the objective.
Processes and Ray come with later issues behind the same interface.

>>> ex = make_executor(1)
>>> ex.submit(lambda: 41 + 1).result()
42
"""
from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import Any, TypeVar

__all__ = ["InlineExecutor", "make_executor"]

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


def make_executor(n_jobs: int) -> Executor:
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs < 1:
        raise ValueError(f"The 'n_jobs' parameter must be an integer >= 1. Got {n_jobs!r} instead.")
    return InlineExecutor() if n_jobs == 1 else ThreadPoolExecutor(n_jobs, thread_name_prefix="sturgeon-trial")
