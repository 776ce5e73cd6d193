"""A protocol client for tests: keeps each topic's document from snapshot + merge patches.

Its socket comes from a checked test client (tests/conftest.py), so every frame
it sends or receives is validated against the AsyncAPI document; a negative
test that sends something outside the contract on purpose uses ``send_unchecked``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import orjson

from pushsvc.patch import drop_nulls, merge_patch
from tests.contracts.checker import ContractChecker

TIMEOUT = 5.0


class ProtocolError(AssertionError):
    pass


class LiveClient:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        # Under pytest every socket is contract-checked; the benchmarks (no contracts fixture) use plain ones.
        assert ContractChecker.active is None or hasattr(ws, "send_unchecked"), (
            "use a socket from a contract-checked client (tests/conftest.py)"
        )
        self.ws = ws
        self.docs: dict[str, Any] = {}
        self.seqs: dict[str, int] = {}
        self.epoch: str | None = None
        self.log: list[dict] = []
        self.subscribed: set[str] = set()

    @classmethod
    async def connect(cls, client, token: str | None = None, *, header: bool = True, **kwargs) -> LiveClient:
        """Open /api/v1/ws; with ``token``, authenticate (header or first frame) and expect welcome."""
        headers = dict(kwargs.pop("headers", {}))
        if token and header:
            headers["Authorization"] = f"Bearer {token}"
        ws = await client.ws_connect("/api/v1/ws", headers=headers, **kwargs)
        live = cls(ws)
        if token and not header:
            await live.send({"type": "auth", "token": token})
        if token:
            await live.expect("welcome")
        return live

    async def send(self, message: dict) -> None:
        if message.get("type") == "subscribe":
            self.subscribed.add(message["topic"])
        elif message.get("type") == "unsubscribe":
            self.subscribed.discard(message["topic"])
        await self.ws.send_str(orjson.dumps(message).decode())

    async def send_unchecked(self, message: dict | str | bytes) -> None:
        """Send a frame that breaks the contract on purpose (a message, raw text, or a binary frame)."""
        await self.ws.send_unchecked(orjson.dumps(message).decode() if isinstance(message, dict) else message)

    async def receive(self, timeout: float = TIMEOUT) -> dict:
        """The next JSON message (applied to the documents); raises on close."""
        msg = await self.ws.receive(timeout=timeout)
        if msg.type != aiohttp.WSMsgType.TEXT:
            raise ProtocolError(f"socket ended: {msg.type.name} {self.ws.close_code} {msg.extra!r}")
        message = orjson.loads(msg.data)
        self.log.append(message)
        self.apply(message)
        return message

    def apply(self, message: dict) -> None:
        kind = message.get("type")
        if kind == "welcome":
            self.epoch = message["epoch"]
        elif kind == "snapshot":
            self.docs[message["topic"]] = message["data"]
            self.seqs[message["topic"]] = message["seq"]
            assert message["epoch"] == self.epoch
        elif kind == "delta":
            topic = message["topic"]
            if message["seq"] != self.seqs.get(topic, -2) + 1:
                raise ProtocolError(f"seq gap on {topic}: had {self.seqs.get(topic)}, got {message['seq']}")
            self.docs[topic] = merge_patch(self.docs[topic], message["patch"])
            self.seqs[topic] = message["seq"]

    async def expect(self, kind: str, timeout: float = TIMEOUT) -> dict:
        """Receive until a message of ``kind``; anything before it is applied (errors fail)."""
        while True:
            message = await self.receive(timeout)
            if message["type"] == kind:
                return message
            if message["type"] == "error":
                raise ProtocolError(f"expected {kind}, got {message}")

    async def next(self, timeout: float = TIMEOUT) -> dict:
        return await self.receive(timeout)

    async def subscribe(self, topic: str, **extra) -> dict:
        await self.send({"type": "subscribe", "topic": topic, **extra})
        return await self.expect("snapshot")

    async def catch_up(self, hub, topics=None, timeout: float = TIMEOUT) -> None:
        """Receive until every given (default: subscribed) topic's seq equals the hub's."""
        wanted = list(topics or self.subscribed)
        async with asyncio.timeout(timeout):
            while any(self.seqs.get(topic) != hub.topics[topic].seq for topic in wanted):
                await self.receive(timeout)

    async def expect_closed(self, timeout: float = TIMEOUT) -> int:
        """Read until the server closes; returns the close code."""
        async with asyncio.timeout(timeout):
            while True:
                msg = await self.ws.receive()
                if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
                    return self.ws.close_code
                if msg.type == aiohttp.WSMsgType.ERROR:
                    return self.ws.close_code
                if msg.type == aiohttp.WSMsgType.TEXT:
                    self.log.append(orjson.loads(msg.data))

    def document(self, topic: str) -> Any:
        """The topic's document as a client compares it (null-valued keys dropped)."""
        return drop_nulls(self.docs[topic])

    async def close(self) -> None:
        await self.ws.close()
