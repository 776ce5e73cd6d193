"""The binlog change source: MariaDB's binary log, read in a thread, as an async stream of signals.

``mysql-replication`` reads the binlog with blocking sockets, so one daemon
thread per source runs it and hands each committed transaction's changes to
the event loop with ``loop.call_soon_threadsafe``; nothing here ever blocks
the loop. Only row events of the four watched tables in the configured
database are decoded (the library drops the rest by table id before
decoding); transaction boundaries (GTID, XID, COMMIT) and statements that
name the database (DDL, TRUNCATE) are read for every database, which costs
a few bytes each.

What the consumer gets from :meth:`BinlogSource.next` (or ``async for``):

- a :class:`ChangeBatch` per transaction, never part of one, and neighbours
  merged (:mod:`.coalesce`);
- a ``full_reread`` batch each time the stream (re)connects: the position is
  fixed *before* the batch is queued, so a full read after it misses nothing;
- a :class:`SourceLost` when the stream fails (disconnect, server restart,
  purged position, lost grants): logged once, then retried with exponential
  backoff while the consumer polls.

Resuming: the GTID of each committed transaction is kept per replication
domain, and a reconnect asks the server to continue after it. When that
position is gone (binlogs purged, ``RESET MASTER``), the next attempt starts
from the server's current position; the full re-read covers the gap.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

import pymysql
from pymysqlreplication import BinLogStreamReader
from pymysqlreplication.event import HeartbeatLogEvent, MariadbGtidEvent, QueryEvent, RotateEvent, XidEvent
from pymysqlreplication.row_event import DeleteRowsEvent, RowsEvent, UpdateRowsEvent, WriteRowsEvent

from ..config import DatabaseURL
from ..metrics import Metrics
from .batch import ChangeBatch, PendingChanges, Signal, SourceLost
from .coalesce import CoalescingQueue
from .rows import WATCHED_TABLES, ColumnNames, collect
from .visibility import BinlogCoordinate

log = logging.getLogger(__name__)

_EVENTS = [
    MariadbGtidEvent,
    XidEvent,
    QueryEvent,
    RotateEvent,
    HeartbeatLogEvent,
    WriteRowsEvent,
    UpdateRowsEvent,
    DeleteRowsEvent,
]
_GTID_STANDALONE = 0x01  # MariaDB GTID flag: the group is one statement with no COMMIT/XID after it
ER_MASTER_FATAL_ERROR_READING_BINLOG = 1236  # the requested GTID position is not in the binlog (any more)
_COLUMNS_SQL = (
    "SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS"
    " WHERE TABLE_SCHEMA = %s AND TABLE_NAME IN (%s, %s, %s, %s) ORDER BY TABLE_NAME, ORDINAL_POSITION"
)


class StreamEnded(Exception):
    """The replication connection ended (the server went away or closed the stream)."""


class _Stopped(Exception):
    """close() was called: leave the thread."""


class _QuietLibraryAdvice(logging.Filter):
    """Drop two library warnings this module handles: the advice to set
    binlog_row_metadata=FULL (rows.py copes without it) and "Re-request the
    connection" on every lost connection (logged here once per outage)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return "BINLOG_ROW_METADATA" not in message and "Re-request the connection" not in message


