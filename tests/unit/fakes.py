"""In-memory fakes of the seams the project owns: a socket, its transport, a hub subscriber, a broker consumer."""

from __future__ import annotations

import asyncio

import orjson
from aiohttp import WSMsgType

from pushsvc.broker import Publication, Tick
from pushsvc.protocol import DatabaseStatus


class FakeTransport:
    """Records raw writes; ``buffered`` stands for bytes the kernel has not taken yet."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.buffered = 0
        self.closing = False
        self.aborted = False
        self.aborted_event = asyncio.Event()

    def write(self, data: bytes) -> None:
        self.written.append(bytes(data))

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def is_closing(self) -> bool:
        return self.closing

    def abort(self) -> None:
        self.aborted = True
        self.aborted_event.set()


class FakeSocket:
    """Records frames sent through the writer task; ``gate`` can hold a send (a client that does not read)."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.pongs: list[bytes] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.sending = asyncio.Event()  # set while a send waits at the gate
        self.close_code: int | None = None
        self.close_reason: bytes | None = None
        self.closed_event = asyncio.Event()
        self.closed = False
        self._sent = asyncio.Event()

    async def wait_frames(self, count: int) -> list[bytes]:
        """Wait until ``count`` frames have been sent through the writer."""
        async with asyncio.timeout(5):
            while len(self.frames) < count:
                self._sent.clear()
                await self._sent.wait()
        return self.frames

    async def send_frame(self, message: bytes, opcode: WSMsgType, compress: int | None = None) -> None:
        assert opcode in (WSMsgType.TEXT, WSMsgType.PONG) and not compress
        self.sending.set()
        await self.gate.wait()
        self.sending.clear()
        if opcode == WSMsgType.PONG:
            self.pongs.append(message)
        else:
            self.frames.append(message)
        self._sent.set()

    async def close(self, *, code: int = 1000, message: bytes = b"") -> bool:
        self.close_code, self.close_reason, self.closed = code, message, True
        self.closed_event.set()
        return True

    def messages(self) -> list[dict]:
        return [orjson.loads(frame) for frame in self.frames]


class FakeSubscriber:
    """What the hub sees of a session; records what it was handed."""

    def __init__(self) -> None:
        self.topics: set[str] = set()
        self.offered: list[tuple[str, bytes]] = []
        self.snapshots: list[tuple[str, object]] = []
        self.sent: list[bytes] = []

    def offer(self, topic: str, data: bytes, frame: bytes | None = None) -> None:
        self.offered.append((topic, data))

    def offer_snapshot(self, topic: str, request_id: object) -> None:
        self.snapshots.append((topic, request_id))

    def send(self, data: bytes) -> None:
        self.sent.append(data)


class RecordingConsumer:
    def __init__(self) -> None:
        self.publications: list[Publication] = []
        self.statuses: list[DatabaseStatus] = []
        self.ticks: list[Tick] = []

    def on_publication(self, publication: Publication) -> None:
        self.publications.append(publication)

    def on_status(self, status: DatabaseStatus) -> None:
        self.statuses.append(status)

    def on_tick(self, tick: Tick) -> None:
        self.ticks.append(tick)
