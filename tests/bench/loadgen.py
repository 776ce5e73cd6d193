"""Load-generating processes: many WebSocket clients, or many polling GUIs.

The WebSocket side uses a minimal client on ``asyncio.Protocol`` (upgrade
handshake, unmasked server frames parsed in place, masked client frames,
pong on ping) so that tens of thousands of messages per second cost the load
processes little; the service under test is the bottleneck, not the client.

Each worker runs in a process of its own (``start_*``) and is driven over a
pipe: ``ready`` once its sockets are open and subscribed (snapshots in), then
``stats`` / ``markers`` / ``reset`` / ``close`` commands.
"""

from __future__ import annotations

import asyncio
import base64
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from benchlib import MP, as_load_process, raise_nofile

MARKER_BASE = 900_000_000
MARKER_KEY = b'"vma_eta_seconds":'


class MinimalWebSocket(asyncio.Protocol):
    """One client socket: RFC 6455 framing, just enough for pushsvc's text frames."""

    def __init__(self, host: str, path: str, token: str | None, worker: SocketWorker) -> None:
        self.host, self.path, self.token, self.worker = host, path, token, worker
        self.transport: asyncio.Transport | None = None
        self.opened: asyncio.Future = asyncio.get_running_loop().create_future()
        self.handshaking = True
        self.buf = b""
        self.messages = 0
        self.snapshots = 0
        self.closed = False
        self.close_code: int | None = None
        self.markers: list[tuple[int, float]] = []
        self._key = os.urandom(4)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET {self.path} HTTP/1.1",
            f"Host: {self.host}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
        ]
        if self.token:
            lines.append(f"Authorization: Bearer {self.token}")
        transport.write(("\r\n".join(lines) + "\r\n\r\n").encode())  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        now = time.time()
        if self.handshaking:
            self.buf += data
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            status = self.buf[: self.buf.find(b"\r\n")]
            data, self.buf = self.buf[end + 4 :], b""
            self.handshaking = False
            if b" 101 " not in status:
                if not self.opened.done():
                    self.opened.set_exception(ConnectionError(status.decode(errors="replace")))
                self.transport.close()
                return
            if not self.opened.done():
                self.opened.set_result(True)
            if not data:
                return
        buf = self.buf + data if self.buf else data
        pos, size = 0, len(buf)
        while size - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            length, head = b1 & 0x7F, 2
            if length == 126:
                if size - pos < 4:
                    break
                length, head = int.from_bytes(buf[pos + 2 : pos + 4], "big"), 4
            elif length == 127:
                if size - pos < 10:
                    break
                length, head = int.from_bytes(buf[pos + 2 : pos + 10], "big"), 10
            end = pos + head + length
            if end > size:
                break
            opcode = b0 & 0x0F
            payload = buf[pos + head : end]
            pos = end
            if opcode == 1:
                self.on_text(payload, now)
            elif opcode == 9:
                self.send_frame(0xA, payload)
            elif opcode == 8:
                self.close_code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
                self.send_frame(0x8, payload[:2])
                self.transport.close()
                return
        self.buf = buf[pos:] if pos < size else b""

    def on_text(self, payload: bytes, now: float) -> None:
        self.messages += 1
        self.worker.bytes += len(payload)
        if payload.startswith(b'{"type":"snapshot"'):
            self.snapshots += 1
        if self.worker.track_markers:
            start = 0
            while True:
                index = payload.find(MARKER_KEY, start)
                if index < 0:
                    break
                start = index + len(MARKER_KEY)
                digits = payload[start : start + 12]
                stop = 0
                while stop < len(digits) and 48 <= digits[stop] <= 57:
                    stop += 1
                if stop and int(digits[:stop]) >= MARKER_BASE:
                    self.markers.append((int(digits[:stop]), now))

    def send_frame(self, opcode: int, payload: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        length = len(payload)
        if length < 126:
            header = bytes((0x80 | opcode, 0x80 | length))
        elif length < 65536:
            header = bytes((0x80 | opcode, 0x80 | 126)) + length.to_bytes(2, "big")
        else:
            header = bytes((0x80 | opcode, 0x80 | 127)) + length.to_bytes(8, "big")
        key = self._key
        mask = (key * (length // 4 + 1))[:length]
        masked = (
            (int.from_bytes(payload, "big") ^ int.from_bytes(mask, "big")).to_bytes(length, "big") if length else b""
        )
        self.transport.write(header + key + masked)

    def send_json(self, message: dict) -> None:
        self.send_frame(0x1, orjson.dumps(message))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.opened.done():
            self.opened.set_exception(ConnectionError("connection lost during handshake"))

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.send_frame(0x8, (1000).to_bytes(2, "big"))
            self.transport.close()


@dataclass
class SocketSpec:
    host: str
    port: int
    token: str | None
    count: int
    topics: Callable[[int], Sequence[str]]
    first_index: int = 0
    path: str = "/api/v1/ws"
    track_markers: bool = False
    concurrency: int = 64
    wait_snapshots: bool = True
    source_addresses: Sequence[str] = ("127.0.0.1",)


class SocketWorker:
    def __init__(self, spec: SocketSpec) -> None:
        self.spec = spec
        self.track_markers = spec.track_markers
        self.clients: list[MinimalWebSocket] = []
        self.bytes = 0
        self.failures = 0

    async def open_all(self) -> None:
        loop = asyncio.get_running_loop()
        spec = self.spec
        gate = asyncio.Semaphore(spec.concurrency)
        host = f"127.0.0.1:{spec.port}"

        async def open_one(index: int) -> None:
            async with gate:
                for attempt in range(8):
                    try:
                        source = spec.source_addresses[index % len(spec.source_addresses)]
                        _, proto = await loop.create_connection(
                            lambda: MinimalWebSocket(host, spec.path, spec.token, self),
                            spec.host,
                            spec.port,
                            local_addr=(source, 0) if source != "127.0.0.1" else None,
                        )
                        await asyncio.wait_for(proto.opened, 15)
                        for topic in spec.topics(index):
                            proto.send_json({"type": "subscribe", "topic": topic})
                        self.clients.append(proto)
                        return
                    except (TimeoutError, OSError, ConnectionError):
                        await asyncio.sleep(0.2 * (attempt + 1))
                self.failures += 1

        await asyncio.gather(*(open_one(spec.first_index + i) for i in range(spec.count)))
        if spec.wait_snapshots:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                if all(c.snapshots >= len(spec.topics(0)) or c.closed for c in self.clients):
                    break
                await asyncio.sleep(0.1)

    def stats(self) -> dict[str, Any]:
        return {
            "open": sum(1 for c in self.clients if not c.closed),
            "failures": self.failures,
            "messages": sum(c.messages for c in self.clients),
            "snapshots": sum(c.snapshots for c in self.clients),
            "bytes": self.bytes,
            "closed": sum(1 for c in self.clients if c.closed),
            "close_codes": sorted({c.close_code for c in self.clients if c.close_code is not None}),
        }

    def reset(self) -> None:
        for client in self.clients:
            client.messages = client.snapshots = 0
            client.markers = []
        self.bytes = 0


def _socket_main(conn, spec: SocketSpec) -> None:
    as_load_process()
    raise_nofile()
    asyncio.run(_socket_loop(conn, spec))


async def _socket_loop(conn, spec: SocketSpec) -> None:
    loop = asyncio.get_running_loop()
    worker = SocketWorker(spec)
    await worker.open_all()
    done = loop.create_future()
    conn.send(("ready", worker.stats()))

    def on_command() -> None:
        command = conn.recv()
        if command == "stats":
            conn.send(worker.stats())
        elif command == "reset":
            worker.reset()
            conn.send("ok")
        elif command == "markers":
            conn.send([c.markers for c in worker.clients])
        elif command == "close":
            for client in worker.clients:
                client.close()
            if not done.done():
                done.set_result(None)

    loop.add_reader(conn.fileno(), on_command)
    await done
    await asyncio.sleep(0.5)
    conn.send("closed")


class WorkerHandle:
    """The parent's end of one load process."""

    def __init__(self, target, *args) -> None:
        self.conn, child = MP.Pipe()
        self.process = MP.Process(target=target, args=(child, *args), daemon=True)
        self.process.start()
        self.ready: Any = None

    def wait_ready(self, timeout: float = 180) -> Any:
        if not self.conn.poll(timeout):
            raise TimeoutError("load process not ready")
        tag, self.ready = self.conn.recv()
        return self.ready

    def ask(self, command: str, timeout: float = 60) -> Any:
        self.conn.send(command)
        if not self.conn.poll(timeout):
            raise TimeoutError(f"no answer to {command}")
        return self.conn.recv()

    def close(self) -> None:
        if self.process.is_alive():
            try:
                self.ask("close", 30)
            except (TimeoutError, OSError, EOFError):
                pass
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()


def start_sockets(spec: SocketSpec) -> WorkerHandle:
    return WorkerHandle(_socket_main, spec)


class SocketFleet:
    """``total`` sockets spread over ``processes`` load processes."""

    def __init__(self, processes: int, total: int, **spec: Any) -> None:
        self.handles: list[WorkerHandle] = []
        base, extra = divmod(total, processes)
        first = 0
        for index in range(processes):
            count = base + (1 if index < extra else 0)
            if count:
                self.handles.append(start_sockets(SocketSpec(count=count, first_index=first, **spec)))
            first += count

    def __enter__(self) -> SocketFleet:
        ready = [handle.wait_ready() for handle in self.handles]
        self.opened = sum(r["open"] for r in ready)
        self.failures = sum(r["failures"] for r in ready)
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self.handles:
            handle.conn.send("close")
        for handle in self.handles:
            if handle.conn.poll(30):
                handle.conn.recv()
            handle.process.join(5)
            if handle.process.is_alive():
                handle.process.kill()

    def stats(self) -> dict[str, Any]:
        total: dict[str, Any] = {}
        for handle in self.handles:
            for key, value in handle.ask("stats").items():
                total[key] = total.get(key, 0 if not isinstance(value, list) else []) + value
        return total

    def reset(self) -> None:
        for handle in self.handles:
            handle.ask("reset")

    def markers(self) -> list[list[tuple[int, float]]]:
        result = []
        for handle in self.handles:
            result.extend(handle.ask("markers", 120))
        return result


# -- polling GUIs ------------------------------------------------------------------


@dataclass
class GuiSpec:
    base_url: str
    token: str
    count: int
    first_index: int
    vms: int
    period: float = 5.0
    paths: tuple[str, ...] = ("list", "detail")  # what each GUI fetches every period, in order
    results: dict = field(default_factory=dict)


def _gui_main(conn, spec: GuiSpec) -> None:
    as_load_process()
    raise_nofile()
    asyncio.run(_gui_loop(conn, spec))


async def _gui_loop(conn, spec: GuiSpec) -> None:
    import aiohttp

    loop = asyncio.get_running_loop()
    counts = {"requests": 0, "errors": 0, "latencies": []}
    headers = {"Authorization": f"Bearer {spec.token}"}
    stop = asyncio.Event()
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(spec.base_url, connector=connector, timeout=timeout, headers=headers) as http:

        async def get(path: str) -> None:
            started = time.perf_counter()
            try:
                async with http.get(path) as response:
                    await response.read()
                    if response.status != 200:
                        counts["errors"] += 1
            except (TimeoutError, aiohttp.ClientError):
                counts["errors"] += 1
            counts["requests"] += 1
            counts["latencies"].append(time.perf_counter() - started)

        async def gui(index: int) -> None:
            # What the appliance's GUI does every 5 s: the list, then the open VM's detail.
            next_at = loop.time() + random.uniform(0, spec.period)
            vm = f"bench-vm-{index % spec.vms:03d}"
            while not stop.is_set():
                delay = next_at - loop.time()
                if delay > 0:
                    try:
                        await asyncio.wait_for(stop.wait(), delay)
                        return
                    except TimeoutError:
                        pass
                if "list" in spec.paths:
                    await get("/api/v1/vm-contexts")
                if "detail" in spec.paths:
                    await get(f"/api/v1/vm-contexts/{vm}")
                next_at += spec.period

        tasks = [asyncio.create_task(gui(spec.first_index + i)) for i in range(spec.count)]
        done = loop.create_future()
        conn.send(("ready", {"open": spec.count, "failures": 0}))

        def on_command() -> None:
            command = conn.recv()
            if command == "stats":
                conn.send(
                    {"requests": counts["requests"], "errors": counts["errors"], "latencies": counts["latencies"]}
                )
            elif command == "reset":
                counts.update(requests=0, errors=0, latencies=[])
                conn.send("ok")
            elif command == "close":
                stop.set()
                if not done.done():
                    done.set_result(None)

        loop.add_reader(conn.fileno(), on_command)
        await done
        await asyncio.gather(*tasks, return_exceptions=True)
    conn.send("closed")


class GuiFleet(SocketFleet):
    def __init__(self, processes: int, total: int, **spec: Any) -> None:
        self.handles = []
        base, extra = divmod(total, processes)
        first = 0
        for index in range(processes):
            count = base + (1 if index < extra else 0)
            if count:
                self.handles.append(WorkerHandle(_gui_main, GuiSpec(count=count, first_index=first, **spec)))
            first += count
