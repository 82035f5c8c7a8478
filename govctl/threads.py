"""Thread pools that never hold up Ctrl-C.

``with ThreadPoolExecutor() as pool:`` ends with ``shutdown(wait=True)`` however the block
ends: after a Ctrl-C in ``future.result()`` it joins every worker first, and a worker blocked
on a call that does not answer keeps the command alive until the call's deadline — the
interrupt is swallowed. :func:`pool` waits for its workers only when the block ends normally;
on an exception (``KeyboardInterrupt`` above all) it cancels what has not started and leaves at
once. The workers still running are abandoned to their deadlines; `govctl`'s entry point
then ends the process without joining them (:func:`govctl.cli.main.run`). With
:func:`first_failure`, a command whose reads cannot succeed (the endpoint is down) ends with
the first that says so.

The main thread waits for workers in slices of :data:`TICK_S`, never in one untimed wait:
the kernel may hand SIGINT to any thread of the process (gRPC's own threads included), and a
thread blocked in an untimed lock wait is not woken by a signal another thread caught — Python
raises ``KeyboardInterrupt`` in the main thread only once it runs again. Measured with
``status`` against a silent endpoint: about one Ctrl-C in twenty waited for the workers'
10 s connection deadline before this.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

T = TypeVar("T")
R = TypeVar("R")
P = ParamSpec("P")
TICK_S = 0.1  # how often a waiting main thread gets to see a Ctrl-C


class _Pool(ThreadPoolExecutor):
    """Remembers what it was given, so that its end can wait for it in slices."""

    def __init__(self, max_workers: int, name: str) -> None:
        super().__init__(max_workers=max_workers, thread_name_prefix=name)
        self.submitted: list[Future[Any]] = []

    def submit(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Future[R]:
        future = super().submit(fn, *args, **kwargs)
        self.submitted.append(future)
        return future


@contextmanager
def pool(max_workers: int, name: str = "govctl") -> Iterator[ThreadPoolExecutor]:
    executor = _Pool(max_workers, name)
    try:
        yield executor
        finish(executor.submitted)  # what the block did not wait for, in slices
    except BaseException:
        executor.shutdown(wait=False, cancel_futures=True)
        raise
    executor.shutdown(wait=True)  # every task has ended: the workers leave at once


def finish(futures: Iterable[Future[Any]]) -> None:
    """Wait until every one of ``futures`` has ended, whatever its outcome (its owner reads
    that)."""
    pending = set(futures)
    while pending:
        _, pending = wait(pending, timeout=TICK_S)


def first_failure(futures: Iterable[Future[Any]]) -> None:
    """Wait for ``futures``; the first to fail raises its error at once (the others are then
    abandoned by :func:`pool`) instead of after the slowest has ended."""
    pending = set(futures)
    while pending:
        done, pending = wait(pending, timeout=TICK_S, return_when=FIRST_EXCEPTION)
        for future in done:
            error = future.exception()
            if error is not None:
                raise error


def map_all(executor: ThreadPoolExecutor, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
    """``fn`` of each item, run on ``executor``, in order (``executor.map`` waits untimed)."""
    futures = [executor.submit(fn, item) for item in items]
    first_failure(futures)
    return [future.result() for future in futures]
