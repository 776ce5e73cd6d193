"""A WebSocket client over a bare socket: sends any frame (unmasked, bad opcodes, lying lengths), reads only when asked.

Well-behaved clients (aiohttp's, a browser's) cannot send what the hostile
tests need, and they read eagerly; this one reads nothing until ``read_frame``
is awaited, so with a small ``SO_RCVBUF`` it is a client that stops reading.
Everything goes through ``loop.sock_*``: no transport reads behind the test's back.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import struct
from dataclasses import dataclass, field

import orjson

TIMEOUT = 5.0

TEXT, BINARY, CLOSE, PING, PONG, CONTINUATION = 0x1, 0x2, 0x8, 0x9, 0xA, 0x0


def frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    mask: bool = True,
    rsv: int = 0,
    length: int | None = None,
) -> bytes:
    """One frame as a client would send it (masked unless ``mask=False``); ``length`` may lie."""
    size = len(payload) if length is None else length
    head = bytes([(0x80 if fin else 0) | (rsv & 0x7) << 4 | opcode & 0xF])
    mask_bit = 0x80 if mask else 0
    if size < 126:
        head += bytes([mask_bit | size])
    elif size < 1 << 16:
        head += bytes([mask_bit | 126]) + struct.pack("!H", size)
    else:
        head += bytes([mask_bit | 127]) + struct.pack("!Q", size)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + _mask(key, payload)


def _mask(key: bytes, payload: bytes) -> bytes:
    """RFC 6455 5.3: XOR with the key repeated (one big-integer XOR, fast for large payloads)."""
    repeated = (key * (len(payload) // 4 + 1))[: len(payload)]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(len(payload), "big")


def text(message: dict | str | bytes, **options) -> bytes:
    """A text frame with ``message`` (a dict is JSON-encoded)."""
    data = orjson.dumps(message) if isinstance(message, dict) else message
    return frame(TEXT, data.encode() if isinstance(data, str) else data, **options)


def close_frame(code: int | None = 1000, reason: bytes = b"", **options) -> bytes:
    return frame(CLOSE, b"" if code is None else struct.pack("!H", code) + reason, **options)


@dataclass
class Ending:
    """How a connection ended, as the client saw it."""

    close_code: int | None = None  # the code of the server's close frame; None when none came
    close_reason: str = ""
    reset: bool = False  # the connection was reset (RST) rather than closed
    timed_out: bool = False
    messages: list[dict] = field(default_factory=list)  # JSON text messages read before the end


class RawWebSocket:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.loop = asyncio.get_running_loop()
        self.buffer = bytearray()
        self.eof = False

    @classmethod
    async def connect(
        cls, port: int, *, headers: dict[str, str] | None = None, rcvbuf: int | None = None, host: str = "127.0.0.1"
    ) -> RawWebSocket:
        """Open ``/api/v1/ws`` and complete the handshake (raises AssertionError unless 101)."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)  # before connect: sets the window
        sock.setblocking(False)
        client = cls(sock)
        try:
            await client.loop.sock_connect(sock, (host, port))
            key = base64.b64encode(os.urandom(16)).decode()
            lines = [
                "GET /api/v1/ws HTTP/1.1",
                f"Host: {host}:{port}",
                "Upgrade: websocket",
                "Connection: Upgrade",
                f"Sec-WebSocket-Key: {key}",
                "Sec-WebSocket-Version: 13",
            ] + [f"{name}: {value}" for name, value in (headers or {}).items()]
            await client.send("\r\n".join(lines).encode() + b"\r\n\r\n")
            async with asyncio.timeout(TIMEOUT):
                while b"\r\n\r\n" not in client.buffer:
                    if not await client._fill():
                        raise AssertionError("connection closed during the handshake")
            head, _, rest = bytes(client.buffer).partition(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 101"):
                raise AssertionError(f"handshake refused: {head[:200]!r}")
            client.buffer = bytearray(rest)
        except BaseException:
            sock.close()
            raise
        return client

    async def send(self, data: bytes) -> bool:
        """Write ``data``; False when the server has already closed or reset the connection."""
        try:
            await self.loop.sock_sendall(self.sock, data)
        except (ConnectionError, OSError):
            return False
        return True

    async def _fill(self) -> bool:
        data = await self.loop.sock_recv(self.sock, 1 << 16)
        if not data:
            self.eof = True
            return False
        self.buffer += data
        return True

    async def read_frame(self) -> tuple[int, bytes] | None:
        """The next frame from the server as (opcode, payload); None at end of stream.

        Raises ``ConnectionResetError`` when the connection is reset.
        """
        while True:
            parsed = self._parse()
            if parsed is not None:
                return parsed
            if self.eof or not await self._fill():
                return None

    def _parse(self) -> tuple[int, bytes] | None:
        buffer = self.buffer
        if len(buffer) < 2:
            return None
        opcode, length, offset = buffer[0] & 0xF, buffer[1] & 0x7F, 2
        if buffer[1] & 0x80:
            raise AssertionError("the server sent a masked frame")
        if length == 126:
            if len(buffer) < 4:
                return None
            length, offset = struct.unpack_from("!H", buffer, 2)[0], 4
        elif length == 127:
            if len(buffer) < 10:
                return None
            length, offset = struct.unpack_from("!Q", buffer, 2)[0], 10
        if len(buffer) < offset + length:
            return None
        payload = bytes(buffer[offset : offset + length])
        del buffer[: offset + length]
        return opcode, payload

    async def read_until_closed(self, timeout: float = TIMEOUT, *, answer_pings: bool = True) -> Ending:
        """Read until the server's close frame (answered, then the socket closed) or the end of the stream."""
        ending = Ending()
        try:
            async with asyncio.timeout(timeout):
                while True:
                    received = await self.read_frame()
                    if received is None:
                        break
                    opcode, payload = received
                    if opcode == CLOSE:
                        ending.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                        ending.close_reason = payload[2:].decode("utf-8", "replace")
                        await self.send(close_frame(ending.close_code if ending.close_code != 1005 else None))
                        break
                    if opcode == PING and answer_pings:
                        await self.send(frame(PONG, payload))
                    elif opcode == TEXT:
                        ending.messages.append(orjson.loads(payload))
        except ConnectionResetError:
            ending.reset = True
        except TimeoutError:
            ending.timed_out = True
        self.close()
        return ending

    async def next_message(self, timeout: float = TIMEOUT) -> dict:
        """The next JSON text message (pings answered); AssertionError if the connection ends first."""
        async with asyncio.timeout(timeout):
            while True:
                received = await self.read_frame()
                if received is None:
                    raise AssertionError("connection ended")
                opcode, payload = received
                if opcode == TEXT:
                    return orjson.loads(payload)
                if opcode == PING:
                    await self.send(frame(PONG, payload))
                elif opcode == CLOSE:
                    code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                    raise AssertionError(f"closed by the server: {code}")

    def close(self) -> None:
        self.sock.close()
