"""Forwarding headers (RFC 7239 Forwarded, X-Forwarded-*): parsing, the walk from the right, trust, origins."""

from __future__ import annotations

import ipaddress
import random
import time

import pytest

from pushsvc.config import ConfigError, build_config
from pushsvc.proxy import (
    HOST,
    SCHEMES,
    PublicView,
    TrustedProxies,
    is_public_origin,
    parse_forwarded,
    parse_forwarded_for_entry,
    parse_node,
    resolve,
)

PROXIES = TrustedProxies(["127.0.0.1", "10.0.0.0/8", "2001:db8:ffff::/48"])
DIRECT = PublicView("127.0.0.1", "http", "127.0.0.1:8082")


def view(headers: dict[str, str], peer: str = "127.0.0.1", trusted: TrustedProxies = PROXIES) -> PublicView:
    return resolve(peer, "http", "127.0.0.1:8082", headers, trusted)


# -- trusted_proxies -------------------------------------------------------------


def test_trusted_entries_are_addresses_and_networks():
    trusted = TrustedProxies(["192.0.2.7", " 10.0.0.0/8 ", "::1", "2001:db8::/32"])
    for address in ("192.0.2.7", "10.255.0.1", "::1", "2001:db8:1::5", "::ffff:10.1.2.3"):
        assert trusted.trusts(ipaddress.ip_address(address)), address
    for node in (ipaddress.ip_address("192.0.2.8"), ipaddress.ip_address("::2"), "unknown", "_proxy", None):
        assert not trusted.trusts(node)
    assert not TrustedProxies([]) and TrustedProxies(["::1"])


@pytest.mark.parametrize("entry", ["10.0.0.1/8", "localhost", "10.0.0.0/33", "", "1.2.3.4:80", "[::1]"])
def test_bad_trusted_entries_are_named(entry):
    with pytest.raises(ValueError, match="is not an address or a network") as info:
        TrustedProxies(["127.0.0.1", entry])
    assert repr(entry) in str(info.value)


# -- Forwarded: syntax -------------------------------------------------------------


@pytest.mark.parametrize(
    "header, elements",
    [
        # RFC 7239 section 4 and 7.1 examples
        ('for="_gazonk"', [{"for": "_gazonk"}]),
        ('For="[2001:db8:cafe::17]:4711"', [{"for": "[2001:db8:cafe::17]:4711"}]),
        ("for=192.0.2.60;proto=http;by=203.0.113.43", [{"for": "192.0.2.60", "proto": "http", "by": "203.0.113.43"}]),
        ("for=192.0.2.43, for=198.51.100.17", [{"for": "192.0.2.43"}, {"for": "198.51.100.17"}]),
        (
            'for=192.0.2.43,for="[2001:db8:cafe::17]",for=unknown',
            [{"for": "192.0.2.43"}, {"for": "[2001:db8:cafe::17]"}, {"for": "unknown"}],
        ),
        # quoted-pairs unescaped; commas and semicolons inside quotes are data
        ('for="_a\\"b";host="x\\\\y";ext="a, b; c"', [{"for": '_a"b', "host": "x\\y", "ext": "a, b; c"}]),
        # optional whitespace around separators, empty list elements dropped
        (" for=1.2.3.4 ; proto=https ,, , for=5.6.7.8 ", [{"for": "1.2.3.4", "proto": "https"}, {"for": "5.6.7.8"}]),
        ("for=1.2.3.4;;proto=https;", [{"for": "1.2.3.4", "proto": "https"}]),
        ("", []),
    ],
)
def test_forwarded_elements(header, elements):
    assert parse_forwarded(header) == elements


@pytest.mark.parametrize(
    "header",
    [
        "for",
        "for=",
        "=1.2.3.4",
        "for=1.2.3.4 proto=https",
        "for=1.2.3.4;for=5.6.7.8",  # a parameter twice
        'for="1.2.3.4',  # unterminated quote
        'for="a\x01b"',  # a control character in a quoted string
        "for=[2001:db8::1]",  # brackets and colons must be quoted
        "for=1.2.3.4:80",
        'for="1.2.3.4"x',
        "for=\u00e9",
    ],
)
def test_a_malformed_element_is_one_none(header):
    assert parse_forwarded(header) == [None]


