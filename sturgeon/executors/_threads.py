"""A pool of daemon threads: objectives overlap (PyTorch and NumPy release the GIL in their kernels), and a
study that returns early — its timeout passed, Ctrl-C — never waits for an objective that is stuck.

``concurrent.futures.ThreadPoolExecutor`` joins its workers when the interpreter exits, so a hung objective
(or one sleeping between reports) keeps a finished study's process alive and a second Ctrl-C prints a
threading traceback. Here the workers are daemon threads: once the study has recorded what it could,
the process may end whatever they are doing.

>>> pool = DaemonThreadPool(2)
>>> sorted(f.result() for f in [pool.submit(pow, 2, k) for k in range(3)])
[1, 2, 4]
>>> pool.shutdown()
"""
from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, TypeVar

__all__ = ["DaemonThreadPool"]

T = TypeVar("T")
_Job = tuple[Future[Any], Callable[..., Any], tuple[Any, ...], dict[str, Any]]


class DaemonThreadPool(Executor):
    """At most ``n_jobs`` submitted calls run at once, each in a daemon thread; the rest wait in order."""

    def __init__(self, n_jobs: int, name: str = "sturgeon-trial") -> None:
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._closed = False
        self._workers = [threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True) for i in range(n_jobs)]
        for w in self._workers:
            w.start()

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            future, fn, args, kwargs = job
            if not future.set_running_or_notify_cancel():  # cancelled while it waited
                continue
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as e:  # delivered through the future, like any executor
                future.set_exception(e)

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot submit to a pool that was shut down")
            future: Future[T] = Future()
            self._jobs.put((future, fn, args, kwargs))
            return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop taking work; ``wait`` joins the workers once the queued calls are done. Without ``wait`` the
        calls still running go on in their daemon threads, and the process may exit while they do."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if cancel_futures:
            while True:
                try:
                    job = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if job is not None:
                    job[0].cancel()
        for _ in self._workers:
            self._jobs.put(None)
        if wait:
            for w in self._workers:
                w.join()
