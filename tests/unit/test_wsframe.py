"""wsframe.text_frame: byte for byte what aiohttp's writer sends, and what aiohttp's reader accepts."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import WSMsgType
from aiohttp._websocket.reader import WebSocketDataQueue, WebSocketReader  # what aiohttp's client reads with
from aiohttp.http_websocket import WebSocketWriter

from pushsvc.wsframe import PING, PONG, control_frame, text_frame

from .fakes import FakeTransport

# Around every length-encoding boundary: 7-bit (<= 125), 16-bit (126..65535), 64-bit.
SIZES = [0, 1, 125, 126, 127, 65535, 65536, 65537, 1 << 20]


class _Protocol:
    """The two attributes aiohttp's writer and data queue look at."""

    _paused = False
    _reading_paused = False

    def pause_reading(self) -> None:
        self._reading_paused = True

    def resume_reading(self) -> None:
        self._reading_paused = False


def _payload(size: int) -> bytes:
    """``size`` bytes of UTF-8 text (two-byte characters where they fit)."""
    return "é".encode() * (size // 2) + b"x" * (size % 2)


async def _aiohttp_frame(payload: bytes, opcode: WSMsgType = WSMsgType.TEXT) -> bytes:
    transport = FakeTransport()
    writer = WebSocketWriter(_Protocol(), transport, use_mask=False, compress=0)  # type: ignore[arg-type]
    await writer.send_frame(payload, opcode)
    return b"".join(transport.written)


@pytest.mark.parametrize("size", SIZES)
async def test_same_bytes_as_aiohttps_writer(size):
    payload = _payload(size)
    assert text_frame(payload) == await _aiohttp_frame(payload)


@pytest.mark.parametrize("size", SIZES)
async def test_aiohttps_reader_accepts_it(size):
    payload = _payload(size)
    queue = WebSocketDataQueue(_Protocol(), 2**16, loop=asyncio.get_running_loop())  # type: ignore[arg-type]
    reader = WebSocketReader(queue, max_msg_size=0, compress=False, decode_text=True)
    frame = text_frame(payload)
    # Fed in two pieces, as a socket may deliver it.
    for piece in (frame[: len(frame) // 2], frame[len(frame) // 2 :]):
        reader.feed_data(piece)
    message = await queue.read()
    assert message.type == WSMsgType.TEXT and message.data == payload.decode()


@pytest.mark.parametrize("opcode, kind", [(PING, WSMsgType.PING), (PONG, WSMsgType.PONG)])
@pytest.mark.parametrize("payload", [b"", b"hb", b"x" * 125])
async def test_control_frames_are_aiohttps_too(opcode, kind, payload):
    assert control_frame(opcode, payload) == await _aiohttp_frame(payload, kind)


def test_control_frames_carry_at_most_125_bytes():
    with pytest.raises(ValueError):
        control_frame(PONG, b"x" * 126)
