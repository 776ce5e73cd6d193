"""session.Session over a fake socket: the outbox, the fast path and the slow-client policy."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from pushsvc.config import WebSocketConfig
from pushsvc.metrics import Metrics
from pushsvc.protocol import TOO_MANY_ERRORS, TOO_SLOW
from pushsvc.session import Session
from pushsvc.wsframe import text_frame

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
    await session.stop()
    assert session._writer.done()
    session.offer(T, delta(1))  # after stop: ignored
    assert socket.frames == []
