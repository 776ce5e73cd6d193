"""pushsvc behind Debian's nginx, with the exact configuration docs/deployment.md shows.

The nginx block is read out of the document (between its marker comments);
only the ports, the certificate paths and ``proxy_read_timeout`` are
replaced, so the document cannot drift from what is tested. Each nginx is a
private instance (its own prefix, temp paths, pid file and log, on a free
port); the system's nginx is never touched. Clients connect from 127.0.0.2
over TLS, so the address pushsvc logs is visibly the client's, not nginx's
(127.0.0.1, the trusted proxy).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import logging
import re
import shutil
import signal
import ssl
import time
from pathlib import Path

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pushsvc.app import create_app
from pushsvc.demo.seed import SEED_CURRENT_JOB, ms

from ..helpers import make_config, rest_dashboard
from ..serverprocess import free_port
from ..wsclient import LiveClient

DEPLOYMENT = Path(__file__).resolve().parents[2] / "docs" / "deployment.md"
NGINX = shutil.which("nginx", path="/usr/sbin:/usr/local/sbin:/usr/bin")
CLIENT_ADDRESS = "127.0.0.2"
PROXY_READ_TIMEOUT = 2.0

pytestmark = pytest.mark.skipif(NGINX is None, reason="Debian's nginx is not installed (.ci/run installs it)")


def documented_config() -> str:
    """The nginx block of docs/deployment.md, as written there."""
    text = DEPLOYMENT.read_text()
    match = re.search(r"<!-- nginx-config: begin[^>]*-->\s*```nginx\n(.*?)```\s*<!-- nginx-config: end -->", text, re.S)
    assert match, "docs/deployment.md lost its nginx-config markers"
    return match.group(1)


def substitute(config: str, replacements: dict[str, str]) -> str:
    """Replace each documented value, which must appear exactly once."""
    for documented, tested in replacements.items():
        assert config.count(documented) == 1, f"docs/deployment.md: expected {documented!r} exactly once"
        config = config.replace(documented, tested)
    return config


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key (the clients trust exactly this certificate)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


class Nginx:
    """A private nginx in front of ``upstream_port``, serving the documented block."""

    def __init__(self, prefix: Path, upstream_port: int, read_timeout: float) -> None:
        self.prefix = prefix
        self.port = free_port()
        self.cert, key = self_signed(prefix)
        block = substitute(
            documented_config(),
            {
                "listen 443 ssl;": f"listen 127.0.0.1:{self.port} ssl;",
                "server 127.0.0.1:8082;": f"server 127.0.0.1:{upstream_port};",
                "/etc/ssl/push.example.com/fullchain.pem": str(self.cert),
                "/etc/ssl/push.example.com/privkey.pem": str(key),
                "proxy_read_timeout 60s;": f"proxy_read_timeout {read_timeout:g}s;",
            },
        )
        temp = prefix / "temp"
        temp.mkdir()
        paths = "\n".join(
            f"    {kind}_temp_path {temp / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        self.conf = prefix / "nginx.conf"
        self.conf.write_text(
            "worker_processes 1;\n"
            "events { worker_connections 64; }\n"
            "http {\n"
            f"    access_log {prefix / 'access.log'};\n"
            f"{paths}\n"
            f"{block}\n"
            "}\n"
        )
        self.process: asyncio.subprocess.Process | None = None

    @property
    def origin(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            NGINX,
            "-e",
            "stderr",
            "-p",
            str(self.prefix),
            "-c",
            str(self.conf),
            "-g",
            f"daemon off; pid {self.prefix / 'nginx.pid'}; error_log stderr;",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        async with asyncio.timeout(10):
            while True:  # nginx says nothing when it is ready: ready is when it accepts
                if self.process.returncode is not None:
                    raise AssertionError(f"nginx exited: {(await self.process.stderr.read()).decode()}")
                try:
                    _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                except OSError:
                    await asyncio.sleep(0.02)
                    continue
                writer.close()
                await writer.wait_closed()
                return

    async def stop(self) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        self.process.send_signal(signal.SIGQUIT)  # graceful: lets workers finish
        try:
            async with asyncio.timeout(10):
                await self.process.wait()
        except TimeoutError:
            self.process.kill()
            await self.process.wait()


class Through:
    """A client of one origin, as the tests' helpers expect (``get``, ``ws_connect`` with paths)."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session, self.base = session, base

    def get(self, path: str, **kwargs):
        return self.session.get(self.base + path, **kwargs)

    def ws_connect(self, path: str, **kwargs):
        return self.session.ws_connect(self.base + path, **kwargs)


