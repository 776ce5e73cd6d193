"""Stopping background tasks reliably: the one place that knows why one ``cancel()`` is not enough.

On Python 3.11, ``asyncio.wait_for`` drops a cancellation that arrives just
as the awaited call completes: it returns the call's result (or raises its
error) instead, and the cancelled task runs on (python/cpython#86296, fixed
in 3.12 where ``wait_for`` is built on ``asyncio.timeout``). Libraries still
use ``wait_for`` inside (aiomysql's connect does), so a task that is
cancelled while the database is slow or away can miss the cancellation,
and ``task.cancel(); await task`` then hangs shutdown.

So pushsvc's own code bounds waits with ``asyncio.timeout``, never
``wait_for``, and stops tasks with :func:`cancel_and_wait`, which cancels
again until the task has finished. A task may let ``CancelledError``
propagate; nothing here needs it swallowed.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger(__name__)


async def cancel_and_wait(task: asyncio.Task[Any], *, every: float = 2.0, attempts: int = 5) -> bool:
    """Cancel ``task`` and wait for it to finish, cancelling again every ``every`` seconds.

    Returns whether it finished. Never raises the task's error: an error the
    task died of is logged (once, here), and a task that would not stop is
    logged too. A cancellation of the caller itself still propagates.
    """
    for _ in range(attempts):
        if task.done():
            break
        task.cancel()
        await asyncio.wait({task}, timeout=every)
    if not task.done():
        log.error("task %s did not stop after %d cancellations", task.get_name(), attempts)
        return False
    if not task.cancelled() and task.exception() is not None:
        log.error("task %s had failed: %r", task.get_name(), task.exception())
    return True


def raise_if_cancelling() -> None:
    """Re-raise a cancellation that an awaited call swallowed (see the module docstring).

    For loops that must stop when cancelled even if a step's ``wait_for`` lost
    the cancellation: without this, the loop would run on and
    ``cancel(); await task`` would hang.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
