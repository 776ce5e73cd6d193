"""The client's TCP connection under aiohttp's WebSocketResponse: what aiohttp leaves to us.

:class:`WebSocket` is aiohttp's ``WebSocketResponse`` with a :class:`Link`
put between the transport and aiohttp's protocol once the upgrade is sent
(``transport.set_protocol``, plain asyncio). The link sees every byte the
client sends and every end of the connection, and does four things:

- **Masking** (RFC 6455 5.1: a server must close on an unmasked client
  frame). aiohttp's reader accepts unmasked frames and has no option to
  refuse them, so the link follows the frame headers in the byte stream
  (headers only: payloads are skipped by their length) and stops at the
  first frame without the mask bit. What came before it still reaches
  aiohttp; nothing after it does; ``on_protocol_error`` tells the handler,
  which closes with 1002. Bytes a client sends before the 101 response
  (RFC 6455 4.1 forbids it) reach aiohttp unchecked.
- **Heartbeat**: after ``heartbeat`` seconds without a byte from the client
  it sends a ping, and cuts the connection when nothing arrives within half
  that. (aiohttp's own heartbeat re-arms itself when bytes arrive after the
  close, keeping closed sockets alive for a heartbeat, and ties the response
  and the protocol into a reference cycle.)
- **Lingering close**: aiohttp closes the transport right after its close
  frame. With bytes from the client still unread (the rest of a frame that
  was too big, say) the kernel answers with a reset, and a reset can
  destroy the close frame before the client reads it. Instead the link
  half-closes (the close frame, then FIN), reads and drops whatever still
  comes, and cuts the connection ``grace`` seconds later at the latest: also
  when the client reads nothing, so a zero window never holds a socket.
- ``closed()``: the handler waits for the connection to be gone, so that
  nothing of it outlives the handler.

The one private aiohttp hook used is ``WebSocketResponse._close_transport``
(every path by which aiohttp ends a connection goes through it);
``tests/integration/test_ws_hostile.py`` fails if aiohttp stops calling it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter

from .wsframe import PING, control_frame

log = logging.getLogger(__name__)

CLOSE_GRACE = 2.0  # seconds a closing client has to finish before its connection is cut

_EXTENDED_LENGTH = {126: 2, 127: 8}  # bytes after the 7-bit length marker
_MASK_BIT = 0x80
_PING = control_frame(PING)


class FrameHeaders:
    """Follows frame boundaries in a client's byte stream, reading only the headers."""

    def __init__(self) -> None:
        self._header = bytearray()
        self._skip = 0  # payload bytes of the current frame still to come

    def first_unmasked(self, data: bytes) -> int | None:
        """Where, in ``data``, the first unmasked frame starts (0 if it started earlier); None if none does."""
        pos, end, header = 0, len(data), self._header
        while pos < end:
            if self._skip:
                step = min(self._skip, end - pos)
                self._skip -= step
                pos += step
                continue
            # A header: 2 bytes, the extended length, then the 4-byte mask key.
            need = 2 if len(header) < 2 else 6 + _EXTENDED_LENGTH.get(header[1] & 0x7F, 0)
            if len(header) < need:
                start = pos - len(header)
                take = min(need - len(header), end - pos)
                header += data[pos : pos + take]
                pos += take
                if len(header) >= 2 and not header[1] & _MASK_BIT:
                    return max(start, 0)
                continue
            length = header[1] & 0x7F
            if length in _EXTENDED_LENGTH:
                length = int.from_bytes(header[2 : 2 + _EXTENDED_LENGTH[length]], "big")
            self._skip = length
            header.clear()
        return None