def test_parsing_resumes_after_the_next_comma():
    """What a client wrote to the left cannot swallow what the proxies appended."""
    assert parse_forwarded('for="6.6.6.6, for=203.0.113.9') == [None, {"for": "203.0.113.9"}]
    assert parse_forwarded('for=6.6.6.6;x=", for="[2001:db8::9]"') == [None, {"for": "[2001:db8::9]"}]
    assert parse_forwarded("garbage!, for=203.0.113.9;proto=https") == [None, {"for": "203.0.113.9", "proto": "https"}]


@pytest.mark.parametrize(
    "node, parsed",
    [
        ("192.0.2.43", ipaddress.ip_address("192.0.2.43")),
        ("192.0.2.43:47011", ipaddress.ip_address("192.0.2.43")),
        ("192.0.2.43:_port", ipaddress.ip_address("192.0.2.43")),
        ("[2001:db8:cafe::17]", ipaddress.ip_address("2001:db8:cafe::17")),
        ("[2001:db8:cafe::17]:4711", ipaddress.ip_address("2001:db8:cafe::17")),
        ("[::ffff:192.0.2.1]", ipaddress.ip_address("::ffff:192.0.2.1")),
        ("unknown", "unknown"),
        ("UNKNOWN:80", "unknown"),
        ("_hidden", "_hidden"),
        ("_SEVKISEK:_x.y-z", "_SEVKISEK"),
    ],
)
def test_nodes(node, parsed):
    assert parse_node(node) == parsed


@pytest.mark.parametrize(
    "node",
    [
        "",
        "2001:db8::1",  # IPv6 only in brackets
        "[192.0.2.1]",
        "[2001:db8::1",
        "[fe80::1%eth0]",  # scope ids are free text
        "999.0.0.1",
        "192.0.2.1:",
        "192.0.2.1:123456",
        "192.0.2.1:_",
        "_",
        "host.example",
        "unknown-ish",
        "_a b",
    ],
)
def test_malformed_nodes(node):
    assert parse_node(node) is None


@pytest.mark.parametrize(
    "entry, address",
    [
        ("203.0.113.9", "203.0.113.9"),
        ("  203.0.113.9 ", "203.0.113.9"),
        ("203.0.113.9:51000", "203.0.113.9"),
        ("2001:db8::9", "2001:db8::9"),
        ("[2001:db8::9]", "2001:db8::9"),
        ("[2001:db8::9]:443", "2001:db8::9"),
        ("unknown", None),
        ("", None),
        ("_hidden", None),
        ("203.0.113.9:http", None),
        ("[203.0.113.9]", None),
        ("fe80::1%eth0", None),
        ("203.0.113.9\n", None),  # only spaces and tabs are optional whitespace
        ("\u2028203.0.113.9", None),
        ("203.0.113.9\x00", None),
    ],
)
def test_x_forwarded_for_entries(entry, address):
    parsed = parse_forwarded_for_entry(entry)
    assert parsed == (None if address is None else ipaddress.ip_address(address))


# -- who is believed ----------------------------------------------------------------

SPOOF = {
    "forwarded": "for=6.6.6.6;proto=https;host=evil.example",
    "x-forwarded-for": "6.6.6.6",
    "x-forwarded-proto": "https",
    "x-forwarded-host": "evil.example",
}


def test_with_no_trusted_proxy_nothing_changes():
    assert view(SPOOF, trusted=TrustedProxies([])) == DIRECT
    assert (
        view({key: value for key, value in SPOOF.items() if key != "forwarded"}, trusted=TrustedProxies([])) == DIRECT
    )


@pytest.mark.parametrize("peer", ["192.0.2.1", "10.0.0.1.5", "", None, "/run/pushsvc.sock", "::ffff:192.0.2.1"])
def test_headers_from_an_untrusted_peer_are_ignored(peer):
    assert resolve(peer, "http", "h:1", SPOOF, PROXIES) == PublicView(peer, "http", "h:1")


def test_an_ipv4_mapped_peer_is_its_ipv4_address():
    assert view({"x-forwarded-for": "203.0.113.9"}, peer="::ffff:127.0.0.1").remote == "203.0.113.9"


