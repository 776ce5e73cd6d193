"""Load-generating processes: many WebSocket clients, or many polling GUIs.

The WebSocket side uses a minimal client on ``asyncio.Protocol`` (upgrade
handshake, unmasked server frames parsed in place, masked client frames,
pong on ping) so that tens of thousands of messages per second cost the load
processes little; the service under test is the bottleneck, not the client.

Sockets that track latency markers read with ``recvmsg`` and ``SO_TIMESTAMPNS``
(``RecvmsgTransport``), so each marker carries two times: when the load process
read it (``time.time()`` in ``data_received``) and when its bytes arrived at
the client's socket (the kernel's receive timestamp of the newest segment in
that read, which on loopback is taken during the server's ``send``). With
2,500 sockets per load process, the first can lag the second by tens of
milliseconds while the process works through a fan-out's sockets one by one;
a browser, one socket per machine, does not have that queue.

Each worker runs in a process of its own (``start_*``) and is driven over a
pipe: ``ready`` once its sockets are open and subscribed (snapshots in), then
``stats`` / ``markers`` / ``reset`` / ``close`` commands.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import random
import selectors
import socket
import struct
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from benchlib import MP, as_load_process, raise_nofile, stop_process

MARKER_BASE = 900_000_000
MARKER_KEY = b'"vma_eta_seconds":'
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux; Python 3.11 does not name it
TIMESTAMP_SPACE = socket.CMSG_SPACE(16)  # struct timespec


class RecvmsgTransport:
    """Just enough of ``asyncio.Transport`` for ``MinimalWebSocket``, reading with kernel receive timestamps."""

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket, protocol: MinimalWebSocket) -> None:
        self.loop, self.sock, self.protocol = loop, sock, protocol
        self.closing = False
        self.pending = b""  # what the socket did not take at once (rare: only pongs and close frames are sent)
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        loop.add_reader(sock.fileno(), self._read)
        protocol.connection_made(self)  # type: ignore[arg-type]

    def _read(self) -> None:
        try:
            data, ancillary, _, _ = self.sock.recvmsg(262144, TIMESTAMP_SPACE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._lost(exc)
            return
        if not data:
            self._lost(None)
            return
        read_at = time.time()
        arrived_at = read_at
        for level, kind, value in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                seconds, nanoseconds = struct.unpack("qq", value[:16])
                arrived_at = seconds + nanoseconds / 1e9
        self.protocol.received(data, read_at, arrived_at)

    def write(self, data: bytes) -> None:
        if self.closing:
            return
        if self.pending:
            self.pending += data
            return
        try:
            sent = self.sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as exc:
            self._lost(exc)
            return
        if sent < len(data):
            self.pending = data[sent:]
            self.loop.add_writer(self.sock.fileno(), self._flush)

    def _flush(self) -> None:
        try:
            sent = self.sock.send(self.pending)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._lost(exc)
            return
        self.pending = self.pending[sent:]
        if not self.pending:
            self.loop.remove_writer(self.sock.fileno())
            if self.closing:
                self._lost(None)

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        if self.closing:
            return
        self.closing = True
        if not self.pending:
            self._lost(None)

    def _lost(self, exc: Exception | None) -> None:
        if self.sock.fileno() < 0:
            return
        self.closing = True
        self.loop.remove_reader(self.sock.fileno())
        self.loop.remove_writer(self.sock.fileno())
        self.sock.close()
        self.protocol.connection_lost(exc)


async def open_timestamped(
    loop: asyncio.AbstractEventLoop, protocol: MinimalWebSocket, host: str, port: int, source: str | None
) -> None:
    """Connect a ``RecvmsgTransport`` socket, as ``loop.create_connection`` does for the plain one."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if source:
            sock.bind((source, 0))
        await loop.sock_connect(sock, (host, port))
    except BaseException:
        sock.close()
        raise
    RecvmsgTransport(loop, sock, protocol)


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
        self.markers: list[tuple[int, float, float]] = []  # (marker, read at, arrived at)
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
        self.received(data, now, now)

    def received(self, data: bytes, now: float, arrived_at: float) -> None:
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
                self.on_text(payload, now, arrived_at)
            elif opcode == 9:
                self.send_frame(0xA, payload)
            elif opcode == 8:
                self.close_code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
                self.send_frame(0x8, payload[:2])
                self.transport.close()
                return
        self.buf = buf[pos:] if pos < size else b""

    def on_text(self, payload: bytes, now: float, arrived_at: float) -> None:
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
                    self.markers.append((int(digits[:stop]), now, arrived_at))

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
    client: str = "python"  # or "c": wsload.c, the same client at a fraction of the CPU (CSocketWorker)


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
                        local = source if source != "127.0.0.1" else None
                        if spec.track_markers:
                            proto = MinimalWebSocket(host, spec.path, spec.token, self)
                            await open_timestamped(loop, proto, spec.host, spec.port, local)
                        else:
                            _, proto = await loop.create_connection(
                                lambda: MinimalWebSocket(host, spec.path, spec.token, self),
                                spec.host,
                                spec.port,
                                local_addr=(local, 0) if local else None,
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
        elif command == "markers":  # (marker, when the load process read it)
            conn.send([[(value, read_at) for value, read_at, _ in c.markers] for c in worker.clients])
        elif command == "arrivals":  # (marker, when its bytes arrived at the client's socket)
            conn.send([[(value, arrived_at) for value, _, arrived_at in c.markers] for c in worker.clients])
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
    """The parent's end of one load process (Python clients, driven over a pipe)."""

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

    def begin_close(self) -> None:
        self.conn.send("close")

    def end_close(self) -> None:
        if self.conn.poll(30):
            self.conn.recv()
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()


def build_c(name: str) -> Path:
    """``name`` (a C file beside this one) compiled with the system's cc, once per version of the source."""
    path = Path(__file__).with_name(name)
    source = path.read_bytes()
    binary = Path(tempfile.gettempdir()) / f"pushsvc-{path.stem}-{hashlib.sha256(source).hexdigest()[:12]}"
    if not binary.exists():
        partial = binary.with_suffix(f".{os.getpid()}")
        subprocess.run(["cc", "-O2", "-o", str(partial), str(path)], check=True)
        partial.replace(binary)
    return binary


def build_wsload() -> Path:
    """wsload.c compiled (the C load clients)."""
    return build_c("wsload.c")


class CSocketWorker:
    """The parent's end of one wsload process (the C clients), with ``WorkerHandle``'s commands."""

    def __init__(self, spec: SocketSpec) -> None:
        if tuple(spec.source_addresses) != ("127.0.0.1",) or not spec.wait_snapshots:
            raise ValueError("the C client connects from 127.0.0.1 and always waits for the snapshots")
        self.process = subprocess.Popen(
            [str(build_wsload())], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self.stdin, self.stdout = self.process.stdin, self.process.stdout
        lines = [f"{spec.host} {spec.port} {spec.path} {spec.token or '-'} {spec.count} {int(spec.track_markers)}"]
        lines += [" ".join(spec.topics(spec.first_index + i)) for i in range(spec.count)]
        self.stdin.write("\n".join(lines) + "\n")
        self.stdin.flush()
        self.ready: Any = None

    def _line(self, timeout: float) -> str:
        with selectors.DefaultSelector() as selector:
            selector.register(self.stdout, selectors.EVENT_READ)
            if not selector.select(timeout):
                raise TimeoutError("no answer from wsload")
        line = self.stdout.readline()
        if not line:
            raise EOFError("wsload exited")
        return line

    def wait_ready(self, timeout: float = 180) -> Any:
        tag, _, stats = self._line(timeout).partition(" ")
        if tag != "ready":
            raise RuntimeError(f"wsload: {tag}")
        self.ready = json.loads(stats)
        return self.ready

    def ask(self, command: str, timeout: float = 60) -> Any:
        self.stdin.write(command + "\n")
        self.stdin.flush()
        return json.loads(self._line(timeout))

    def begin_close(self) -> None:
        try:
            self.stdin.write("close\n")
            self.stdin.flush()
        except BrokenPipeError:
            pass

    def end_close(self) -> None:
        stop_process(self.process, 30, terminate=False)  # told to close on its stdin

    def close(self) -> None:
        self.begin_close()
        self.end_close()


def start_sockets(spec: SocketSpec) -> WorkerHandle | CSocketWorker:
    return CSocketWorker(spec) if spec.client == "c" else WorkerHandle(_socket_main, spec)


class SocketFleet:
    """``total`` sockets spread over ``processes`` load processes."""

    def __init__(self, processes: int, total: int, **spec: Any) -> None:
        self.spec = spec
        self.handles: list[Any] = []
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
            handle.begin_close()
        for handle in self.handles:
            handle.end_close()

    def stats(self) -> dict[str, Any]:
        total: dict[str, Any] = {}
        for handle in self.handles:
            for key, value in handle.ask("stats").items():
                total[key] = total.get(key, 0 if not isinstance(value, list) else []) + value
        return total

    def reset(self) -> None:
        for handle in self.handles:
            handle.ask("reset")

    def markers(self, clock: str = "read") -> list[list[tuple[int, float]]]:
        """Each socket's (marker, time) pairs: when the load process read it, or (``arrived``) when it arrived."""
        command = {"read": "markers", "arrived": "arrivals"}[clock]
        result = []
        for handle in self.handles:
            result.extend(handle.ask(command, 120))
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