class Link(asyncio.Protocol):
    """Between the transport and aiohttp's protocol for one upgraded connection (see the module docstring)."""

    def __init__(self, transport: asyncio.Transport, inner: asyncio.BaseProtocol, heartbeat: float) -> None:
        self.transport = transport
        self.inner: Any = inner  # aiohttp's RequestHandler: a Protocol with aiohttp's extra state
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.protocol_error = False
        self.lingering = False
        self._loop = asyncio.get_running_loop()
        self._frames = FrameHeaders()
        self._on_protocol_error: Callable[[], None] | None = None
        self._heartbeat = heartbeat
        self._received_at = self._loop.time()
        self._pinged_at: float | None = None
        self._timer: asyncio.TimerHandle | None = self._loop.call_later(heartbeat, self._beat)

    # -- what the transport calls ------------------------------------------------

    def data_received(self, data: bytes) -> None:
        self._received_at = self._loop.time()
        if self.lingering or self.protocol_error:
            return  # closing: read and drop
        bad = self._frames.first_unmasked(data)
        if bad is None:
            self.inner.data_received(data)
            return
        if bad:
            self.inner.data_received(data[:bad])
        self.protocol_error = True
        # Soon, not now: the handler's wake-up for what was just fed to aiohttp is
        # already scheduled, so the messages before the bad frame are handled first.
        self._loop.call_soon(self._report_protocol_error)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()  # type: ignore[no-any-return]

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        self._on_protocol_error = None  # it holds the handler's state, which holds this link
        try:
            self.inner.connection_lost(exc)
        finally:
            if not self.lost.done():
                self.lost.set_result(None)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    # -- what the handler and the response call ------------------------------------

    def on_protocol_error(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once an unmasked frame arrives (soon, if one already has)."""
        self._on_protocol_error = callback
        if self.protocol_error:
            self._loop.call_soon(self._report_protocol_error)

    def _report_protocol_error(self) -> None:
        if self._on_protocol_error is not None:
            self._on_protocol_error()

    def linger(self) -> None:
        """Half-close after what is buffered, drop what still arrives, cut the connection after the grace."""
        if self.lingering or self.transport.is_closing():
            return
        self.lingering = True
        self._cancel_timer()
        self.transport.resume_reading()  # aiohttp may have paused reading; the kernel must be drained
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self._timer = self._loop.call_later(CLOSE_GRACE, self.transport.abort)

    async def closed(self) -> None:
        """Wait until the connection is gone: at most ``CLOSE_GRACE``, then cut it."""
        if not self.lost.done():
            await asyncio.wait({self.lost}, timeout=CLOSE_GRACE)
        if not self.lost.done():
            self.transport.abort()
            await self.lost

    # -- heartbeat -------------------------------------------------------------------

    def _beat(self) -> None:
        self._timer = None
        if self.lingering or self.transport.is_closing():
            return
        now = self._loop.time()
        if self._pinged_at is not None and self._received_at < self._pinged_at:
            log.debug("no answer to a ping within %.1f s: connection cut", self._heartbeat / 2)
            self.transport.abort()
            return
        self._pinged_at = None
        due = self._received_at + self._heartbeat
        if now < due:
            self._timer = self._loop.call_at(due, self._beat)
            return
        self.transport.write(_PING)
        self._pinged_at = now
        self._timer = self._loop.call_later(self._heartbeat / 2, self._beat)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class WebSocket(web.WebSocketResponse):
    """aiohttp's ``WebSocketResponse`` over a :class:`Link` (pass ``heartbeat=None`` to aiohttp: the link beats)."""

    def __init__(self, *, ping_interval: float, **options: Any) -> None:
        super().__init__(**options)
        self._ping_interval = ping_interval
        self.link: Link | None = None

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter:
        writer = await super().prepare(request)
        transport = request.transport
        if self.link is None and transport is not None and not transport.is_closing():
            # No await between the 101 going out and this: no client byte can slip past the link.
            self.link = Link(transport, transport.get_protocol(), self._ping_interval)
            transport.set_protocol(self.link)
        return writer

    def _close_transport(self) -> None:
        # aiohttp's hook for ending the connection (after its close frame, or on an error).
        if self.link is not None:
            self.link.linger()
        else:
            super()._close_transport()

    async def connection_closed(self) -> None:
        """The connection is gone (the lingering close finished, or the connection was cut)."""
        if self.link is not None:
            await self.link.closed()
