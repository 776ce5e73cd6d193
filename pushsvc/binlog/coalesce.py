"""Loop-side hand-off: signals queue up in order, and neighbouring batches become one.

The reader thread puts one batch per committed transaction (through
``loop.call_soon_threadsafe``); the consumer takes them one at a time. A batch
put while another is still waiting is merged into it, and a consumer that
takes a batch first lets ``window`` seconds pass so that commits landing a
few milliseconds apart (the appliance's writers commit in bursts) cost one
read, not several. A :class:`SourceLost` is never merged: it keeps its place
between the batches before and after it.
"""

from __future__ import annotations

import asyncio
import collections

from .batch import ChangeBatch, Signal


class CoalescingQueue:
    def __init__(self, window: float = 0.005) -> None:
        self.window = window
        self._items: collections.deque[Signal] = collections.deque()
        self._ready = asyncio.Event()

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: Signal) -> None:
        """Queue a signal; a batch joins the batch waiting at the tail. Never blocks."""
        if isinstance(item, ChangeBatch) and self._items and isinstance(tail := self._items[-1], ChangeBatch):
            self._items[-1] = tail.merge(item)
        else:
            self._items.append(item)
        self._ready.set()

    async def get(self) -> Signal:
        """The next signal; a batch waits out the coalescing window first."""
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        if self.window > 0 and isinstance(self._items[0], ChangeBatch) and len(self._items) == 1:
            await asyncio.sleep(self.window)  # a deliberate delay: what commits meanwhile joins this batch
        item = self._items.popleft()
        if not self._items:
            self._ready.clear()
        return item
