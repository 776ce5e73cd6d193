"""Hostile WebSocket frames, seeded and bounded, against the production server (``httpserver.Runner``) and MariaDB.

A few thousand frames over several hundred connections, from a raw-socket
client that can send anything: auth shapes before and after the welcome,
pings before auth, bad JSON, wrong types, huge ids, bad topics and ``since``
values, binary and non-UTF-8 frames, messages at and over the size limit,
unmasked, fragmented and interleaved frames, reserved opcodes and bits,
oversized control frames, lying lengths, close frames with every kind of
code, and bursts. Asserted:

- every connection ends with a close frame from the server, with a code from
  the documented table, and the one the first fatal frame calls for (or 1008
  when the client piled up errors first); none is dropped, none hangs;
- no ERROR log line, none with a raw control character;
- afterwards every server-side socket is gone, and the server still answers
  (a fresh client gets its snapshot, REST answers).

``PUSHSVC_FUZZ_SEED`` and ``PUSHSVC_FUZZ_WS_CONNECTIONS`` change the run; the
seed is in every failure message. Longer runs belong in a script, not in CI.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import os
import random
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from aiohttp import WSCloseCode, web

from pushsvc.app import create_app
from pushsvc.keys import hub_key, metrics_key

from ..helpers import make_config, make_token, seed_database, served_as_run_py_serves
from ..rawws import BINARY, CLOSE, CONTINUATION, PING, PONG, TEXT, RawWebSocket, frame, text

SEED = int(os.environ.get("PUSHSVC_FUZZ_SEED", "20261128"))
CONNECTIONS = int(os.environ.get("PUSHSVC_FUZZ_WS_CONNECTIONS", "600"))
CONCURRENCY = 24
LIMIT = 65536  # websocket.max_message_bytes (the default)
READ_TIMEOUT = 10.0

# The documented close codes (docs/protocol.md); 1011 would mean a bug of ours, so it is not here.
DOCUMENTED = {1000, 1001, 1002, 1007, 1008, 1009, 1013, 4001, 4002}

# ---- vocabulary ------------------------------------------------------------------------------------

IDS = [1, 0, -1, 2**31, 10**30, -(10**30), "a", "", "x" * 5000, "名前", "\u0000", 1.5, True, None, [1], {"a": 1}]
TOPICS = [
    "vm-contexts", "vm-context/pgtest1", "vm-context/pgtest2", "vm-context/nobody", "vm-context/", "vm-context",
    "vm-context/" + "a" * 255, "vm-context/" + "a" * 256, "VM-CONTEXTS", "vm-contexts ", "vm-context/../x",
    "vm-context/\u202epgtest1", "vm-context/\x00", "vm-context/💩", "", 5, None, [], {"t": 1}, True,
]  # fmt: skip
SINCES = [
    None, {"epoch": "e", "seq": 0}, {"epoch": "e", "seq": -1}, {"epoch": "e", "seq": 10**30}, {"epoch": "e", "seq": 1.5},
    {"epoch": "e", "seq": True}, {"epoch": "e", "seq": "1"}, {"epoch": 5, "seq": 1}, {"epoch": "x" * 3000, "seq": 1},
    {"seq": 1}, {}, [], "since", 0, {"epoch": "{epoch}", "seq": 0}, {"epoch": "{epoch}", "seq": 10**6},
]  # fmt: skip
TOKENS = [None, 5, [], {}, "", "garbage", "a.b.c", "eyJ" + "A" * 3000]
BAD_JSON = [
    b"{", b"nul", b"[1, 2]", b'"text"', b"1e999999", b"[" * 5000, b'{"type": "ping"', b"\xef\xbb\xbf{}", b"{'type': 1}",
    b'{"type": "ping", "type": "dance"}', b"NaN", b"", b" ", b'{"type": "ping"}' * 2, b"\x00",
]  # fmt: skip
TYPES = ["dance", "PING", "", 5, None, [], "subscribe ", "welcome", "snapshot", "x" * 500]


@dataclass
class Step:
    """Bytes to send; ``fatal`` is the close code the server must answer with (None: the socket stays)."""

    kind: str
    data: bytes
    fatal: int | None = None


def _message(rng: random.Random, epoch: str) -> bytes:
    """A JSON message with plausible and implausible members."""
    roll = rng.random()
    message: dict = {}
    if roll < 0.35:
        since = rng.choice(SINCES)
        if isinstance(since, dict) and since.get("epoch") == "{epoch}":
            since = {**since, "epoch": epoch}
        message = {"type": "subscribe", "topic": rng.choice(TOPICS)}
        if since is not None or rng.random() < 0.2:
            message["since"] = since
    elif roll < 0.5:
        message = {"type": "unsubscribe", "topic": rng.choice(TOPICS)}
    elif roll < 0.7:
        message = {"type": "ping"}
    else:
        message = {"type": rng.choice(TYPES)}
    if rng.random() < 0.5:
        message["id"] = rng.choice(IDS)
    if rng.random() < 0.1:
        message["extra"] = {"nested": [1, {"deep": "x" * rng.choice([1, 100, 10000])}]}
    return json.dumps(message).encode()  # not orjson: ids past 64 bits are part of the point


def _ping_of_size(size: int) -> bytes:
    head, tail = b'{"type":"ping","id":"', b'"}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


def _fragments(data: bytes, rng: random.Random, opcode: int = TEXT) -> bytes:
    cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(1, 3))))
    pieces = [data[start:end] for start, end in zip([0, *cuts], [*cuts, len(data)])]
    out = b""
    for index, piece in enumerate(pieces):
        out += frame(opcode if index == 0 else CONTINUATION, piece, fin=index == len(pieces) - 1)
        if rng.random() < 0.3:
            out += frame(PING, b"between fragments")
    return out


def after_auth(rng: random.Random, epoch: str) -> Step:
    """One frame (or a few bytes' worth of frames) for a welcomed socket."""
    kinds: list[tuple[float, Callable[[], Step]]] = [
        (30, lambda: Step("message", text(_message(rng, epoch)))),
        (6, lambda: Step("bad json", text(rng.choice(BAD_JSON)))),
        (4, lambda: Step("refresh", text(json.dumps({"type": "auth", "token": make_token(), "id": rng.choice(IDS)})))),
        (2, lambda: Step("bad refresh", text({"type": "auth", "token": rng.choice(TOKENS)}), 4001)),
        (1, lambda: Step("expired refresh", text({"type": "auth", "token": make_token(ttl=-60)}), 4001)),
        (4, lambda: Step("binary", frame(BINARY, rng.randbytes(rng.randint(0, 300))))),
        (2, lambda: Step("not utf-8", frame(TEXT, b'{"type": "ping", "id": "\xff\xfe"}'), 1007)),
        (2, lambda: Step("exactly the limit", text(_ping_of_size(LIMIT)))),
        (2, lambda: Step("over the limit", text(_ping_of_size(rng.choice([LIMIT + 1, 70000, 200000]))), 1009)),
        (1, lambda: Step("lying length", frame(TEXT, b"x" * 10, length=rng.choice([2**62, 2**63, 2**64 - 1])), 1009)),
        (3, lambda: Step("unmasked", frame(rng.choice([TEXT, PING, BINARY]), b'{"type":"ping"}', mask=False), 1002)),
        (4, lambda: Step("fragmented", _fragments(_message(rng, epoch), rng))),
        (1, lambda: Step("fragments over the limit", _fragments(_ping_of_size(LIMIT + 10), rng), 1009)),
        (1, lambda: Step("continuation first", frame(CONTINUATION, b"{}"), 1002)),
        (1, lambda: Step("text inside a message", frame(TEXT, b"{", fin=False) + frame(TEXT, b"}"), 1002)),
        (4, lambda: Step("ping", frame(PING, rng.randbytes(rng.randint(0, 125))))),
        (2, lambda: Step("pong", frame(PONG, rng.randbytes(rng.randint(0, 125))))),
        (1, lambda: Step("long ping", frame(PING, b"p" * rng.choice([126, 1000])), 1002)),
        (1, lambda: Step("fragmented ping", frame(PING, b"p", fin=False), 1002)),
        (1, lambda: Step("reserved opcode", frame(rng.choice([3, 4, 5, 6, 7, 11, 12, 15]), b"x"), 1002)),
        (1, lambda: Step("reserved bits", frame(TEXT, b"{}", rsv=rng.choice([1, 2, 4])), 1002)),
        (2, lambda: Step("close", _close(rng), _close_answer)),
        (2, lambda: Step("burst", b"".join(text(_message(rng, epoch)) for _ in range(rng.choice([30, 60]))))),
    ]
    weights = [weight for weight, _ in kinds]
    step = rng.choices([make for _, make in kinds], weights)[0]()
    if step.fatal is _close_answer:
        step.fatal = _close_answer(step.data)
    return step


def _close(rng: random.Random) -> bytes:
    roll = rng.random()
    if roll < 0.5:
        code = rng.choice([1000, 1001, 1003, 1008, 1011, 3000, 4000, 4999])
        return frame(CLOSE, struct.pack("!H", code) + rng.choice([b"", b"bye", "ünïcødé".encode()]))
    if roll < 0.8:
        return frame(CLOSE, struct.pack("!H", rng.choice([0, 999, 1004, 1005, 1006, 1015, 2999])))
    if roll < 0.9:
        return frame(CLOSE, b"\x03")  # a one-byte payload
    return frame(CLOSE, struct.pack("!H", 1000) + b"\xff\xfe")  # a reason that is not UTF-8


def _close_answer(data: bytes) -> int:
    """What the server answers to a client's close frame (read back from its masked payload)."""
    payload = _unmask(data)
    if len(payload) == 1:
        return 1002
    code = struct.unpack("!H", payload[:2])[0]
    if code < 3000 and code not in {int(known) for known in WSCloseCode}:  # aiohttp's reader decides
        return 1002
    try:
        payload[2:].decode()
    except UnicodeDecodeError:
        return 1007
    return 1000


def count_frames(data: bytes) -> int:
    """How many frames ``data`` holds (following the headers' lengths, as a server reads them)."""
    count, pos = 0, 0
    while pos + 2 <= len(data):
        length, pos = data[pos + 1] & 0x7F, pos + 2
        masked = data[pos - 1] & 0x80
        if length == 126:
            length, pos = int.from_bytes(data[pos : pos + 2], "big"), pos + 2
        elif length == 127:
            length, pos = int.from_bytes(data[pos : pos + 8], "big"), pos + 8
        pos += (4 if masked else 0) + length
        count += 1
    return count


def _unmask(data: bytes) -> bytes:
    key, masked = data[2:6], data[6:]
    return bytes(byte ^ key[index % 4] for index, byte in enumerate(masked))


@dataclass
class Plan:
    """One connection: the upgrade's headers, then steps."""

    headers: dict[str, str] | None
    steps: list[Step] = field(default_factory=list)
    authenticated: bool = True  # whether the socket gets a welcome before the steps that follow auth

    @property
    def fatal(self) -> int | None:
        return next((step.fatal for step in self.steps if step.fatal is not None), None)


def plan(rng: random.Random, epoch: str) -> Plan:
    roll = rng.random()
    bearer = {"Authorization": f"Bearer {make_token()}"}
    if roll < 0.4:
        connection = Plan(bearer)
    elif roll < 0.6:  # a first auth frame, maybe after protocol pings
        connection = Plan(None)
        connection.steps += [Step("ping before auth", frame(PING, b"early")) for _ in range(rng.choice([0, 0, 1, 5]))]
        connection.steps.append(
            Step("auth", text(json.dumps({"type": "auth", "token": make_token(), "id": rng.choice(IDS)})))
        )
    elif roll < 0.7:
        header = rng.choice(["Bearer garbage", "Basic dXNlcjpwYXNz", "Bearer", "bearer " + make_token(ttl=-60)])
        return Plan({"Authorization": header}, [Step("bad header", b"", 4001)], authenticated=False)
    elif roll < 0.85:
        first = rng.choice(
            [
                Step("bad auth", text({"type": "auth", "token": rng.choice(TOKENS)}), 4001),
                Step("auth shape", text({"type": "auth", "token": make_token(), "id": [1]}), None),
                Step("other first", text(_message(rng, epoch)), 4001),
                Step("bad json first", text(rng.choice(BAD_JSON)), 4001),
                Step("binary first", frame(BINARY, b'{"type":"auth"}'), 4001),
                Step("not utf-8 first", frame(TEXT, b"\xff"), 1007),
                Step("oversized first", text(_ping_of_size(200000)), 1009),
                Step("unmasked first", text({"type": "auth", "token": make_token()}, mask=False), 1002),
                Step("close first", _close(rng), None),
            ]
        )
        if first.kind == "close first":
            first.fatal = _close_answer(first.data)
        if first.kind == "auth shape":  # a bad id is ignored before auth: this one is welcomed
            return Plan(None, [first])
        return Plan(None, [first], authenticated=False)
    else:  # nothing but pings or pongs until the auth deadline
        control = rng.choice([PING, PONG])
        steps = [Step("silent", b"", 4001)] + [Step("control before auth", frame(control, b"hi")) for _ in range(3)]
        return Plan(None, steps, authenticated=False)
    connection.steps += [after_auth(rng, epoch) for _ in range(rng.randint(2, 14))]
    return connection


# ---- the exchange ----------------------------------------------------------------------------------


@dataclass
class Tally:
    seed: int
    connections: int = 0
    frames: int = 0
    bytes: int = 0
    by_kind: collections.Counter[str] = field(default_factory=collections.Counter)
    by_close: collections.Counter[str] = field(default_factory=collections.Counter)
    problems: list[str] = field(default_factory=list)


async def run_plan(port: int, connection: Plan, tally: Tally) -> None:
    ws = await RawWebSocket.connect(port, headers=connection.headers)
    try:
        for step in connection.steps:
            tally.by_kind[step.kind] += 1
            if step.data:
                tally.frames += count_frames(step.data)
                tally.bytes += len(step.data)
                await ws.send(step.data)  # may fail once the server has closed: what it answered is read below
        fatal = connection.fatal
        if fatal is None and not any(step.kind == "silent" for step in connection.steps):
            await ws.send(frame(CLOSE, struct.pack("!H", 1000)))
            fatal = 1000
        ending = await ws.read_until_closed(timeout=READ_TIMEOUT)
    finally:
        ws.close()
    tally.connections += 1
    tally.by_close[str(ending.close_code) if ending.close_code else "none"] += 1
    where = f"steps {[step.kind for step in connection.steps]}, closed {ending.close_code}, got {ending.messages[:3]}"
    if ending.timed_out:
        tally.problems.append(f"no end within {READ_TIMEOUT} s: {where}")
    elif ending.close_code is None:
        tally.problems.append(f"ended without a close frame ({'reset' if ending.reset else 'EOF'}): {where}")
    elif ending.close_code not in DOCUMENTED:
        tally.problems.append(f"undocumented close code {ending.close_code}: {where}")
    elif ending.close_code not in {fatal, 1008}:
        tally.problems.append(f"closed {ending.close_code}, expected {fatal}: {where}")
    welcomed = any(message.get("type") == "welcome" for message in ending.messages)
    # aiohttp's own closes (1002, 1007, 1009) may overtake a welcome still queued.
    expect_welcome = connection.authenticated and connection.fatal not in (1002, 1007, 1009)
    if expect_welcome and not welcomed and ending.close_code != 1008:
        tally.problems.append(f"no welcome: {where}")


@pytest.fixture
async def fuzz_server(database_url):
    """The seeded database and the app served as run.py serves it."""
    await seed_database(database_url)
    app = create_app(make_config(database_url, websocket={"auth_timeout": 0.5}))
    async with served_as_run_py_serves(app) as port:
        yield app, port


async def test_hostile_websocket_frames(fuzz_server, caplog):
    app, port = fuzz_server
    rng = random.Random(SEED)
    epoch = app[hub_key].epoch
    plans = [plan(rng, epoch) for _ in range(CONNECTIONS)]
    tally = Tally(SEED)
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(connection: Plan) -> None:
        async with gate:
            await run_plan(port, connection, tally)

    started = time.monotonic()
    with caplog.at_level(logging.INFO):
        await asyncio.gather(*(one(connection) for connection in plans))
        await _all_sockets_released(app)
        alive = await _alive(port)
    elapsed = time.monotonic() - started

    print(
        f"\nws fuzz seed {SEED}: {tally.connections} connections, {tally.frames} frames"
        f" ({tally.bytes / 1e6:.1f} MB) in {elapsed:.1f} s; closes {dict(sorted(tally.by_close.items()))};"
        f" kinds {dict(tally.by_kind.most_common())}"
    )
    assert not tally.problems, f"seed {SEED}: {len(tally.problems)} problems, first: {tally.problems[:5]}"
    assert alive, f"seed {SEED}: the server did not answer a fresh client afterwards"
    errors = [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]
    assert not errors, f"seed {SEED}: {errors[:5]}"
    lines = [record.getMessage() for record in caplog.records]
    assert all(line.isprintable() for line in lines), [line for line in lines if not line.isprintable()][:5]


async def _all_sockets_released(app: web.Application) -> None:
    """Every server-side socket is gone (the last lingering closes take up to the grace)."""
    registry = app[metrics_key].registry
    async with asyncio.timeout(10):
        while registry.get_sample_value("pushsvc_websockets"):
            await asyncio.sleep(0.05)  # handlers end on their own; there is no event to await from here


async def _alive(port: int) -> bool:
    ws = await RawWebSocket.connect(port, headers={"Authorization": f"Bearer {make_token()}"})
    try:
        welcome = await ws.next_message()
        await ws.send(text({"type": "subscribe", "topic": "vm-contexts", "id": "check"}))
        snapshot = await ws.next_message()
        return (
            welcome["type"] == "welcome"
            and snapshot["type"] == "snapshot"
            and sorted(snapshot["data"]["vm_contexts"]) == ["pgtest1", "pgtest2"]
        )
    finally:
        ws.close()
