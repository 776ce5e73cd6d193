"""Hostile HTTP, seeded and bounded, against the production server (``httpserver.Runner``) and MariaDB.

A few thousand requests over raw sockets: odd paths and VM names, query
values (Unicode digits, huge numbers, tokens), headers (Authorization with
every JWT shape we could think of, request ids, If-None-Match, Host, Origin,
bodies on GETs), odd methods, and requests broken at the byte level. Part of
the run happens with the database cut. Asserted:

- no 5xx, except the documented database-failure body while the database is
  cut (and ``/readyz``'s 503 then);
- every complete request is answered;
- no ERROR log line, no log line with a raw control character, no token in
  any log line;
- the server still answers afterwards.

``PUSHSVC_FUZZ_SEED`` and ``PUSHSVC_FUZZ_REQUESTS`` change the run; the seed
is in every failure message. Longer runs belong in a script, not in CI.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import hashlib
import hmac
import json
import logging
import os
import random
import time
import urllib.parse
from dataclasses import dataclass, field

import orjson
import pytest

from pushsvc.app import create_app
from pushsvc.errors import RETRIEVE_FAILED

from ..helpers import SECRET, make_config, make_token, seed_database, served_as_run_py_serves

SEED = int(os.environ.get("PUSHSVC_FUZZ_SEED", "20261128"))
REQUESTS = int(os.environ.get("PUSHSVC_FUZZ_REQUESTS", "3000"))
CONCURRENCY = 16
READ_TIMEOUT = 10.0

# ---- vocabulary ------------------------------------------------------------------------------------

PATHS = [
    "/",
    "/api/v1/vm-contexts",
    "/api/v1/vm-contexts/",
    "/api/v1/vm-contexts/{vm}",
    "/api/v1/vm-contexts/{vm}/{junk}",
    "/api/v1/ws",
    "/api/v1",
    "/api/",
    "/healthz",
    "/readyz",
    "/metrics",
    "/static/app.js",
    "/static/{junk}",
    "/static/../pushsvc/config.py",
    "/static/%2e%2e/%2e%2e/etc/passwd",
    "/{junk}",
    "//api/v1/vm-contexts",
    "/api/v1/vm-contexts/%2F..%2F..%2F",
    "/api/v1/vm-contexts/{vm}?{query}",
    "/api/v1/vm-contexts?{query}",
    "/healthz?{query}",
]
JUNK = [
    "%00", "%0A", "%0D%0A", "%7F", "%C0%AF", "%FF%FE", "%E2%80%A8", "%E2%80%AE", "%F0%9F%92%A9", "%25", "%ZZ", "%",
    "..", "%2e%2e", "\\", ";", "'", "%22", "%3Cscript%3E", "OR%201=1--", "%20", "+", "~", "*", "%u0041", "a" * 300,
]  # fmt: skip
VM_NAMES = [
    "pgtest1", "pgtest2", "PGTEST1", "pgtest1 ", " pgtest1", "pgtest1\x00", "pgtest%", "pg_test1", "%", "_",
    "' OR '1'='1", "pgtest1'--", "pgtest1\"; DROP TABLE vm_replication_contexts; --", "名前", "ü", "\u202epgtest1",
    "a\u2028b", "💩", "\x7f", "\n", "\r\n", "/", "..", "\\", "\ud800", "a" * 255, "a" * 256, "b" * 4000,
]  # fmt: skip
QUERY_KEYS = ["limit", "offset", "status", "since", "token", "access_token", "id_token", "state", "t", "x", "LIMIT", ""]
QUERY_VALUES = [
    "1", "0", "-1", "1000", "1001", "2147483647", "2147483648", "²", "①", "٣", "۳", "１", "1_0", " 1", "1 ",
    "+1", "1.0", "1e3", "0x10", "", "9" * 30, "9" * 5000, "replicating", "REPLICATING", "discovered\x00", "failed,completed",
    "\n", "null", "[]", "{}",
]  # fmt: skip
METHODS = [b"GET"] * 14 + [b"HEAD", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"PATCH", b"TRACE", b"PROPFIND", b"FOO"]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _signed(header: object, payload: object, secret: str = SECRET) -> str:
    """A JWT with exactly these JSON parts, HMAC-SHA256-signed with ``secret`` (any header claims)."""
    raw = [part if isinstance(part, bytes) else json.dumps(part).encode() for part in (header, payload)]
    signing_input = _b64(raw[0]) + "." + _b64(raw[1])
    return signing_input + "." + _b64(hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest())


def token_shapes(now: int) -> list[str]:
    hs = {"alg": "HS256", "typ": "JWT"}
    later = now + 3600
    return [
        make_token(),
        make_token(ttl=-3600),
        make_token(nbf=later),
        make_token(exp=253402300800),
        make_token(exp=10**29),
        make_token(exp=1e30),
        make_token(exp=None),
        make_token(algorithm="HS512"),
        make_token(secret="another-secret-" + "y" * 40),
        _signed(hs, {"sub": "x", "exp": float("inf")}),
        _signed(hs, {"sub": "x", "exp": float("nan")}),
        _signed(hs, {"sub": "x", "exp": "tomorrow"}),
        _signed(hs, {"sub": "x", "exp": [later]}),
        _signed(hs, {"sub": {"nested": True}, "exp": later}),
        _signed(hs, {"sub": "x", "exp": later, "iat": -1e300}),
        _signed(hs, [1, 2, 3]),
        _signed(hs, b"[" * 3000),
        _signed(hs, b"not json"),
        _signed(hs, {"sub": "x", "exp": int("9" * 300)}),
        _signed({"alg": "none"}, {"sub": "x", "exp": later})[:-43],
        _signed({"alg": "RS256"}, {"sub": "x", "exp": later}),
        _signed({"alg": "HS256", "kid": "../../../../dev/null"}, {"sub": "x", "exp": later}),
        _signed({"alg": "HS256", "crit": ["exp"]}, {"sub": "x", "exp": later}),
        _signed(b"[" * 2000, {"sub": "x", "exp": later}),
        make_token()[:-5],
        make_token() + ".extra.parts",
        "..",
        "a.b.c",
        "eyJ" + "A" * 6000,
        "eyJhbGciOiJIUzI1NiJ9.%%%.!!!",
        "ünïcødé.tøkén.här",
    ]


# ---- requests --------------------------------------------------------------------------------------


@dataclass
class Probe:
    kind: str
    data: bytes
    complete: bool = True  # a whole request: the server must answer it
    path: str = "/"


def _encode(text: str, rng: random.Random) -> str:
    """Percent-encode ``text`` (usually), or leave it raw (sometimes)."""
    if rng.random() < 0.85:
        return urllib.parse.quote(text, safe="", errors="surrogatepass")
    return text


def _query(rng: random.Random, tokens: list[str]) -> str:
    pairs = []
    for _ in range(rng.choice([1, 1, 2, 3, 8])):
        key = rng.choice(QUERY_KEYS)
        value = rng.choice(tokens) if rng.random() < 0.15 else rng.choice(QUERY_VALUES)
        pairs.append(f"{_encode(key, rng)}={_encode(value, rng)}")
    return "&".join(pairs)


def _target(rng: random.Random, tokens: list[str]) -> str:
    path = rng.choice(PATHS)
    return (
        path.replace("{vm}", _encode(rng.choice(VM_NAMES), rng))
        .replace("{junk}", "".join(rng.choice(JUNK) for _ in range(rng.randint(1, 4))))
        .replace("{query}", _query(rng, tokens))
    )


def _headers(rng: random.Random, tokens: list[str]) -> list[tuple[bytes, bytes]]:
    headers: list[tuple[bytes, bytes]] = [(b"Host", b"localhost")]
    roll = rng.random()
    if roll < 0.55:
        headers.append((b"Authorization", b"Bearer " + rng.choice(tokens).encode("utf-8", "surrogatepass")))
    elif roll < 0.7:
        headers.append(
            (
                b"Authorization",
                rng.choice(
                    [b"Bearer", b"Bearer ", b"bearer  x", b"Basic dXNlcjpwYXNz", b"Token abc", b"Bearer \xff\xfe"]
                ),
            )
        )
    extra: list[tuple[bytes, bytes]] = [
        (b"X-Request-ID", rng.choice([b"ok-1", b"a" * 65, b"a b", b"\xe2\x80\xa8", b"<x>", make_token().encode()])),
        (b"If-None-Match", rng.choice([b"*", b'W/"x"', b'"' + b"a" * 7000 + b'"', b", , ,", b'"\xff"'])),
        (b"Origin", rng.choice([b"null", b"http://evil.example", b"http://localhost", b"\xff"])),
        (b"Host", rng.choice([b"", b"evil.example; script-src *", b"a" * 5000, b"[::1]:1"])),
        (b"Authorization", b"Bearer " + make_token().encode()),  # a second one
        (b"Content-Length", rng.choice([b"0", b"5", b"-1", b"99999999999999999999", b"abc"])),
        (b"Transfer-Encoding", rng.choice([b"chunked", b"gzip, chunked", b"identity"])),
        (b"Expect", b"100-continue"),
        (b"Upgrade", b"websocket"),
        (b"Connection", b"Upgrade"),
        (b"Sec-WebSocket-Version", rng.choice([b"13", b"99"])),
        (b"Accept", b"text/html"),
        (b"X-" + bytes(rng.choice(b"abcdefghij") for _ in range(8)), b"v" * rng.choice([1, 100, 8000])),
    ]
    headers.extend(rng.sample(extra, rng.randint(0, 4)))
    return headers


def well_formed(rng: random.Random, tokens: list[str]) -> Probe:
    method = rng.choice(METHODS)
    target = _target(rng, tokens)
    headers = _headers(rng, tokens)
    body = b""
    if any(name == b"Content-Length" for name, _ in headers) and rng.random() < 0.5:
        body = b"x" * 5
    lines = [method + b" " + target.encode("utf-8", "surrogatepass") + b" HTTP/1.1"]
    lines += [name + b": " + value for name, value in headers] + [b"Connection: close"]
    data = b"\r\n".join(lines) + b"\r\n\r\n" + body
    return Probe("request", data, path=target)


def broken(rng: random.Random, tokens: list[str]) -> Probe:
    """A well-formed request damaged at the byte level."""
    base = well_formed(rng, tokens)
    data = bytearray(base.data)
    mutation = rng.choice(["flip", "insert", "truncate", "repeat", "version", "fold", "garbage", "colonless"])
    if mutation == "flip":
        for _ in range(rng.randint(1, 5)):
            data[rng.randrange(len(data))] = rng.randrange(256)
    elif mutation == "insert":
        for _ in range(rng.randint(1, 3)):
            data[rng.randrange(len(data)) : 0] = rng.choice(
                [b"\x00", b"\r", b"\n", b"\r\n", b"\x7f", b" ", b":", b"\xff"]
            )
    elif mutation == "truncate":
        return Probe("truncated", bytes(data[: rng.randrange(1, len(data) - 2)]), complete=False, path=base.path)
    elif mutation == "repeat":
        data[data.index(b"\r\n") + 2 : 0] = b"X-Repeat: 1\r\n" * rng.choice([100, 200, 1000])
    elif mutation == "version":
        data = bytearray(
            data.replace(b"HTTP/1.1", rng.choice([b"HTTP/9.9", b"HTTP/1.", b"HTTP/1.1.1", b"HTXP/1.1", b""]), 1)
        )
    elif mutation == "fold":
        data[data.index(b"\r\n") + 2 : 0] = b"X-Folded: a\r\n  continued\r\n"
    elif mutation == "garbage":
        data = bytearray(rng.randbytes(rng.randint(1, 2000)) + b"\r\n\r\n")
    else:
        data[data.index(b"\r\n") + 2 : 0] = b"Header Without Colon\r\n"
    return Probe("broken", bytes(data), path=base.path)


# ---- the exchange ----------------------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


async def send(port: int, probe: Probe) -> Answer | None:
    """Send the probe; read one response (by Content-Length); None when the server closed without one."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(probe.data)
        if not probe.complete:
            writer.write_eof()
        async with asyncio.timeout(READ_TIMEOUT):
            status = 100
            while 100 <= status < 200:  # "100 Continue" first, then the answer
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionResetError):
                    return None
                lines = head.decode("latin-1").split("\r\n")
                status = int(lines[0].split(" ")[1])
            headers = {}
            for line in lines[1:]:
                if line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0"))
            no_body = probe.data.lstrip().startswith(b"HEAD ") or status in (204, 304)
            try:
                body = b"" if no_body else await reader.readexactly(length)
            except asyncio.IncompleteReadError as exc:
                body = b"<incomplete: " + exc.partial[:200] + b">"
                status = -status
            return Answer(status, headers, body)
    finally:
        writer.transport.abort()


