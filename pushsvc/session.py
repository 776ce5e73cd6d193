"""One WebSocket session: a bounded outbox drained by its own writer task, and the slow-client policy.

Everything the server sends to a socket goes through ``offer``/``send``/``pong``
and is written by the writer task, in order; the hub and the poller only
enqueue, so a slow client never delays anyone else.

A client falls behind when what waits for it (the queued messages plus the
connection's write buffer) passes ``max_outbound_bytes``, or
``outbox_messages`` messages are queued: then its queued deltas for the topic
are replaced by one snapshot marker, and the writer encodes (or reuses) the
topic's current snapshot when it gets there, so the client still converges.
A client that stays over ``max_outbound_bytes``, or has one send blocked, for
``slow_close_after`` seconds, or whose outbox passes its hard limit, is closed
with 1013; if even the close frame cannot be written within the grace, the
connection is cut (``abort``). A timer checks, so a client that receives
nothing new is caught as well.

Fast path: a delta offered to a socket with nothing queued, no send in
progress and an empty transport buffer (the usual case: the client keeps up)
is written at once as a ready-made frame (``wsframe.text_frame``), without
waking the writer task. Order is kept (nothing earlier is still waiting), and
a socket that is backing up takes the queued path, so the slow-client policy
is unchanged. The handler passes the raw ``transport`` only for a connection
without compression (ws.py checks that); without it every send is queued.

Pings are answered here (``pong``): at once when the socket is idle, else by
the writer ahead of the queue, and only the latest unanswered ping gets its
pong (RFC 6455 5.5.3 allows that), so a client pinging without reading
cannot grow the outbox.

The session knows nothing about the hub: it gets the function that encodes a
topic's current snapshot (``snapshot``) when it is created. After ``stop`` it
holds no task, timer or queued message, so reference counting frees it.
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
from .wsframe import PONG, control_frame, text_frame

log = logging.getLogger(__name__)

_CLOSE_TIMEOUT = 2.0  # seconds to flush the queue, and then to write the close frame

Snapshot = Callable[[str, RequestId | None], bytes | None]


class Socket(Protocol):
    """What a session needs of its WebSocket (aiohttp's ``WebSocketResponse``)."""

    @property
    def closed(self) -> bool: ...

    async def send_frame(self, message: bytes, opcode: WSMsgType, compress: int | None = None) -> None: ...

    async def close(self, *, code: int = ..., message: bytes = ...) -> bool: ...


class Transport(Protocol):
    """What the fast path and the byte bound need of the connection's transport (``asyncio.Transport``)."""

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
        self._sent = metrics.sent
        self._abort = abort
        self._limit = limits.outbox_messages
        self._hard_limit = 2 * limits.outbox_messages + limits.max_subscriptions
        self._max_outbound = limits.max_outbound_bytes
        self._slow_after = limits.slow_close_after
        # Items are (topic, data, request_id); data None marks "send the topic's snapshot here".
        self._outbox: collections.deque[tuple[str | None, bytes | None, RequestId | None]] = collections.deque()
        self._queued_bytes = 0
        self._pong: bytes | None = None  # the payload of the latest ping not answered yet
        self._resyncing: set[str] = set()
        self._wakeup = asyncio.Event()
        self._send_started: float | None = None
        self._over_since: float | None = None  # when the outbound bytes went over the bound
        self._loop = asyncio.get_running_loop()
        self._watchdog: asyncio.TimerHandle | None = None
        self._expiry: asyncio.TimerHandle | None = None
        self._writer: asyncio.Task[None] | None = self._loop.create_task(
            self._write_loop(), name=f"ws-writer-{self.id}"
        )
        self._closer: asyncio.Task[None] | None = None

    # -- enqueueing (never awaits) -------------------------------------------

    def offer(self, topic: str, data: bytes, frame: bytes | None = None) -> None:
        """Queue a delta of ``topic`` (called by the hub's fan-out).

        ``frame`` is ``data`` as a ready-made text frame (``wsframe.text_frame``),
        which the hub builds once per delta for all of its subscribers.
        """
        if self.closing or topic in self._resyncing:
            return  # the queued snapshot will already include this change
        transport = self._idle_transport() if not self._outbox else None
        if transport is not None:
            transport.write(frame if frame is not None else text_frame(data))
            self._sent.add(len(data))
            return
        if len(self._outbox) >= self._limit or self.outbound_bytes() + len(data) > self._max_outbound:
            self._metrics.resyncs.inc()
            self.offer_snapshot(topic, None)
            self._falling_behind()
            return
        self._push(topic, data, None)

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
        self._push(None, data, None)

    def pong(self, payload: bytes) -> None:
        """Answer a ping (only the latest one while an answer is still waiting)."""
        if self.closing:
            return
        transport = self._idle_transport() if self._pong is None and not self._outbox else None
        if transport is not None:
            transport.write(control_frame(PONG, payload))
            return
        self._pong = payload
        self._wakeup.set()

    def forget(self, topic: str) -> None:
        """Drop anything still queued for a topic the client unsubscribed from."""
        self._drop_queued(topic)

    def outbound_bytes(self) -> int:
        """Bytes waiting for this client: queued messages plus the connection's write buffer."""
        buffered = self._transport.get_write_buffer_size() if self._transport is not None else 0
        return self._queued_bytes + buffered

    def _push(self, topic: str | None, data: bytes, request_id: RequestId | None) -> None:
        self._outbox.append((topic, data, request_id))
        self._queued_bytes += len(data)
        self._wakeup.set()

    def _idle_transport(self) -> Transport | None:
        """The transport when nothing is in flight on it (a frame written now goes out in order), else None."""
        transport = self._transport
        if (
            transport is None
            or self._send_started is not None
            or transport.get_write_buffer_size()
            or transport.is_closing()
            or self._ws.closed
        ):
            return None
        return transport

    def _drop_queued(self, topic: str) -> None:
        if any(item[0] == topic for item in self._outbox):
            kept = [item for item in self._outbox if item[0] != topic]
            self._outbox = collections.deque(kept)
            self._queued_bytes = sum(len(data) for _, data, _ in kept if data is not None)
        self._resyncing.discard(topic)

    # -- the slow-client watchdog ------------------------------------------------

    def _falling_behind(self) -> None:
        if self._over_since is None:
            self._over_since = self._loop.time()
        self._check_slow()

    def _arm_watchdog(self) -> None:
        if self._watchdog is None and not self.closing:
            self._watchdog = self._loop.call_later(self._slow_after, self._on_watchdog)

    def _on_watchdog(self) -> None:
        self._watchdog = None
        self._check_slow()

    def _check_slow(self) -> None:
        """Close with 1013 a client that has been behind for ``slow_close_after``; else look again then."""
        if self.closing:
            return
        if self._over_since is not None and self.outbound_bytes() <= self._max_outbound:
            self._over_since = None
        behind = [moment for moment in (self._send_started, self._over_since) if moment is not None]
        if not behind:
            return
        due = min(behind) + self._slow_after
        if self._loop.time() >= due:
            self.close(TOO_SLOW)
        elif self._watchdog is None:
            self._watchdog = self._loop.call_at(due, self._on_watchdog)

    # -- writing ---------------------------------------------------------------

    async def _write_loop(self) -> None:
        ws, sent = self._ws, self._sent
        try:
            while True:
                while not self._outbox and self._pong is None:
                    if self.closing:
                        return  # drained: the closer sends the close frame now
                    self._wakeup.clear()
                    await self._wakeup.wait()
                if self._pong is not None:
                    payload, self._pong = self._pong, None
                    await self._send(ws, payload, WSMsgType.PONG)
                    continue
                topic, data, request_id = self._outbox.popleft()
                if data is None:
                    self._resyncing.discard(topic)
                    if topic not in self.topics:
                        continue
                    data = self._snapshot(topic, request_id)
                    if data is None:
                        continue
                else:
                    self._queued_bytes -= len(data)
                await self._send(ws, data, WSMsgType.TEXT)
                sent.add(len(data))
        except (ConnectionError, RuntimeError):
            pass  # the socket went away; the handler cleans up

    async def _send(self, ws: Socket, data: bytes, opcode: WSMsgType) -> None:
        self._send_started = self._loop.time()
        self._arm_watchdog()
        await ws.send_frame(data, opcode)
        self._send_started = None
        if self._over_since is not None and self.outbound_bytes() <= self._max_outbound:
            self._over_since = None

    # -- lifecycle -------------------------------------------------------------

    def arm_expiry(self, delay: float | None) -> None:
        """Close with 4002 after ``delay`` seconds unless re-armed by a refresh."""
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        if delay is not None and not self.closing:
            self._expiry = self._loop.call_later(max(delay, 0), self.close, TOKEN_EXPIRED)

    def close(self, close: Close) -> None:
        """Close the socket with ``close`` from any task, after flushing the queue (not for 1013)."""
        if self.closing:
            return
        self.closing = True
        self._cancel_timers()
        if close == TOO_SLOW:
            # Too slow: what is queued will not be read in time anyway.
            self._metrics.slow_closes.inc()
            self._outbox.clear()
            self._queued_bytes, self._pong = 0, None
            if self._writer is not None:
                self._writer.cancel()
        self._wakeup.set()
        self._closer = self._loop.create_task(self._close(close), name=f"ws-closer-{self.id}")

    async def _close(self, close: Close) -> None:
        # Let the writer flush what is queued (an error frame explaining a 1008,
        # say), but never wait on a client for long.
        if self._writer is not None:
            await asyncio.wait({self._writer}, timeout=_CLOSE_TIMEOUT)
            self._writer.cancel()  # a no-op when it has drained
        try:
            async with asyncio.timeout(_CLOSE_TIMEOUT):  # not wait_for: see tasks.py
                await self._ws.close(code=close.code, message=close.reason.encode())
        except (TimeoutError, ConnectionError, RuntimeError):
            self._abort()  # the client does not even take the close frame: cut the connection

    async def closed(self) -> None:
        """Wait for a close started by ``close`` to finish."""
        if self._closer is not None:
            await asyncio.gather(self._closer, return_exceptions=True)

    async def stop(self) -> None:
        """Release the writer, the closer and the timers (the handler calls this in ``finally``)."""
        self.closing = True
        self._cancel_timers()
        writer, closer = self._writer, self._closer
        if writer is not None:
            await cancel_and_wait(writer)
        if closer is not None and closer is not asyncio.current_task():
            await asyncio.gather(closer, return_exceptions=True)
        # A finished task keeps its exception and traceback, whose frames hold this session:
        # dropping the tasks breaks that cycle.
        self._writer = self._closer = None
        self._outbox.clear()
        self._queued_bytes, self._pong = 0, None

    def _cancel_timers(self) -> None:
        for timer in (self._expiry, self._watchdog):
            if timer is not None:
                timer.cancel()
        self._expiry = self._watchdog = None
