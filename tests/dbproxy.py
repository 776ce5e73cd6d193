"""A TCP proxy in front of the real MariaDB that a test can cut and restore.

Cutting closes the listener and every proxied connection, so the service sees
exactly what a database outage looks like (refused connects, dropped
sessions) while the real server stays up for everyone else.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib


class DatabaseProxy:
    """``connections`` and ``commands`` count what clients sent through it (see ``CommandCounter``)."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.connections = 0
        self.commands: collections.Counter[str] = collections.Counter()
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        """Refuse new connections and drop every open one."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def restore(self) -> None:
        await self.start()

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.transport.abort()
            return
        self.connections += 1
        self._writers.update((client_writer, server_writer))
        counter = CommandCounter(self.commands)
        tasks = [
            asyncio.create_task(self._pipe(client_reader, server_writer, counter)),
            asyncio.create_task(self._pipe(server_reader, client_writer)),
        ]
        self._tasks.update(tasks)
        try:
            await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            self._tasks.difference_update(tasks)
            for writer in (client_writer, server_writer):
                self._writers.discard(writer)
                writer.transport.abort()

    @staticmethod
    async def _pipe(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, counter: CommandCounter | None = None
    ) -> None:
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            while data := await reader.read(65536):
                if counter is not None:
                    counter.feed(data)
                writer.write(data)
                await writer.drain()
        writer.transport.abort()


COMMAND_NAMES = {0x01: "quit", 0x02: "init_db", 0x03: "query", 0x0E: "ping", 0x16: "prepare", 0x17: "execute"}


class CommandCounter:
    """Counts the commands in a client's half of a MySQL protocol stream.

    Every packet is a 3-byte little-endian length, a sequence id and the
    payload; a command is a packet with sequence id 0, its first payload byte
    the command (0x03 a statement). The handshake's packets have other ids.
    """

    def __init__(self, counts: collections.Counter[str]) -> None:
        self.counts = counts
        self._buffer = b""

    def feed(self, data: bytes) -> None:
        self._buffer += data
        while len(self._buffer) >= 4:
            length = int.from_bytes(self._buffer[:3], "little")
            if len(self._buffer) < 4 + length:
                return
            if self._buffer[3] == 0 and length:
                command = self._buffer[4]
                self.counts[COMMAND_NAMES.get(command, f"0x{command:02x}")] += 1
            self._buffer = self._buffer[4 + length :]
