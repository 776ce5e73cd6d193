"""The leader's writes to Redis, on the wire before its own sockets get the publication.

A follower starts its fan-out when the leader's notice reaches it through
Redis. The leader's own fan-out is one synchronous loop over its sockets
(tens of milliseconds at thousands of sockets), so a write that waits for
the loop to be free again reaches every follower one whole leader fan-out
late. Here each write is packed (``EVALSHA`` of its fenced script) and handed
to the connection's transport at once: ``write`` sends what the socket takes
and buffers the rest, and never waits. The broker calls :meth:`send` before
it delivers the publication locally; nothing on the fan-out path waits for
Redis.

One connection of its own, opened from the broker's pool settings (address,
password, TLS, client name): replies come back in the order the writes went
out, and one task reads them. The scripts are loaded when the connection
opens, so a write costs no round trip before it (redis-py's pipeline asks
``SCRIPT EXISTS`` before every batch of scripts). A reply that refuses the
write (lease or epoch lost, seq conflict) ends the reading and is reported to
``on_refused``; any Redis failure, ``NOSCRIPT`` (the server's script cache
was flushed) included, is reported to ``on_failed``. The broker then follows
again or falls back, and closes this object.

redis-py has no public call that writes without awaiting: its
``send_packed_command`` yields before it writes when timeouts are set. This
uses the connection's stream writer (``Connection._writer``), and checks
that it is one when the connection opens.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable, Iterable

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from ..tasks import cancel_and_wait
from .sharedlog import OK, Refused, Write

FAILURES = (RedisError, OSError, TimeoutError)


class LeaderWrites:
    def __init__(
        self,
        redis: aioredis.Redis,
        scripts: Iterable[AsyncScript],
        *,
        on_refused: Callable[[Refused], None],
        on_failed: Callable[[BaseException], None],
        limit: int,
    ) -> None:
        self._redis = redis
        self._scripts = list(scripts)
        self._on_refused = on_refused
        self._on_failed = on_failed
        self._limit = limit
        self._connection: aioredis.Connection | None = None
        self._stream: asyncio.StreamWriter | None = None
        self._pending: collections.deque[Write] = collections.deque()  # sent, reply not read yet
        self._more = asyncio.Event()  # set when a write was sent
        self._idle = asyncio.Event()  # set when every write sent so far was answered
        self._idle.set()
        self._reader: asyncio.Task[None] | None = None

    @property
    def pending(self) -> int:
        """Writes sent and not answered yet."""
        return len(self._pending)

    async def open(self) -> None:
        """Connect and load the scripts (bounded by the pool's timeouts)."""
        connection = self._redis.connection_pool.make_connection()  # type: ignore[no-untyped-call]
        try:
            await connection.connect()
            for script in self._scripts:
                await connection.send_command("SCRIPT", "LOAD", script.script)
                await connection.read_response()
            stream = getattr(connection, "_writer", None)
            if not isinstance(stream, asyncio.StreamWriter):
                raise ConnectionError("this redis-py's connection has no stream writer to send leader writes with")
        except BaseException:
            await connection.disconnect()
            raise
        self._connection, self._stream = connection, stream
        self._reader = asyncio.get_running_loop().create_task(self._read_replies(connection), name="leader-writes")

    def send(self, write: Write) -> None:
        """Put ``write`` on the wire now. Raises ConnectionError or TimeoutError when it cannot be sent."""
        connection, stream = self._connection, self._stream
        if connection is None or stream is None or stream.is_closing():
            raise ConnectionError("the leader's Redis connection is closed")
        if len(self._pending) >= self._limit:
            raise TimeoutError(f"{self._limit} leader writes waiting for Redis to answer")
        command = ("EVALSHA", write.script.sha, len(write.keys), *write.keys, *write.args)
        stream.writelines(connection.pack_command(*command))
        self._pending.append(write)
        self._idle.clear()
        self._more.set()

    async def flush(self) -> None:
        """Until every write sent so far has been answered (or the reading stopped)."""
        await self._idle.wait()

    async def close(self) -> None:
        """Stop reading and disconnect; writes not answered yet are forgotten (their fencing decides)."""
        reader, connection = self._reader, self._connection
        self._reader = self._connection = self._stream = None
        if reader is not None:
            await cancel_and_wait(reader)
        if connection is not None:
            await connection.disconnect(nowait=True)
        self._pending.clear()
        self._idle.set()

    async def _read_replies(self, connection: aioredis.Connection) -> None:
        try:
            while True:
                if not self._pending:
                    self._idle.set()
                    self._more.clear()
                    await self._more.wait()
                    continue
                reply = await connection.read_response()  # within the pool's command timeout
                write = self._pending.popleft()
                if not (write.counts and reply >= 0) and reply != OK:
                    self._on_refused(Refused(int(reply)))
                    return
        except FAILURES as exc:
            self._on_failed(exc)
        finally:
            self._idle.set()
