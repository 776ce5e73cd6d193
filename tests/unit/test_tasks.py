"""tasks.cancel_and_wait: a task that misses a cancellation is still stopped."""

from __future__ import annotations

import asyncio
import logging

from pushsvc.tasks import cancel_and_wait


async def test_an_ordinary_task_is_cancelled():
    task = asyncio.create_task(asyncio.Event().wait())
    assert await cancel_and_wait(task)
    assert task.cancelled()


async def test_a_task_that_swallows_one_cancellation_is_cancelled_again():
    swallowed = asyncio.Event()

    async def stubborn() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            swallowed.set()  # what Python 3.11's wait_for can do to a cancellation
        await asyncio.Event().wait()

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)  # let it start
    assert await cancel_and_wait(task, every=0.01)
    assert swallowed.is_set() and task.cancelled()


async def test_a_task_that_will_not_stop_is_reported(caplog):
    release = asyncio.Event()

    async def deaf() -> None:
        while not release.is_set():
            try:
                await release.wait()
            except asyncio.CancelledError:
                pass

    task = asyncio.create_task(deaf(), name="deaf")
    await asyncio.sleep(0)
    with caplog.at_level(logging.ERROR, logger="pushsvc.tasks"):
        assert not await cancel_and_wait(task, every=0.01, attempts=3)
    assert "deaf did not stop after 3 cancellations" in caplog.text
    release.set()
    await task


async def test_a_task_that_had_failed_is_logged_not_raised(caplog):
    async def broken() -> None:
        raise ValueError("boom")

    task = asyncio.create_task(broken(), name="broken")
    await asyncio.wait({task})
    with caplog.at_level(logging.ERROR, logger="pushsvc.tasks"):
        assert await cancel_and_wait(task)
    assert "broken had failed: ValueError('boom')" in caplog.text
