"""Raw HTTP/1.1 over a socket, for requests no well-behaved client would send."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

TIMEOUT = 5.0


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str] = field(default_factory=dict)  # lower-cased names
    body: bytes = b""


async def exchange(host: str, port: int, data: bytes, timeout: float = TIMEOUT) -> RawResponse | None:
    """Send ``data``, read until the server closes; None when it closed without answering."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(data)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), timeout)
    except ConnectionResetError:
        return None
    finally:
        writer.close()
    return parse_response(raw) if raw else None


def parse_response(raw: bytes) -> RawResponse:
    """The final response (interim 1xx responses such as "100 Continue" skipped)."""
    head, _, body = raw.partition(b"\r\n\r\n")
    while head.startswith(b"HTTP/1.1 1") and body:
        head, _, body = body.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return RawResponse(status, headers, body)


def request(target: str | bytes, headers: dict[str, str | bytes] | None = None, method: bytes = b"GET") -> bytes:
    """One request with ``Connection: close`` (header values may be arbitrary bytes)."""
    lines = [
        method + b" " + (target if isinstance(target, bytes) else target.encode()) + b" HTTP/1.1",
        b"Host: localhost",
    ]
    for name, value in (headers or {}).items():
        lines.append(name.encode() + b": " + (value if isinstance(value, bytes) else value.encode("utf-8")))
    lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n"