# -- X-Forwarded-* ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "forwarded_for, client",
    [
        ("203.0.113.9", "203.0.113.9"),
        ("6.6.6.6, 203.0.113.9", "203.0.113.9"),  # the client's own entry is never read
        ("6.6.6.6, 203.0.113.9, 10.1.1.1, 10.2.2.2", "203.0.113.9"),  # trusted hops skipped
        ("10.9.9.9, 10.1.1.1", "10.9.9.9"),  # all trusted: the leftmost
        ("2001:db8::9, 2001:db8:ffff::1", "2001:db8::9"),
        ("garbage, 203.0.113.9", "203.0.113.9"),
        ("203.0.113.9, unknown, 10.1.1.1", "10.1.1.1"),  # an unreadable hop ends the walk at the last one read
        ("garbage", "127.0.0.1"),
        ("", "127.0.0.1"),
    ],
)
def test_x_forwarded_for_is_walked_from_the_right(forwarded_for, client):
    assert view({"x-forwarded-for": forwarded_for}).remote == client


def test_x_forwarded_proto_and_host():
    got = view({"x-forwarded-for": "203.0.113.9", "x-forwarded-proto": "HTTPS", "x-forwarded-host": "push.example"})
    assert got == PublicView("203.0.113.9", "https", "push.example", scheme_forwarded=True)
    # without X-Forwarded-For the peer stays the client
    assert view({"x-forwarded-proto": "https"}) == PublicView("127.0.0.1", "https", "127.0.0.1:8082", True)
    assert view({"x-forwarded-host": "push.example:8443"}).host == "push.example:8443"


def test_one_value_per_hop_follows_the_client_hop():
    headers = {
        "x-forwarded-for": "203.0.113.9, 10.1.1.1",
        "x-forwarded-proto": "https, http",
        "x-forwarded-host": "push.example, internal:8080",
    }
    assert view(headers) == PublicView("203.0.113.9", "https", "push.example", True)
    headers["x-forwarded-for"] = "6.6.6.6, 203.0.113.9, 10.1.1.1"  # two values for three hops: not believed
    assert view(headers) == PublicView("203.0.113.9", "http", "127.0.0.1:8082")


@pytest.mark.parametrize(
    "name, value",
    [
        ("x-forwarded-proto", "javascript"),
        ("x-forwarded-proto", "ws"),
        ("x-forwarded-proto", ""),
        ("x-forwarded-host", "evil.example; script-src *"),
        ("x-forwarded-host", "a\r\nb"),
        ("x-forwarded-host", "user@host"),
        ("x-forwarded-host", "\u2028evil.example"),
        ("x-forwarded-host", ""),
    ],
)
def test_unusable_proto_and_host_are_ignored(name, value):
    assert view({name: value}) == DIRECT


# -- Forwarded ------------------------------------------------------------------------------


def test_forwarded_names_client_scheme_and_host():
    header = 'for="[2001:db8:cafe::17]:4711";proto=https;host=push.example, for=10.1.1.1;proto=http;host=internal'
    assert view({"forwarded": header}) == PublicView("2001:db8:cafe::17", "https", "push.example", True)


def test_forwarded_wins_over_x_forwarded():
    headers = {"forwarded": "for=203.0.113.9", "x-forwarded-for": "198.51.100.1", "x-forwarded-proto": "https"}
    assert view(headers) == PublicView("203.0.113.9", "http", "127.0.0.1:8082")


@pytest.mark.parametrize(
    "header, client",
    [
        ("for=6.6.6.6, for=203.0.113.9, for=10.1.1.1", "203.0.113.9"),
        ("for=10.2.2.2, for=10.1.1.1", "10.2.2.2"),
        ('for="_hidden", for=10.1.1.1', "_hidden"),
        ("for=unknown;proto=https", "unknown"),
        ("proto=https", "127.0.0.1"),  # no for=: the peer is all that is known
        ('for="6.6.6.6, for=203.0.113.9', "203.0.113.9"),
        ("for=203.0.113.9, for=999.1.1.1", "127.0.0.1"),  # the nearest hop unreadable: nothing believed
        ("for=203.0.113.9, for=10.1.1.1;host=bad/host, for=10.2.2.2", "10.2.2.2"),
        ("for=1.2.3.4;for=5.6.7.8", "127.0.0.1"),
    ],
)
def test_forwarded_is_walked_from_the_right(header, client):
    assert view({"forwarded": header}).remote == client


