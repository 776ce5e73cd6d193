"""The WebSocket endpoint ``/api/v1/ws`` (protocol.md): origin check, auth, read loop.

Only this handler reads from the socket; everything it answers goes through
the session's outbox so that replies, snapshots and deltas keep their order.
"""

from __future__ import annotations

import collections
import datetime as dt
import logging
import time
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from . import protocol
from .auth import Claims, TokenError
from .errors import error_response
from .keys import config_key, hub_key, metrics_key, public_view_key, sockets_key, verifier_key
from .protocol import ErrorCode, ProtocolError, RequestId, is_request_id, is_valid_topic, parse_since
from .proxy import is_public_origin
from .session import Session

log = logging.getLogger(__name__)

URL_TOKEN_PARAMS = {"token", "access_token", "jwt", "auth", "bearer"}


def _rfc3339(moment: dt.datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def origin_allowed(request: web.Request, allowed: tuple[str, ...]) -> bool:
    """No Origin (non-browser client), the service's own public origin (``proxy.py``), or one on the allow-list."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    if "*" in allowed:
        return True
    normalized = origin.rstrip("/").lower()
    if normalized in (entry.rstrip("/").lower() for entry in allowed):
        return True
    return is_public_origin(normalized, request[public_view_key])


class RateLimiter:
    """Token bucket: ``rate`` messages per second with bursts up to ``burst``."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, float(burst)
        self.tokens, self.stamp = float(burst), time.monotonic()

    def allow(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class Connection:
    """The read side of one socket: authentication state and message dispatch."""

    def __init__(self, request: web.Request, ws: web.WebSocketResponse) -> None:
        app = request.app
        self.config = app[config_key].websocket
        self.hub = app[hub_key]
        self.verifier = app[verifier_key]
        self.ws = ws
        transport = request.transport
        self.session = Session(
            ws,
            self.hub.snapshot_message,
            self.config,
            app[metrics_key],
            abort=(transport.abort if transport else lambda: None),
            transport=transport,
        )
        self.limiter = RateLimiter(self.config.rate_limit, self.config.rate_burst)
        self.error_times: collections.deque[float] = collections.deque()
        self.welcomed = False

    async def authenticate(self, token: Any, request_id: Any = None) -> bool:
        """Verify ``token``; on success send ``welcome`` and arm the expiry timer."""
        if not isinstance(token, str) or not token:
            return False
        try:
            claims: Claims = await self.verifier.verify(token)
        except TokenError:
            return False
        self.session.send(
            protocol.welcome(
                self.session.id,
                self.hub.epoch,
                _rfc3339(claims.expires_at),
                round(self.config.heartbeat),
                request_id,
            )
        )
        delay = None
        if claims.expires_at is not None:
            delay = (claims.expires_at - dt.datetime.now(dt.UTC)).total_seconds()
        self.session.arm_expiry(delay)
        if not self.welcomed:
            self.welcomed = True
            self.hub.register(self.session)  # sends the retained database status, if any
        return True

    def reject(self) -> None:
        self.session.close(protocol.AUTH_FAILED)

    def report(self, code: ErrorCode, message: str, request_id: RequestId | None = None) -> None:
        """Send an ``error`` frame; close with 1008 when a client keeps misbehaving."""
        self.session.send(protocol.error(code, message, request_id))
        now = time.monotonic()
        self.error_times.append(now)
        while self.error_times and now - self.error_times[0] > 60:
            self.error_times.popleft()
        if len(self.error_times) >= self.config.max_errors:
            self.session.close(protocol.TOO_MANY_ERRORS)

    async def handle_text(self, text: str) -> None:
        request_id = None
        try:
            allowed = self.limiter.allow()
            try:
                message = orjson.loads(text)
            except orjson.JSONDecodeError:
                raise ProtocolError(ErrorCode.BAD_REQUEST, "message is not valid JSON") from None
            if not isinstance(message, dict):
                raise ProtocolError(ErrorCode.BAD_REQUEST, "message must be a JSON object")
            if "id" in message:
                if not is_request_id(message["id"]):
                    raise ProtocolError(ErrorCode.BAD_REQUEST, "id must be a string or an integer")
                request_id = message["id"]
            if not allowed:
                raise ProtocolError(ErrorCode.RATE_LIMITED, f"more than {self.config.rate_limit:g} messages per second")
            await self.dispatch(message, request_id)
        except ProtocolError as exc:
            self.report(exc.code, exc.message, request_id)
        except Exception:  # a bug of ours: say so, keep the socket, log once
            log.exception("error handling a client message on session %s", self.session.id)
            self.session.send(protocol.error(ErrorCode.INTERNAL, "internal error", request_id))

    async def dispatch(self, message: dict[str, Any], request_id: Any) -> None:
        kind = message.get("type")
        if kind == "ping":
            self.session.send(protocol.pong(request_id))
        elif kind == "subscribe":
            topic = message.get("topic")
            if not isinstance(topic, str):
                raise ProtocolError(ErrorCode.BAD_REQUEST, "subscribe needs a topic")
            if not is_valid_topic(topic):
                raise ProtocolError(ErrorCode.UNKNOWN_TOPIC, f"unknown topic: {topic[:300]}")
            since = parse_since(message.get("since"))
            if topic not in self.session.topics and len(self.session.topics) >= self.config.max_subscriptions:
                limit = self.config.max_subscriptions
                raise ProtocolError(ErrorCode.TOO_MANY_SUBSCRIPTIONS, f"at most {limit} subscriptions")
            self.session.forget(topic)
            self.hub.subscribe(self.session, topic, since, request_id)
        elif kind == "unsubscribe":
            topic = message.get("topic")
            if not isinstance(topic, str):
                raise ProtocolError(ErrorCode.BAD_REQUEST, "unsubscribe needs a topic")
            self.hub.unsubscribe(self.session, topic)
            self.session.forget(topic)
            self.session.send(protocol.unsubscribed(topic, request_id))
        elif kind == "auth":
            if not await self.authenticate(message.get("token"), request_id):
                self.reject()
        elif isinstance(kind, str):
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"unknown message type: {kind[:100]}")
        else:
            raise ProtocolError(ErrorCode.BAD_REQUEST, "message needs a type")

    async def await_auth(self) -> bool:
        """The first frame must be ``auth`` with a valid token, within ``auth_timeout``."""
        try:
            msg = await self.ws.receive(timeout=self.config.auth_timeout)
        except TimeoutError:
            return False
        if msg.type != WSMsgType.TEXT:
            return False
        try:
            message = orjson.loads(msg.data)
        except orjson.JSONDecodeError:
            return False
        if not isinstance(message, dict) or message.get("type") != "auth":
            return False
        request_id = message.get("id") if is_request_id(message.get("id")) else None
        return await self.authenticate(message.get("token"), request_id)

    async def run(self) -> None:
        if not self.welcomed and not await self.await_auth():
            self.reject()
            await self.drain_until_closed()
            return
        async for msg in self.ws:
            if msg.type == WSMsgType.TEXT:
                await self.handle_text(msg.data)
            elif msg.type == WSMsgType.BINARY:
                self.report(ErrorCode.BAD_REQUEST, "binary frames are not supported; send JSON text")
            else:
                break

    async def drain_until_closed(self) -> None:
        """Let the closing handshake finish (the reader task must keep reading)."""
        async for _ in self.ws:
            pass


async def websocket_handler(request: web.Request) -> web.StreamResponse:
    config = request.app[config_key].websocket
    if not origin_allowed(request, config.allowed_origins):
        return error_response(403, "Origin not allowed")
    if URL_TOKEN_PARAMS & {key.lower() for key in request.query}:
        return error_response(401, "Tokens in the URL are refused; use the Authorization header or an auth message")
    header = request.headers.get("Authorization", "")
    ws = web.WebSocketResponse(
        heartbeat=config.heartbeat,
        max_msg_size=config.max_message_bytes,
        # No permessage-deflate: every message is encoded once for all its
        # subscribers, and sessions write ready-made uncompressed frames
        # (wsframe.text_frame) straight to the transport.
        compress=False,
        autoping=True,
    )
    await ws.prepare(request)
    if ws.compress:
        raise RuntimeError("the WebSocket negotiated compression; sessions write uncompressed frames")
    metrics = request.app[metrics_key]
    metrics.sockets.inc()
    connection = Connection(request, ws)
    sockets = request.app[sockets_key]
    sockets.add(connection.session)
    try:
        if header:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not await connection.authenticate(token.strip()):
                connection.reject()
                await connection.drain_until_closed()
                return ws
        await connection.run()
    finally:
        sockets.discard(connection.session)
        request.app[hub_key].drop_session(connection.session)
        await connection.session.stop()
        metrics.sockets.dec()
    return ws
