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
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from typing import Any


@contextmanager
def pool(max_workers: int, name: str = "govctl") -> Iterator[ThreadPoolExecutor]:
    executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix=name)
    try:
        yield executor
    except BaseException:
        executor.shutdown(wait=False, cancel_futures=True)
        raise
    executor.shutdown(wait=True)


def first_failure(futures: Iterable[Future[Any]]) -> None:
    """Wait for ``futures``; the first to fail raises its error at once (the others are then
    abandoned by :func:`pool`) instead of after the slowest has ended."""
    done, _ = wait(list(futures), return_when=FIRST_EXCEPTION)
    for future in done:
        error = future.exception()
        if error is not None:
            raise error
