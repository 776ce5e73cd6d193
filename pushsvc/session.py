"""One WebSocket session: a bounded outbox drained by its own writer task.

Everything the server sends to a socket goes through ``offer``/``send`` and
is written by the writer task, in order; the hub and the poller only
enqueue, so a slow client never delays anyone else. When a client falls
behind (``outbox_messages`` queued), its queued deltas for the topic are
replaced by one snapshot marker: the writer encodes (or reuses) the topic's
current snapshot when it gets there, so the client still converges. A client
whose writer has been stuck on one send for ``slow_close_after`` seconds, or
whose outbox still overflows, is closed with 1013.

Fast path: a delta offered to a socket with nothing queued, no send in
progress and an empty transport buffer (the usual case: the client keeps up)
is written at once as a ready-made frame (``wsframe.text_frame``), without
waking the writer task. Order is kept (nothing earlier is still waiting), and
a socket that is backing up takes the queued path, so the slow-client policy
is unchanged. The handler passes the raw ``transport`` only for a connection
without compression (ws.py checks that); without it every send is queued.

The session knows nothing about the hub: it gets the function that encodes a
topic's current snapshot (``snapshot``) when it is created.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import secrets
from collections.abc import Callable
from typing import Protocol

from aiohttp import WSMsgType

from .config import WebSocketConfig
from .metrics import Metrics
from .protocol import TOKEN_EXPIRED, TOO_SLOW, Close, RequestId
from .tasks import cancel_and_wait
from .wsframe import text_frame

log = logging.getLogger(__name__)

_CLOSE_TIMEOUT = 2.0

Snapshot = Callable[[str, RequestId | None], bytes | None]


class Socket(Protocol):
    """What a session needs of its WebSocket (aiohttp's ``WebSocketResponse``)."""

    @property
    def closed(self) -> bool: ...

    async def send_frame(self, message: bytes, opcode: WSMsgType, compress: int | None = None) -> None: ...

    async def close(self, *, code: int = ..., message: bytes = ...) -> bool: ...


class Transport(Protocol):
    """What the fast path needs of the connection's transport (``asyncio.Transport``)."""

    def write(self, data: bytes) -> None: ...

    def get_write_buffer_size(self) -> int: ...

    def is_closing(self) -> bool: ...


class Session:
    def __init__(
        self,
        ws: Socket,
        snapshot: Snapshot,
        limits: WebSocketConfig,
        metrics: Metrics,
        abort: Callable[[], None] = lambda: None,
        transport: Transport | None = None,
    ) -> None:
        self.id = secrets.token_urlsafe(12)
        self.topics: set[str] = set()
        self.closing = False
        self._ws = ws
        self._transport = transport
        self._snapshot = snapshot
        self._metrics = metrics
        self._abort = abort
        self._limit = limits.outbox_messages
        self._hard_limit = 2 * limits.outbox_messages + limits.max_subscriptions
        self._stuck_after = limits.slow_close_after
        # Items are (topic, data, request_id); data None marks "send the topic's snapshot here".
        self._outbox: collections.deque[tuple[str | None, bytes | None, RequestId | None]] = collections.deque()
        self._resyncing: set[str] = set()
        self._wakeup = asyncio.Event()
        self._send_started: float | None = None
        self._loop = asyncio.get_running_loop()
        self._writer = self._loop.create_task(self._write_loop(), name=f"ws-writer-{self.id}")
        self._expiry: asyncio.TimerHandle | None = None
        self._closer: asyncio.Task[None] | None = None

    # -- enqueueing (never awaits) -------------------------------------------

    def offer(self, topic: str, data: bytes) -> None:
        """Queue a delta of ``topic`` (called by the hub's fan-out)."""
        if self.closing or topic in self._resyncing:
            return  # the queued snapshot will already include this change
        if not self._outbox and self._write_now(data):
            return
        if len(self._outbox) >= self._limit:
            self._metrics.resyncs.inc()
            self.offer_snapshot(topic, None)
            self._check_stuck()
            return
        self._outbox.append((topic, data, None))
        self._wakeup.set()

    def _write_now(self, data: bytes) -> bool:
        """Write a frame straight to an idle socket; False when it must be queued instead."""
        transport = self._transport
        if (
            transport is None
            or self._send_started is not None
            or transport.get_write_buffer_size()
            or transport.is_closing()
            or self._ws.closed
        ):
            return False
        transport.write(text_frame(data))
        self._metrics.messages_sent.inc()
        self._metrics.bytes_sent.inc(len(data))
        return True

    def offer_snapshot(self, topic: str, request_id: RequestId | None) -> None:
        """Replace whatever is queued for ``topic`` by one fresh snapshot."""
        if self.closing:
            return
        self._drop_queued(topic)
        self._outbox.append((topic, None, request_id))
        self._resyncing.add(topic)
        self._wakeup.set()
        if len(self._outbox) > self._hard_limit:
            self.close(TOO_SLOW)

    def send(self, data: bytes) -> None:
        """Queue a control message (welcome, pong, error, status, ...)."""
        if self.closing:
            return
        if len(self._outbox) >= self._hard_limit:
            self.close(TOO_SLOW)
            return
        self._outbox.append((None, data, None))
        self._wakeup.set()

    def forget(self, topic: str) -> None:
        """Drop anything still queued for a topic the client unsubscribed from."""
        self._drop_queued(topic)

    def _drop_queued(self, topic: str) -> None:
        if any(item[0] == topic for item in self._outbox):
            self._outbox = collections.deque(item for item in self._outbox if item[0] != topic)
        self._resyncing.discard(topic)

    def _check_stuck(self) -> None:
        started = self._send_started
        if started is not None and self._loop.time() - started > self._stuck_after:
            self.close(TOO_SLOW)

    # -- writing ---------------------------------------------------------------

    async def _write_loop(self) -> None:
        ws, metrics = self._ws, self._metrics
        try:
            while True:
                while not self._outbox:
                    if self.closing:
                        return  # drained: the closer sends the close frame now
                    self._wakeup.clear()
                    await self._wakeup.wait()
                topic, data, request_id = self._outbox.popleft()
                if data is None:
                    self._resyncing.discard(topic)
                    if topic not in self.topics:
                        continue
                    data = self._snapshot(topic, request_id)
                    if data is None:
                        continue
                self._send_started = self._loop.time()
                await ws.send_frame(data, WSMsgType.TEXT)
                self._send_started = None
                metrics.messages_sent.inc()
                metrics.bytes_sent.inc(len(data))
        except (ConnectionError, RuntimeError):
            pass  # the socket went away; the handler cleans up

    # -- lifecycle -------------------------------------------------------------

    def arm_expiry(self, delay: float | None) -> None:
        """Close with 4002 after ``delay`` seconds unless re-armed by a refresh."""
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        if delay is not None:
            self._expiry = self._loop.call_later(max(delay, 0), self.close, TOKEN_EXPIRED)

    def close(self, close: Close) -> None:
        """Close the socket with ``close`` from any task, after flushing the queue (not for 1013)."""
        if self.closing:
            return
        self.closing = True
        if close == TOO_SLOW:
            # Too slow: what is queued will not be read in time anyway.
            self._metrics.slow_closes.inc()
            self._outbox.clear()
            self._writer.cancel()
        self._wakeup.set()
        self._closer = self._loop.create_task(self._close(close))

    async def _close(self, close: Close) -> None:
        # Let the writer flush what is queued (an error frame explaining a 1008,
        # say), but never wait on a client for long.
        await asyncio.wait({self._writer}, timeout=_CLOSE_TIMEOUT)
        self._writer.cancel()  # a no-op when it has drained
        try:
            async with asyncio.timeout(_CLOSE_TIMEOUT):  # not wait_for: see tasks.py
                await self._ws.close(code=close.code, message=close.reason.encode())
        except (TimeoutError, ConnectionError, RuntimeError):
            self._abort()

    async def closed(self) -> None:
        """Wait for a close started by ``close`` to finish."""
        if self._closer is not None:
            await asyncio.gather(self._closer, return_exceptions=True)

    async def stop(self) -> None:
        """Release the writer and timers (the handler calls this in ``finally``)."""
        self.closing = True
        if self._expiry is not None:
            self._expiry.cancel()
        await cancel_and_wait(self._writer)
        if self._closer is not None and self._closer is not asyncio.current_task():
            await asyncio.gather(self._closer, return_exceptions=True)