class BinlogSource:
    """Changes to the watched tables of ``url.database``, as they commit.

    Plain attributes for metrics and readiness: ``state`` (``starting``,
    ``streaming``, ``lost`` or ``stopped``), ``last_error``, ``position``
    (the GTID position a reconnect resumes from), ``events`` (row events
    read), ``transactions`` (commits seen, any database), ``lag_seconds``
    (now minus the newest commit event's time; the binlog stamps whole
    seconds), ``connects``, ``heartbeats`` (the server sends one every
    ``heartbeat`` seconds of silence; a connection that stays silent three
    times as long counts as lost). ``on_state`` is called on the loop with
    the new state and the reason. With ``metrics``, the ``pushsvc_binlog_*``
    series and ``pushsvc_change_source`` follow the same values.

    ``server_id`` identifies this reader to the server as a replica and must
    differ from every other replica's (the server drops the older of two
    connections with one id); the default is random in the upper half of the
    32-bit range, far from the small ids servers are usually given.
    """

    def __init__(
        self,
        url: DatabaseURL,
        *,
        metrics: Metrics | None = None,
        server_id: int | None = None,
        window: float = 0.005,
        backoff_initial: float = 0.25,
        backoff_max: float = 10.0,
        heartbeat: float = 5.0,
        connect_timeout: float = 2.0,
        position: str = "",
    ) -> None:
        self.url = url
        self.database = url.database
        self.metrics = metrics
        self.server_id = server_id if server_id is not None else random.randrange(1 << 30, 1 << 31)
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.heartbeat = heartbeat
        self.connect_timeout = connect_timeout
        self.on_state: Callable[[str, str | None], None] | None = None
        self.state = "stopped"
        self.last_error: str | None = None
        self.events = 0
        self.transactions = 0
        self.lag_seconds: float | None = None
        self.connects = 0
        self.heartbeats = 0
        self.connected_from = ""  # the position the current (or last) connection started at
        self._gtids: dict[int, str] = {}
        self.position = ""
        self._set_position(position)
        self._queue = CoalescingQueue(window)
        self._columns = ColumnNames()
        self._stop = threading.Event()
        self._sockets: weakref.WeakSet[socket.socket] = weakref.WeakSet()
        self._sockets_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # Reader-thread state.
        self._reader: BinLogStreamReader | None = None  # the connection being read, for its file and offset
        self._pending = PendingChanges()
        self._group: tuple[int, str] | None = None
        self._standalone = False
        self._streamed = False
        self._outage = False
        self._columns_tried: set[tuple[str, int]] = set()

    # ---- the loop's side ---------------------------------------------------------

    def start(self) -> None:
        """Start reading in a thread (call from the event loop that consumes the signals)."""
        assert self._thread is None, "already started"
        library_log = logging.getLogger("pymysqlreplication")
        if not any(isinstance(f, _QuietLibraryAdvice) for f in library_log.filters):
            library_log.addFilter(_QuietLibraryAdvice())
        self._loop = asyncio.get_running_loop()
        self.state = "starting"
        self._thread = threading.Thread(target=self._run, name=f"binlog-{self.database}", daemon=True)
        self._thread.start()

    async def close(self) -> None:
        """Stop the thread: wakes it from any blocking read, then waits for it."""
        self._stop.set()
        with self._sockets_lock:
            sockets = list(self._sockets)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)

    async def next(self) -> Signal:
        """The next :class:`ChangeBatch` or :class:`SourceLost`, in commit order."""
        item = await self._queue.get()
        if isinstance(item, ChangeBatch) and self.metrics is not None:
            self.metrics.binlog_batches.inc()
        return item

    def __aiter__(self) -> BinlogSource:
        return self

    async def __anext__(self) -> Signal:
        return await self.next()

    def _announce(self, state: str, reason: str | None, signal: Signal | None) -> None:
        """On the loop: queue the signal, then tell ``on_state``."""
        if signal is not None:
            self._queue.put(signal)
        if self.on_state is not None:
            self.on_state(state, reason)

    # ---- the reader thread ---------------------------------------------------------

    def _post(self, callback: Callable[..., None], *args: Any) -> None:
        if self._loop is None:
            return
        try:
            self._loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:
            pass  # the loop is closed: nobody is listening any more

    def _set_state(self, state: str, reason: str | None, signal: Signal | None = None) -> None:
        self.state = state
        if self.metrics is not None:
            streaming = state == "streaming"
            self.metrics.change_source.labels("binlog").set(1 if streaming else 0)
            self.metrics.change_source.labels("poll").set(0 if streaming else 1)
        self._post(self._announce, state, reason, signal)

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                self._stream()
            except _Stopped:
                break
            except Exception as exc:  # every failure, library bugs included: fall back, retry
                if self._stop.is_set():
                    break
                failures = 1 if self._streamed else failures + 1
                self._lost(exc)
                self._stop.wait(min(self.backoff_max, self.backoff_initial * 2 ** min(failures - 1, 16)))
        self._set_state("stopped", None)

    def _stream(self) -> None:
        """One replication connection, from connect to failure (or stop)."""
        self._streamed = False
        self._columns_tried = set()
        self._refresh(position=not self._gtids)
        self.connected_from = self.position
        reader = BinLogStreamReader(
            connection_settings=self._settings(read_timeout=self.heartbeat * 3),
            server_id=self.server_id,
            blocking=True,
            is_mariadb=True,
            auto_position=self.position,
            only_schemas=[self.database],
            only_tables=list(WATCHED_TABLES),
            only_events=_EVENTS,
            slave_heartbeat=self.heartbeat,
            pymysql_wrapper=self._connector(),
            enable_logging=False,
        )
        self._reader = reader
        try:
            for event in reader:
                if self._stop.is_set():
                    raise _Stopped
                self._handle(event)
        finally:
            self._reader = None
            reader.close()
        raise StreamEnded("the server ended the replication stream")

    def _handle(self, event: object) -> None:
        if not self._streamed:
            self._connected()
        if isinstance(event, RowsEvent):
            self.events += 1
            if self.metrics is not None:
                self.metrics.binlog_events.inc()
            self._ensure_columns(event)
            collect(event, self._columns, self._pending)
        elif isinstance(event, MariadbGtidEvent):
            if self._pending:
                self._commit(event.timestamp)  # a group with no end event: never lose what it named
            self._group = (event.domain_id, event.gtid)
            self._standalone = bool(event.flags & _GTID_STANDALONE)
        elif isinstance(event, XidEvent):
            self._commit(event.timestamp)
        elif isinstance(event, QueryEvent):
            self._query(event)
        elif isinstance(event, HeartbeatLogEvent):
            self.heartbeats += 1

    def _query(self, event: QueryEvent) -> None:
        text = event.query if isinstance(event.query, str) else bytes(event.query).decode("utf-8", "replace")
        word = text.lstrip()[:16].upper()
        if word.startswith("BEGIN"):
            return
        if word.startswith(("COMMIT", "ROLLBACK", "XA COMMIT", "XA ROLLBACK")):
            self._commit(event.timestamp)
            return
        schema = event.schema if isinstance(event.schema, str) else bytes(event.schema).decode("utf-8", "replace")
        if schema == self.database or self.database in text:
            # DDL, TRUNCATE, or DML a session logged as a statement: no rows to name.
            self._pending.full_reread = "a statement on the database (DDL, TRUNCATE or statement-logged DML)"
        if self._standalone:
            self._commit(event.timestamp)

    def _commit(self, timestamp: float) -> None:
        if self._group is not None:
            domain, gtid = self._group
            self._gtids[domain] = gtid
            self._set_position()
        self.transactions += 1
        if timestamp:
            self.lag_seconds = max(0.0, time.time() - timestamp)
            if self.metrics is not None:
                self.metrics.binlog_lag.set(self.lag_seconds)
        if self._pending:
            self._post(self._queue.put, self._pending.freeze(float(timestamp), self.position, self._end()))
        self._pending = PendingChanges()
        self._group = None
        self._standalone = False

    def _end(self) -> BinlogCoordinate | None:
        """The binlog file and offset just after the event being handled (the library follows rotations)."""
        reader = self._reader
        if reader is None or not reader.log_file or not reader.log_pos:
            return None
        return BinlogCoordinate(str(reader.log_file), int(reader.log_pos))

    def _connected(self) -> None:
        self._streamed = True
        self.connects += 1
        self._pending = PendingChanges()
        self._group = None
        recovered = self._outage
        self._outage = False
        self.last_error = None
        reason = "binlog stream reconnected" if self.connects > 1 else "binlog stream connected"
        if recovered:
            log.info("binlog stream is back (resuming after %s); reading everything once", self.position or "start")
        else:
            log.info("binlog stream connected to %s (from %s)", self.database, self.position or "start")
        self._set_state("streaming", reason, ChangeBatch(full_reread=reason, position=self.position))

    def _lost(self, exc: Exception) -> None:
        reason = _describe(exc)
        self.last_error = reason
        if isinstance(exc, pymysql.err.MySQLError) and exc.args and exc.args[0] == ER_MASTER_FATAL_ERROR_READING_BINLOG:
            self._gtids.clear()  # the position is gone: start from the current one; the full read covers the gap
            self._set_position()
        if self._outage:
            log.debug("binlog stream still unavailable: %s", reason)
            return
        self._outage = True
        expected = isinstance(exc, (pymysql.err.MySQLError, OSError, StreamEnded))
        log.warning(
            "binlog stream lost (%s); falling back to polling and retrying with backoff",
            reason,
            exc_info=None if expected else exc,
        )
        if self.metrics is not None:
            self.metrics.binlog_fallbacks.inc()
        self._set_state("lost", reason, SourceLost(reason))

    def _set_position(self, text: str | None = None) -> None:
        if text is not None:
            self._gtids = {}
            for gtid in filter(None, (part.strip() for part in text.split(","))):
                self._gtids[int(gtid.split("-", 1)[0])] = gtid
        self.position = ",".join(self._gtids[domain] for domain in sorted(self._gtids))

    def _ensure_columns(self, event: RowsEvent) -> None:
        """Learn column names again when a table's shape is new to us (once per shape and connection)."""
        if any(column.name for column in event.columns):
            return  # binlog_row_metadata=FULL: the event names its columns
        shape = (event.table, len(event.columns))
        if shape in self._columns_tried or self._columns.knows(*shape):
            return
        self._columns_tried.add(shape)
        self._refresh(position=False)

    # ---- connections -------------------------------------------------------------

    def _settings(self, **extra: Any) -> dict[str, Any]:
        return {**self.url.server_args(), "connect_timeout": self.connect_timeout, **extra}

    def _open(self, settings: dict[str, Any]) -> pymysql.Connection:
        """A pymysql connection on a socket close() can shut down from the loop's thread."""
        sock = socket.create_connection((settings["host"], settings["port"]), timeout=self.connect_timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._sockets_lock:
            if self._stop.is_set():
                sock.close()
                raise _Stopped
            self._sockets.add(sock)
        try:
            conn = pymysql.connect(**settings, defer_connect=True)
            conn.connect(sock)
        except BaseException:
            sock.close()
            raise
        return conn

    def _connector(self) -> Callable[..., pymysql.Connection]:
        """The library's connection factory: one stream and one control connection per reader.

        The library reconnects by itself after a lost connection, from the
        position it started at; a third connection is refused so that the
        loss surfaces here instead, with the resume position and the re-read.
        """
        opened = 0

        def connect(**settings: Any) -> pymysql.Connection:
            nonlocal opened
            opened += 1
            if self._stop.is_set():
                raise _Stopped
            if opened > 2:
                raise StreamEnded("the connection to the server was lost")
            if "db" in settings:  # the library's name for it; pymysql warns that it is deprecated
                settings["database"] = settings.pop("db")
            return self._open(settings)

        return connect

    def _refresh(self, *, position: bool) -> None:
        """Column names of the watched tables, and (``position``) the server's current GTID position."""
        conn = self._open(self._settings(read_timeout=self.heartbeat * 3))
        try:
            with conn.cursor() as cursor:
                cursor.execute(_COLUMNS_SQL, [self.database, *WATCHED_TABLES])
                self._columns.replace((str(table), str(column)) for table, column in cursor.fetchall())
                if position:
                    cursor.execute("SELECT @@GLOBAL.gtid_binlog_pos")
                    (position_text,) = cursor.fetchone() or (None,)
                    self._set_position(str(position_text or ""))
        finally:
            conn.close()


def _describe(exc: BaseException) -> str:
    """Error code and the server's message (it names the login, never its password)."""
    if isinstance(exc, pymysql.err.MySQLError) and len(exc.args) >= 2:
        return f"{exc.args[0]}: {exc.args[1]}"
    if isinstance(exc, StreamEnded):
        return str(exc)
    if isinstance(exc, OSError):
        return f"{type(exc).__name__}: {exc.strerror or exc}"
    return f"{type(exc).__name__}: {exc}"