def test_an_unreadable_forwarded_header_believes_nothing():
    assert view({"forwarded": 'for="unterminated', "x-forwarded-for": "203.0.113.9"}) == DIRECT


def test_forwarded_proto_other_than_http_or_https_is_ignored():
    assert view({"forwarded": "for=203.0.113.9;proto=ftp"}) == PublicView("203.0.113.9", "http", "127.0.0.1:8082")


def test_random_headers_never_raise_and_stay_well_formed():
    rng = random.Random(12)
    alphabet = 'fo r=_"\\;,:[]0123456789.abcdefx\t\r\n\x00\u2028' + "-proto=https host=for="
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        name = rng.choice(["forwarded", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"])
        got = view({name: text, "x-forwarded-for": text} if rng.random() < 0.3 else {name: text})
        assert got.scheme in SCHEMES
        assert got.host == DIRECT.host or HOST.fullmatch(got.host or "")
        remote = got.remote or ""
        assert remote.isprintable() and len(remote) <= 64


def test_a_long_hostile_header_is_cheap():
    """Headers are capped at 8 KB by aiohttp; parsing one must stay linear, whatever its shape."""
    for shape in (",", 'a="', 'a=",', "x,", 'a="\\', "for=1.2.3.4;", ";"):
        header = (shape * 8190)[:8190]
        started = time.perf_counter()
        for name in ("forwarded", "x-forwarded-for"):
            view({name: header})
        assert time.perf_counter() - started < 1.0, shape  # ~10 ms here; quadratic would take seconds


# -- the public origin --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "origin, public, allowed",
    [
        # a direct request: the scheme is unknown (pushsvc serves http), the host must match
        ("http://127.0.0.1:8082", DIRECT, True),
        ("https://127.0.0.1:8082", DIRECT, True),
        ("http://127.0.0.1:8083", DIRECT, False),
        ("http://evil.example", DIRECT, False),
        ("null", DIRECT, False),
        ("file://", DIRECT, False),
        ("http://[::1", DIRECT, False),
        # a trusted proxy named the scheme and the host
        ("https://push.example", PublicView("x", "https", "push.example", True), True),
        ("HTTPS://Push.Example/", PublicView("x", "https", "push.example", True), True),
        ("https://push.example", PublicView("x", "https", "push.example:443", True), True),
        ("https://push.example:443", PublicView("x", "https", "push.example", True), True),
        ("http://push.example", PublicView("x", "https", "push.example", True), False),
        ("https://push.example:8443", PublicView("x", "https", "push.example", True), False),
        ("https://push.example", PublicView("x", "https", "push.example:80", True), False),
        ("https://push.example.evil", PublicView("x", "https", "push.example", True), False),
        ("http://h", PublicView("x", "http", None), False),
    ],
)
def test_public_origin(origin, public, allowed):
    assert is_public_origin(origin, public) is allowed


# -- configuration --------------------------------------------------------------------------------


def test_trusted_proxies_from_the_file_and_the_environment():
    assert build_config({}, {}).server.trusted_proxies == ()
    from_file = build_config({"server": {"trusted_proxies": ["127.0.0.1", "10.0.0.0/8"]}}, {})
    assert from_file.server.trusted_proxies == ("127.0.0.1", "10.0.0.0/8")
    from_env = build_config({}, {"PUSHSVC_SERVER_TRUSTED_PROXIES": "127.0.0.1, ::1,10.0.0.0/8,"})
    assert from_env.server.trusted_proxies == ("127.0.0.1", "::1", "10.0.0.0/8")


@pytest.mark.parametrize("value", ["10.0.0.1/8", "proxy.internal"])
def test_a_bad_trusted_proxy_stops_start_up_naming_the_key(value):
    with pytest.raises(ConfigError, match=r"^server\.trusted_proxies: .* is not an address or a network"):
        build_config({}, {"PUSHSVC_SERVER_TRUSTED_PROXIES": f"127.0.0.1,{value}"})