@pytest.fixture
async def start_behind_nginx(aiohttp_server, database_url, tmp_path, contracts):
    """``await start(heartbeat)``: pushsvc (poller running, nginx trusted) behind a private nginx whose
    ``proxy_read_timeout`` is 2 s; returns (nginx, client from 127.0.0.2 over TLS)."""
    started: list[tuple[Nginx, aiohttp.ClientSession]] = []

    async def start(heartbeat: float) -> tuple[Nginx, Through]:
        config = make_config(
            database_url, server={"trusted_proxies": ["127.0.0.1"]}, websocket={"heartbeat": heartbeat}
        )
        server = await aiohttp_server(create_app(config))
        prefix = tmp_path / f"nginx-{len(started)}"
        prefix.mkdir()
        nginx = Nginx(prefix, server.port, PROXY_READ_TIMEOUT)
        await nginx.start()
        tls = ssl.create_default_context(cafile=str(nginx.cert))
        connector = aiohttp.TCPConnector(ssl=tls, local_addr=(CLIENT_ADDRESS, 0))
        # Contract-checked like every client of the suite (tests/conftest.py).
        session = aiohttp.ClientSession(**contracts.session_options(connector=connector))
        started.append((nginx, session))
        return nginx, Through(session, nginx.origin)

    yield start
    for nginx, session in started:
        await session.close()
        await nginx.stop()


def _access_lines(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == "aiohttp.access"]


async def test_rest_websocket_deltas_and_origins_through_nginx(start_behind_nginx, seeded, token, caplog):
    nginx, client = await start_behind_nginx(heartbeat=20.0)
    headers = {"Authorization": f"Bearer {token}", "X-Forwarded-For": "6.6.6.6"}

    # REST with a token; the access log shows the client, never nginx or the forged entry
    with caplog.at_level(logging.INFO):
        async with client.get("/api/v1/vm-contexts", headers=headers) as response:
            assert response.status == 200
            assert (await response.json())["count"] == 2
    async with client.get("/api/v1/vm-contexts") as response:
        assert response.status == 401
    (line,) = [line for line in _access_lines(caplog) if "GET /api/v1/vm-contexts" in line]
    assert line.startswith(f"{CLIENT_ADDRESS} ")

    # the GUI's policy names the public socket: wss on nginx's host and port
    async with client.get("/") as response:
        assert response.status == 200
        policy = response.headers["Content-Security-Policy"]
    assert f"connect-src 'self' wss://127.0.0.1:{nginx.port};" in policy

    # a browser on the public origin gets its socket, with deltas from a database write
    live = await LiveClient.connect(client, token, headers={"Origin": nginx.origin})
    await live.subscribe("vm-contexts")
    async with seeded.transaction() as writer:
        await writer.execute(
            "UPDATE replication_jobs SET progress_percent = %s, updated_at = %s WHERE id = %s",
            [77.5, ms("2025-09-09 12:20:00"), SEED_CURRENT_JOB["id"]],
        )
    delta = await live.expect("delta")
    assert delta["patch"]["vm_contexts"]["pgtest1"]["current_job"]["progress_percent"] == 77.5
    assert live.document("vm-contexts") == await rest_dashboard(client, {"Authorization": f"Bearer {token}"})
    await live.close()

    # other origins are refused before the upgrade
    for origin in ("https://evil.example", f"http://127.0.0.1:{nginx.port}", "https://pushsvc"):
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await client.ws_connect("/api/v1/ws", headers={"Origin": origin})
        assert info.value.status == 403, origin


async def test_heartbeat_keeps_an_idle_socket_open_past_the_read_timeout(start_behind_nginx, token):
    """heartbeat 0.5 s < proxy_read_timeout 2 s: open after 3x the timeout with nothing to say."""
    nginx, client = await start_behind_nginx(heartbeat=0.5)
    live = await LiveClient.connect(client, token, headers={"Origin": nginx.origin})
    started = time.monotonic()
    with pytest.raises(TimeoutError):  # idle: no message, and no close, for the whole time
        async with asyncio.timeout(3 * PROXY_READ_TIMEOUT):
            message = await live.ws.receive()  # (pings are answered inside, and not returned)
            pytest.fail(f"the idle socket received {message.type.name} after {time.monotonic() - started:.1f} s")
    assert not live.ws.closed
    await live.send({"type": "ping", "id": "still-open"})
    assert await live.expect("pong") == {"type": "pong", "id": "still-open"}
    await live.close()


async def test_without_a_shorter_heartbeat_nginx_closes_the_idle_socket(start_behind_nginx, token):
    """The converse (so the test above can fail): heartbeat 30 s > proxy_read_timeout 2 s."""
    nginx, client = await start_behind_nginx(heartbeat=30.0)
    live = await LiveClient.connect(client, token, headers={"Origin": nginx.origin})
    started = time.monotonic()
    async with asyncio.timeout(3 * PROXY_READ_TIMEOUT):
        message = await live.ws.receive()
    elapsed = time.monotonic() - started
    assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
    assert PROXY_READ_TIMEOUT - 0.5 <= elapsed < 3 * PROXY_READ_TIMEOUT
