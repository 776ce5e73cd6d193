"""Behind a reverse proxy: the client's address and the public scheme and host of a request.

A proxy connects from its own address, may rewrite ``Host`` and may
terminate TLS; it says what its client sent in ``Forwarded`` (RFC 7239) or
in ``X-Forwarded-For`` / ``-Proto`` / ``-Host``. Anyone can send those
headers, so they are read only when the socket's peer is in
``server.trusted_proxies``; from any other peer, and always when the list is
empty (the default), the socket's own values stand.

A ``Forwarded`` header, when present, is used and the ``X-Forwarded-*``
headers are not: the proxy must set or clear both. Its hops (elements, or
``X-Forwarded-For`` entries) are walked from the right, the one nearest
pushsvc, skipping trusted proxies: the first hop that is not one is the
client, and the scheme and host recorded for that hop are the public ones.
Whatever lies left of it was written by the client and is never read, so
forged entries change nothing. A hop that cannot be read ends the walk at
the last one read. Nothing here raises on any input, and nothing here
imports aiohttp (the glue is ``middleware.proxy_middleware``).
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# A hop: an address, or "unknown" / an obfuscated "_name" (RFC 7239 section 6), which is never a trusted proxy.
Node = IPAddress | str

SCHEMES = ("http", "https")
_DEFAULT_PORTS = {"http": ":80", "https": ":443"}
# The headers ``resolve`` reads (lower-case names; repeated header lines joined with ", ").
HEADERS = ("forwarded", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host")

# A name or address and an optional port, as a Host header carries them; the only hosts believed or
# put in a header.
HOST = re.compile(r"[A-Za-z0-9.-]{1,253}(?::[0-9]{1,5})?|\[[0-9A-Fa-f:.]{2,45}\](?::[0-9]{1,5})?")

_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_QUOTED = r'"(?:[^"\\\x00-\x08\x0a-\x1f\x7f]|\\[^\x00-\x08\x0a-\x1f\x7f])*"'
_PAIR = re.compile(rf"[ \t]*({_TOKEN})=({_TOKEN}|{_QUOTED})[ \t]*")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
_NODE = re.compile(r"(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<name>[^:\[\]]+))(?::(?:[0-9]{1,5}|_[A-Za-z0-9._-]+))?")
_OBFUSCATED = re.compile(r"_[A-Za-z0-9._-]+")
_IP_PORT = re.compile(r"\[(?P<v6>[^\]]+)\](?::[0-9]{1,5})?|(?P<v4>[0-9.]+):[0-9]{1,5}")


class TrustedProxies:
    """``server.trusted_proxies``: addresses and networks whose forwarding headers are believed."""

    def __init__(self, entries: Iterable[str]) -> None:
        """Raises ValueError naming the first entry that is not an address or a network (CIDR)."""
        networks = []
        for entry in entries:
            try:
                networks.append(ipaddress.ip_network(entry.strip()))
            except ValueError:
                raise ValueError(f"{entry!r} is not an address or a network like 10.0.0.0/8") from None
        self.networks = tuple(networks)

    def __bool__(self) -> bool:
        return bool(self.networks)

    def trusts(self, node: Node | None) -> bool:
        if not isinstance(node, ipaddress.IPv4Address | ipaddress.IPv6Address):
            return False
        if isinstance(node, ipaddress.IPv6Address) and node.ipv4_mapped is not None:
            node = node.ipv4_mapped  # a dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d
        return any(node in network for network in self.networks)


@dataclass(frozen=True, slots=True)
class PublicView:
    """A request as its client made it: the client's address, and the scheme and host it addressed."""

    remote: str | None
    scheme: str
    host: str | None
    # The scheme came from a trusted proxy, so a browser's Origin must carry it.
    scheme_forwarded: bool = False


def resolve(
    peer: str | None, scheme: str, host: str | None, headers: Mapping[str, str], trusted: TrustedProxies
) -> PublicView:
    """The public view of a request from the socket's peer, scheme and ``Host`` and its ``HEADERS``."""
    direct = PublicView(peer, scheme, host)
    if not trusted or not trusted.trusts(_address(peer)):
        return direct
    forwarded = headers.get("forwarded")
    if forwarded is not None:
        return _from_forwarded(direct, forwarded, trusted)
    return _from_x_forwarded(direct, headers, trusted)


def is_public_origin(origin: str, view: PublicView) -> bool:
    """Whether a browser's ``Origin`` is the service's own public origin (default ports aside).

    The scheme must match when a trusted proxy told it. Otherwise, as pushsvc
    serves plain HTTP, an http or https origin naming the right host is its
    own (a TLS proxy that is not trusted still works as it always did).
    """
    try:
        parsed = urllib.parse.urlsplit(origin.rstrip("/").lower())
    except ValueError:
        return False
    if parsed.scheme not in SCHEMES or not view.host:
        return False
    if view.scheme_forwarded and parsed.scheme != view.scheme:
        return False
    return _strip_default_port(parsed.netloc, parsed.scheme) == _strip_default_port(view.host.lower(), parsed.scheme)


