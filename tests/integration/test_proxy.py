"""Behind a reverse proxy, through real sockets: whose forwarding headers count, and what they change
(the access log's client, the WebSocket Origin check, the GUI's Content-Security-Policy)."""

from __future__ import annotations

import logging

import aiohttp
import pytest
from multidict import CIMultiDict

from pushsvc.app import create_app

from ..helpers import make_config
from ..rawhttp import exchange, request
from ..wsclient import LiveClient

# What a client may send to pretend it came from elsewhere.
SPOOF = {
    "X-Forwarded-For": "6.6.6.6",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "evil.example",
    "Forwarded": "for=6.6.6.6;proto=https;host=evil.example",
}
# What nginx sends (docs/deployment.md) for a browser at https://push.example, Host rewritten to the upstream's.
BEHIND_NGINX = {
    "Host": "pushsvc",
    "X-Forwarded-For": "6.6.6.6, 203.0.113.9",  # the client's forged entry, then the one nginx appended
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "push.example",
}


async def _client(aiohttp_client, database_url, trusted: list[str] | None):
    server = {} if trusted is None else {"trusted_proxies": trusted}
    return await aiohttp_client(create_app(make_config(database_url, server=server), run_poller=False))


@pytest.fixture
async def behind_proxy(aiohttp_client, database_url, store):
    """The app with the test client's address (127.0.0.1) as its trusted proxy."""
    return await _client(aiohttp_client, database_url, ["127.0.0.1"])


def _access_lines(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == "aiohttp.access"]


def _csp_sockets(response) -> str:
    policy = dict(part.strip().split(" ", 1) for part in response.headers["Content-Security-Policy"].split(";"))
    return policy["connect-src"]


async def _origin_status(client, origin: str, headers: dict[str, str]) -> int:
    try:
        ws = await client.ws_connect("/api/v1/ws", headers={**headers, "Origin": origin})
    except aiohttp.WSServerHandshakeError as exc:
        return exc.status
    await ws.close()
    return 101


# -- a trusted proxy ------------------------------------------------------------------------


async def test_the_access_log_shows_the_client(behind_proxy, caplog):
    with caplog.at_level(logging.INFO):
        await behind_proxy.get("/healthz", headers=BEHIND_NGINX)
        await behind_proxy.get("/healthz", headers={"Forwarded": 'for="[2001:db8::9]:5000", for=127.0.0.1'})
        await behind_proxy.get("/healthz", headers={"Forwarded": 'for="_hidden";proto=https'})
        await behind_proxy.get("/healthz")  # no headers: the proxy itself
    lines = _access_lines(caplog)
    assert [line.split(" ", 1)[0] for line in lines] == ["203.0.113.9", "2001:db8::9", "_hidden", "127.0.0.1"]
    assert all(" 6.6.6.6" not in line and "evil" not in line for line in lines)


async def test_repeated_header_lines_are_one_list(behind_proxy, caplog):
    headers = CIMultiDict([("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-For", "203.0.113.9")])
    with caplog.at_level(logging.INFO):
        await behind_proxy.get("/healthz", headers=headers)
    (line,) = _access_lines(caplog)
    assert line.startswith("203.0.113.9 ")


async def test_a_rewritten_host_no_longer_refuses_browsers(behind_proxy, token):
    """The Origin is compared with the public origin: scheme and host as the proxy reports them."""
    live = await LiveClient.connect(behind_proxy, token, headers={**BEHIND_NGINX, "Origin": "https://push.example"})
    await live.close()
    forwarded = {"Host": "pushsvc", "Forwarded": "for=203.0.113.9;proto=https;host=push.example"}
    assert await _origin_status(behind_proxy, "https://push.example", forwarded) == 101
    assert await _origin_status(behind_proxy, "https://push.example:443", BEHIND_NGINX) == 101


@pytest.mark.parametrize(
    "origin",
    [
        "http://push.example",  # the proxy said https
        "https://push.example.evil",
        "https://pushsvc",  # the rewritten Host is not the public origin
        "https://evil.example",
    ],
)
async def test_other_origins_are_refused_behind_the_proxy(behind_proxy, origin):
    assert await _origin_status(behind_proxy, origin, BEHIND_NGINX) == 403


async def test_the_gui_policy_names_the_public_socket(behind_proxy):
    response = await behind_proxy.get("/", headers=BEHIND_NGINX)
    assert _csp_sockets(response) == "'self' wss://push.example"
    plain = {**BEHIND_NGINX, "X-Forwarded-Proto": "http", "X-Forwarded-Host": "push.example:8080"}
    response = await behind_proxy.get("/", headers=plain)
    assert _csp_sockets(response) == "'self' ws://push.example:8080 wss://push.example:8080"


@pytest.mark.parametrize(
    "name, value",
    [
        ("Forwarded", b'for="unterminated'),
        ("Forwarded", b"for=1.2.3.4;for=5.6.7.8"),
        ("Forwarded", b'for="[::1%25eth0]";host="a b"'),
        ("Forwarded", b"for=\xff\xfe;proto=\xc3\xa9"),  # (control characters never get past aiohttp's parser)
        ("X-Forwarded-For", b"\xff, 1.2.3.4\xc2\xa0, [::1"),
        ("X-Forwarded-For", b"," * 4000),
        ("X-Forwarded-Proto", b"javascript"),
        ("X-Forwarded-Host", b"evil.example; script-src *"),
        ("X-Forwarded-Host", b"\xe2\x80\xa8evil"),
    ],
)
async def test_malformed_headers_are_ignored_safely(behind_proxy, caplog, name, value):
    """Never a 500 or a traceback; the socket's values stand where the header cannot be read."""
    with caplog.at_level(logging.INFO):
        for path in ("/", "/healthz"):
            response = await exchange(behind_proxy.host, behind_proxy.port, request(path, {name: value}))
            assert response is not None and response.status == 200
            assert "evil" not in response.headers.get("content-security-policy", "")
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING or record.exc_info]
    # (a file response is logged after it is sent, so only /healthz's line is sure to be there)
    (line,) = [line for line in _access_lines(caplog) if "/healthz" in line]
    assert line.startswith("127.0.0.1 ")


# -- an untrusted peer, and no trusted proxy at all --------------------------------------------


@pytest.mark.parametrize("trusted", [None, ["10.0.0.0/8", "::1"]], ids=["default", "peer not listed"])
async def test_spoofed_headers_change_nothing(aiohttp_client, database_url, store, token, caplog, trusted):
    client = await _client(aiohttp_client, database_url, trusted)
    own = f"{client.host}:{client.port}"
    response = await client.get("/", headers=SPOOF)
    assert _csp_sockets(response) == f"'self' ws://{own} wss://{own}"
    with caplog.at_level(logging.INFO):
        await client.get("/healthz", headers=SPOOF)
    (line,) = [line for line in _access_lines(caplog) if "/healthz" in line]
    assert line.startswith("127.0.0.1 ")
    assert await _origin_status(client, "https://evil.example", SPOOF) == 403
    # the socket's own origin, scheme either way, as before proxies were known
    live = await LiveClient.connect(client, token, headers={**SPOOF, "Origin": f"https://{own}"})
    await live.close()
