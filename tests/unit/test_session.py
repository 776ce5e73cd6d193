"""session.Session over a fake socket: the outbox, the fast path and the slow-client policy."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from pushsvc.config import WebSocketConfig
from pushsvc.metrics import Metrics
from pushsvc.protocol import TOO_MANY_ERRORS, TOO_SLOW
from pushsvc.session import Session
from pushsvc.wsframe import PONG, control_frame, text_frame

from .fakes import FakeSocket, FakeTransport

T = "vm-contexts"


def snapshot_of(topic: str, request_id: object) -> bytes:
    body = {"type": "snapshot", "topic": topic, "seq": 100}
    return orjson.dumps(body if request_id is None else {"id": request_id, **body})


@pytest.fixture
async def make():
    created: list[Session] = []

    def make(transport: FakeTransport | None = None, **limits) -> tuple[Session, FakeSocket, Metrics]:
        socket, metrics = FakeSocket(), Metrics()
        config = WebSocketConfig(**{"outbox_messages": 4, "max_subscriptions": 2, **limits})
        session = Session(
            socket,
            snapshot_of,
            config,
            metrics,
            abort=(transport.abort if transport else lambda: None),
            transport=transport,
        )
        session.topics.add(T)
        created.append(session)
        return session, socket, metrics

    yield make
    for session in created:
        await session.stop()


def delta(seq: int) -> bytes:
    return orjson.dumps({"type": "delta", "topic": T, "seq": seq})


def counter(metrics: Metrics, name: str) -> float:
    return metrics.registry.get_sample_value(name + "_total") or 0.0


async def test_idle_socket_gets_deltas_as_ready_made_frames(make):
    transport = FakeTransport()
    session, socket, metrics = make(transport)
    session.offer(T, delta(1))
    session.offer(T, delta(2))
    assert transport.written == [text_frame(delta(1)), text_frame(delta(2))]
    assert socket.frames == [] and counter(metrics, "pushsvc_messages_sent") == 2


async def test_a_socket_with_buffered_bytes_takes_the_queue_in_order(make):
    transport = FakeTransport()
    session, socket, _ = make(transport)
    transport.buffered = 10
    session.send(b'{"type":"pong"}')
    session.offer(T, delta(1))
    transport.buffered = 0
    session.offer(T, delta(2))  # something is still queued: no overtaking
    assert await socket.wait_frames(3) == [b'{"type":"pong"}', delta(1), delta(2)]
    assert transport.written == []


async def test_without_a_transport_everything_goes_through_the_writer(make):
    session, socket, _ = make(None)
    session.offer(T, delta(1))
    assert await socket.wait_frames(1) == [delta(1)]


async def test_a_client_that_falls_behind_gets_one_snapshot_instead_of_its_deltas(make):
    session, socket, metrics = make(None)
    socket.gate.clear()  # the client stops reading
    session.send(b'{"type":"pong"}')
    await socket.sending.wait()  # the writer is stuck on the pong
    for seq in range(1, 5):
        session.offer(T, delta(seq))  # fills the outbox (4)
    session.offer(T, delta(5))  # overflow: the queued deltas become one snapshot marker
    session.offer(T, delta(6))  # already covered by that snapshot
    assert counter(metrics, "pushsvc_resyncs") == 1
    socket.gate.set()
    assert await socket.wait_frames(2) == [b'{"type":"pong"}', snapshot_of(T, None)]
    session.offer(T, delta(101))  # the snapshot was seq 100: deltas flow again
    assert (await socket.wait_frames(3))[2] == delta(101)
    assert not session.closing


async def test_a_queued_snapshot_answers_with_its_request_id(make):
    session, socket, _ = make(None)
    session.offer_snapshot(T, "r")
    assert orjson.loads((await socket.wait_frames(1))[0])["id"] == "r"


async def test_forget_drops_what_is_queued_for_a_topic(make):
    session, socket, _ = make(None)
    socket.gate.clear()
    session.send(b"1")
    await socket.sending.wait()
    session.offer(T, delta(1))
    session.offer_snapshot(T, None)
    session.forget(T)
    session.send(b"2")
    socket.gate.set()
    assert await socket.wait_frames(2) == [b"1", b"2"]


async def test_an_outbox_past_its_hard_limit_closes_1013_and_drops_the_queue(make):
    session, socket, metrics = make(None, slow_close_after=3600)
    socket.gate.clear()
    session.send(b"stuck")
    await socket.sending.wait()
    hard_limit = 2 * 4 + 2
    for _ in range(hard_limit + 1):
        session.send(b"queued")
    assert session.closing
    await session.closed()
    assert socket.close_code == TOO_SLOW.code and socket.close_reason == b"client too slow"
    assert socket.frames == [] and counter(metrics, "pushsvc_slow_closes") == 1


async def test_a_writer_stuck_too_long_with_an_overflowing_outbox_closes_1013(make):
    session, socket, _ = make(None, slow_close_after=0)
    socket.gate.clear()
    session.send(b"stuck")
    await socket.sending.wait()
    for seq in range(1, 6):
        session.offer(T, delta(seq))
    assert session.closing
    await session.closed()
    assert socket.close_code == 1013


async def test_other_closes_flush_the_queue_first(make):
    session, socket, _ = make(None)
    session.send(b'{"type":"error"}')
    session.close(TOO_MANY_ERRORS)
    session.send(b"after close: dropped")
    await session.closed()
    assert socket.frames == [b'{"type":"error"}']
    assert (socket.close_code, socket.close_reason) == (1008, b"too many bad messages")


async def test_close_does_not_wait_on_a_client_forever(make, monkeypatch):
    monkeypatch.setattr("pushsvc.session._CLOSE_TIMEOUT", 0.05)
    session, socket, _ = make(None)
    socket.gate.clear()
    session.send(b"never read")
    await socket.sending.wait()
    session.close(TOO_MANY_ERRORS)
    await session.closed()
    assert socket.close_code == 1008 and socket.frames == []


async def test_token_expiry_closes_4002(make):
    session, socket, _ = make(None)
    session.arm_expiry(0)
    async with asyncio.timeout(5):
        await socket.closed_event.wait()
    assert (socket.close_code, socket.close_reason) == (4002, b"token expired")


async def test_stop_ends_the_writer(make):
    session, socket, _ = make(None)
    socket.gate.clear()
    session.send(b"x")
    await socket.sending.wait()
    writer = session._writer
    await session.stop()
    assert writer is not None and writer.done()
    assert session._writer is None  # a finished task holds its traceback, whose frames hold the session
    session.offer(T, delta(1))  # after stop: ignored
    assert socket.frames == []


# -- the byte bound and the watchdog (issue 8, item 12) ----------------------------


async def test_queued_bytes_over_the_bound_become_one_snapshot(make):
    session, socket, metrics = make(None, outbox_messages=64, max_outbound_bytes=1000)
    socket.gate.clear()
    session.send(b"stuck")
    await socket.sending.wait()
    big = orjson.dumps({"type": "delta", "topic": T, "pad": "x" * 400})
    session.offer(T, big)
    session.offer(T, big)
    assert session.outbound_bytes() == 5 + 2 * len(big) - 5  # "stuck" is in flight, not queued
    session.offer(T, big)  # a third would pass 1000 bytes: the deltas become one snapshot marker
    assert counter(metrics, "pushsvc_resyncs") == 1 and session.outbound_bytes() == 0
    socket.gate.set()
    assert await socket.wait_frames(2) == [b"stuck", snapshot_of(T, None)]


async def test_the_transports_buffer_counts_toward_the_bound(make):
    transport = FakeTransport()
    session, socket, metrics = make(transport, max_outbound_bytes=1000)
    transport.buffered = 990  # the kernel took nothing of the last frames: they wait in the transport
    session.offer(T, delta(1))
    assert session.outbound_bytes() > 1000 - len(delta(1)) and counter(metrics, "pushsvc_resyncs") == 1


async def test_a_client_over_the_bound_is_closed_1013_by_the_watchdog_with_nothing_new_sent(make):
    transport = FakeTransport()
    session, socket, metrics = make(transport, max_outbound_bytes=1000, slow_close_after=0.05)
    transport.buffered = 5000  # one big frame the client does not read
    session.offer(T, delta(1))  # the only offer: no later offer would notice
    async with asyncio.timeout(5):
        await socket.closed_event.wait()
    assert socket.close_code == 1013 and counter(metrics, "pushsvc_slow_closes") == 1


async def test_a_client_back_under_the_bound_is_not_closed(make):
    transport = FakeTransport()
    session, socket, _ = make(transport, max_outbound_bytes=1000, slow_close_after=0.05)
    transport.buffered = 5000
    session.offer(T, delta(1))
    transport.buffered = 0  # it read it all before the watchdog looked
    session.send(b"ping")
    await socket.wait_frames(2)
    await asyncio.sleep(0.1)  # past slow_close_after: the watchdog has looked (the behaviour under test)
    assert not session.closing


async def test_one_send_blocked_for_slow_close_after_closes_1013_without_any_overflow(make):
    session, socket, _ = make(None, slow_close_after=0.05)
    socket.gate.clear()
    session.send(b"one frame the client never takes")
    async with asyncio.timeout(5):
        await socket.closed_event.wait()
    assert socket.close_code == 1013


async def test_too_slow_cuts_the_connection_when_the_close_frame_cannot_be_written(make, monkeypatch):
    monkeypatch.setattr("pushsvc.session._CLOSE_TIMEOUT", 0.05)
    transport = FakeTransport()
    session, socket, _ = make(transport, slow_close_after=0.05)

    async def never_written(**_):
        await asyncio.Event().wait()

    socket.close = never_written  # the close frame waits behind what the client does not read
    transport.buffered = 10**7
    session.offer(T, delta(1))
    async with asyncio.timeout(5):
        await transport.aborted_event.wait()
    assert session.closing


# -- pings --------------------------------------------------------------------------


async def test_a_ping_on_an_idle_socket_is_answered_at_once(make):
    transport = FakeTransport()
    session, socket, _ = make(transport)
    session.pong(b"hb")
    assert transport.written == [control_frame(PONG, b"hb")] and socket.pongs == []


async def test_pings_while_the_client_does_not_read_get_one_pong_for_the_latest(make):
    session, socket, _ = make(None)
    socket.gate.clear()
    session.send(b"stuck")
    await socket.sending.wait()
    for index in range(1000):
        session.pong(str(index).encode())
    session.send(b"after")
    socket.gate.set()
    await socket.wait_frames(2)
    assert socket.pongs == [b"999"] and socket.frames == [b"stuck", b"after"]


async def test_stop_leaves_no_task_timer_or_queue(make):
    transport = FakeTransport()
    session, socket, _ = make(transport, slow_close_after=30)
    socket.gate.clear()
    transport.buffered = 10**7
    session.arm_expiry(3600)
    session.send(b"x")
    session.offer(T, delta(1))
    await session.stop()
    assert (session._writer, session._closer, session._expiry, session._watchdog) == (None, None, None, None)
    assert session.outbound_bytes() == 10**7 and not session._outbox