@dataclass
class Tally:
    seed: int
    by_kind: collections.Counter[str] = field(default_factory=collections.Counter)
    by_status: collections.Counter[str] = field(default_factory=collections.Counter)
    problems: list[str] = field(default_factory=list)

    def check(self, probe: Probe, answer: Answer | None, database_cut: bool) -> None:
        self.by_kind[probe.kind] += 1
        if answer is None:
            self.by_status["no answer"] += 1
            if probe.kind == "request":
                self.problems.append(f"no answer to {probe.data[:200]!r}")
            return
        if answer.status < 0:
            self.problems.append(f"body cut short: {-answer.status} {answer.headers} for {probe.data[:300]!r}")
            return
        self.by_status[f"{answer.status // 100}xx"] += 1
        if answer.status >= 500 and not self._allowed_5xx(answer, database_cut, probe):
            self.problems.append(f"{answer.status} {answer.body[:200]!r} for {probe.data[:300]!r}")
        if answer.headers.get("content-type", "").startswith("application/json") and answer.body:
            try:
                orjson.loads(answer.body)
            except orjson.JSONDecodeError:
                self.problems.append(f"invalid JSON body {answer.body[:100]!r} for {probe.data[:200]!r}")

    @staticmethod
    def _allowed_5xx(answer: Answer, database_cut: bool, probe: Probe) -> bool:
        if not database_cut:
            return False
        if answer.status == 503 and probe.path.startswith("/readyz"):
            return True
        if answer.status == 500 and probe.data.lstrip().startswith(b"HEAD "):
            return answer.body == b""  # the same answer, without its body
        return answer.status == 500 and orjson.loads(answer.body or b"{}").get("error") == RETRIEVE_FAILED