def parse_forwarded(value: str) -> list[dict[str, str] | None]:
    """The elements of a ``Forwarded`` header, left to right.

    Each is a dict of lower-cased parameter names to unquoted values, or None
    when it does not parse (bad syntax or a repeated parameter); parsing goes
    on after the next comma, so text a client wrote to the left cannot hide
    the elements proxies appended. Empty elements are dropped.
    """
    elements: list[dict[str, str] | None] = []
    start, end = 0, len(value)
    while start <= end:
        element, pos = _element(value, start)
        if element is None:
            comma = value.find(",", start)
            elements.append(None)
            start = end + 1 if comma < 0 else comma + 1
        else:
            if element:
                elements.append(element)
            start = pos + 1
    return elements


def parse_node(value: str) -> Node | None:
    """A ``for=`` value: its address (the port dropped), ``unknown`` or an obfuscated ``_name``; None if malformed."""
    match = _NODE.fullmatch(value)
    if match is None:
        return None
    if match["v6"] is not None:
        return _ip(match["v6"], version=6)
    name = match["name"]
    if name.lower() == "unknown":
        return "unknown"
    if _OBFUSCATED.fullmatch(name):
        return name
    return _ip(name, version=4)


def parse_forwarded_for_entry(value: str) -> IPAddress | None:
    """One ``X-Forwarded-For`` entry: an address, bracketed or not, with or without a port; None otherwise."""
    value = value.strip(" \t")
    match = _IP_PORT.fullmatch(value)
    if match is not None:
        return _ip(match["v6"], version=6) if match["v6"] is not None else _ip(match["v4"], version=4)
    return _ip(value)


def _element(text: str, pos: int) -> tuple[dict[str, str] | None, int]:
    """The element starting at ``pos`` and where it ends (at its comma or the end), or (None, pos)."""
    pairs: dict[str, str] = {}
    while True:
        match = _PAIR.match(text, pos)
        if match is not None:
            name, raw = match[1].lower(), match[2]
            if name in pairs:
                return None, pos
            pairs[name] = _ESCAPE.sub(r"\1", raw[1:-1]) if raw.startswith('"') else raw
            pos = match.end()
        else:
            while pos < len(text) and text[pos] in " \t":
                pos += 1
        if pos == len(text) or text[pos] == ",":
            return pairs, pos
        if text[pos] != ";":
            return None, pos
        pos += 1


def _from_forwarded(direct: PublicView, value: str, trusted: TrustedProxies) -> PublicView:
    hops = [_hop(element) for element in parse_forwarded(value)]
    index = _client_index([None if hop is None else hop[0] for hop in hops], trusted)
    if index is None:
        return direct
    node, element = hops[index] or ("", {})  # the walk never ends on an unreadable hop
    proto = element.get("proto", "").lower()
    scheme_forwarded = proto in SCHEMES
    return PublicView(
        str(node) if node else direct.remote,
        proto if scheme_forwarded else direct.scheme,
        element.get("host", direct.host),
        scheme_forwarded,
    )


def _hop(element: dict[str, str] | None) -> tuple[Node, dict[str, str]] | None:
    """An element's node ("" without ``for``) and parameters; None if one this module reads is malformed."""
    if element is None:
        return None
    node = parse_node(element["for"]) if "for" in element else ""
    if node is None or not HOST.fullmatch(element.get("host", "x")) or not _SCHEME.fullmatch(element.get("proto", "x")):
        return None
    return node, element


def _from_x_forwarded(direct: PublicView, headers: Mapping[str, str], trusted: TrustedProxies) -> PublicView:
    """``X-Forwarded-Proto`` and ``-Host`` hold one value (the nearest proxy's), or one per hop."""
    forwarded_for = headers.get("x-forwarded-for", "")
    nodes = [parse_forwarded_for_entry(entry) for entry in forwarded_for.split(",")] if forwarded_for else []
    index = _client_index(list(nodes), trusted)
    protos = [value.strip(" \t").lower() for value in headers.get("x-forwarded-proto", "").split(",")]
    hosts = [value.strip(" \t") for value in headers.get("x-forwarded-host", "").split(",")]
    proto = _for_hop(protos, index, len(nodes))
    host = _for_hop(hosts, index, len(nodes))
    scheme_forwarded = proto in SCHEMES
    return PublicView(
        str(nodes[index]) if index is not None else direct.remote,
        proto if scheme_forwarded else direct.scheme,
        host if host and HOST.fullmatch(host) else direct.host,
        scheme_forwarded,
    )


def _for_hop(values: list[str], index: int | None, hops: int) -> str:
    if len(values) == 1:
        return values[0]
    if index is not None and len(values) == hops:
        return values[index]
    return ""  # neither one value nor one per hop: which hop each belongs to is unknown


def _client_index(nodes: list[Node | None], trusted: TrustedProxies) -> int | None:
    """The client's hop: the rightmost that is not a trusted proxy, or the leftmost if all are.

    An unreadable hop (None) ends the walk at the last hop read; None when
    there is none.
    """
    client = None
    for index in range(len(nodes) - 1, -1, -1):
        node = nodes[index]
        if node is None:
            break
        client = index
        if not trusted.trusts(node):
            break
    return client


def _address(value: str | None) -> IPAddress | None:
    return None if value is None else _ip(value)


def _ip(value: str, version: int | None = None) -> IPAddress | None:
    if "%" in value:  # a scope id ("fe80::1%eth0") is free text: never taken from a header
        return None
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    return address if version is None or address.version == version else None


def _strip_default_port(authority: str, scheme: str) -> str:
    port = _DEFAULT_PORTS[scheme]
    return authority[: -len(port)] if authority.endswith(port) else authority