# ---- the test --------------------------------------------------------------------------------------


@pytest.fixture
async def fuzz_server(database_url, db_proxy):
    """The seeded database behind a cuttable proxy, and the app served as run.py serves it."""
    await seed_database(database_url)
    proxy, url = db_proxy
    config = make_config(url, server={"keepalive_timeout": 1.0}, websocket={"auth_timeout": 0.5})
    async with served_as_run_py_serves(create_app(config)) as port:
        yield proxy, port


async def test_hostile_http(fuzz_server, caplog):
    proxy, port = fuzz_server
    rng = random.Random(SEED)
    tokens = token_shapes(int(time.time()))
    tally = Tally(SEED)
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(database_cut: bool) -> None:
        probe = broken(rng, tokens) if rng.random() < 0.3 else well_formed(rng, tokens)
        async with gate:
            answer = await send(port, probe)
        tally.check(probe, answer, database_cut)

    started = time.monotonic()
    with caplog.at_level(logging.INFO):
        await asyncio.gather(*(one(False) for _ in range(int(REQUESTS * 0.8))))
        await proxy.cut()
        await asyncio.gather(*(one(True) for _ in range(int(REQUESTS * 0.1))))
        await proxy.restore()
        await _ready(port)
        await asyncio.gather(*(one(False) for _ in range(REQUESTS - int(REQUESTS * 0.8) - int(REQUESTS * 0.1))))
        alive = [await send(port, well_formed_get(path)) for path in ("/healthz", "/readyz", "/api/v1/vm-contexts")]
    elapsed = time.monotonic() - started

    print(
        f"\nfuzz seed {SEED}: {sum(tally.by_kind.values())} requests in {elapsed:.1f} s;"
        f" kinds {dict(tally.by_kind)}; answers {dict(tally.by_status)}"
    )
    assert not tally.problems, f"seed {SEED}: {len(tally.problems)} problems, first: {tally.problems[:5]}"
    assert [answer and answer.status for answer in alive] == [200, 200, 200], f"seed {SEED}"
    assert orjson.loads(alive[2].body)["count"] == 2

    errors = [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]
    assert not errors, f"seed {SEED}: {errors[:5]}"
    lines = [record.getMessage() for record in caplog.records]
    assert all(line.isprintable() for line in lines), [line for line in lines if not line.isprintable()][:5]
    secrets = {token.split(".")[2] for token in tokens if token.count(".") == 2 and len(token.split(".")[2]) > 20}
    leaked = [line for line in lines for secret in secrets if secret in line]
    assert not leaked, leaked[:3]


def well_formed_get(path: str) -> Probe:
    token = make_token()
    data = f"GET {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    return Probe("check", data.encode(), path=path)


async def _ready(port: int) -> None:
    """After the database is back: /readyz answers 200 (the pool reconnects on the first request)."""
    for _ in range(50):
        answer = await send(port, well_formed_get("/readyz"))
        if answer is not None and answer.status == 200:
            return
        await asyncio.sleep(0.1)  # the pool's reconnect is not an event we can await from here
    raise AssertionError("the service did not become ready after the database came back")
