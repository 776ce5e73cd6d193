"""The WebSocket endpoint ``/api/v1/ws`` (protocol.md): origin check, auth, read loop.

Only this handler reads from the socket; everything it answers goes through
the session's outbox so that replies, snapshots and deltas keep their order
(pings too: the session answers them). The connection under aiohttp is a
``wsconn.WebSocket``: its link refuses unmasked frames, beats the heartbeat
and closes lingering. When the handler returns, the session's tasks and
timers and the connection itself are gone, and nothing it leaves behind
holds a reference cycle (see ``_forget_tracebacks``).
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import logging
import time
from typing import Any

import orjson
from aiohttp import WSMessage, WSMsgType, web

from . import protocol
from .auth import Claims, TokenError
from .errors import error_response
from .keys import config_key, hub_key, metrics_key, public_view_key, sockets_key, verifier_key
from .protocol import (
    INTERNAL_ERROR,
    PROTOCOL_ERROR,
    ErrorCode,
    ProtocolError,
    RequestId,
    is_request_id,
    is_valid_topic,
    parse_since,
)
from .proxy import is_public_origin
from .session import Session
from .wsconn import WebSocket

log = logging.getLogger(__name__)

URL_TOKEN_PARAMS = {"token", "access_token", "jwt", "auth", "bearer"}
# What aiohttp waits for the client's answer to a close frame before it ends the
# connection (then wsconn's lingering close gives the client CLOSE_GRACE more).
CLOSE_REPLY_TIMEOUT = 1.0


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

    def __init__(self, request: web.Request, ws: WebSocket) -> None:
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

    async def receive(self) -> WSMessage:
        """The next message that is not a ping or a pong (pings are answered through the session)."""
        while True:
            msg = await self.ws.receive()
            if msg.type == WSMsgType.PING:
                self.session.pong(msg.data)
            elif msg.type != WSMsgType.PONG:
                return msg

    async def await_auth(self, deadline: float) -> bool:
        """The first message must be ``auth`` with a valid token, before ``deadline`` (loop time).

        The deadline is absolute: pings, pongs or a message trickling in do not postpone it.
        """
        try:
            async with asyncio.timeout_at(deadline):
                msg = await self.receive()
        except TimeoutError:
            return False
        if msg.type == WSMsgType.CLOSE:
            self.session.close(protocol.CLIENT_CLOSED)  # a client leaving is answered as such
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

    async def run(self, auth_deadline: float) -> None:
        """Read and handle messages until the socket closes, or until we decide to close it.

        Once the session is closing, nothing more the client sends is handled
        (aiohttp's close reads and drops it while it waits for the client's
        close frame), so the close code we chose is the one the client gets.
        """
        if not self.welcomed and not await self.await_auth(auth_deadline):
            self.reject()
            return
        while not self.session.closing:
            msg = await self.receive()
            if msg.type == WSMsgType.TEXT:
                await self.handle_text(msg.data)
            elif msg.type == WSMsgType.BINARY:
                self.report(ErrorCode.BAD_REQUEST, "binary frames are not supported; send JSON text")
            elif msg.type == WSMsgType.CLOSE:
                self.session.close(protocol.CLIENT_CLOSED)
            else:
                return  # closed: by us, or by aiohttp on a framing error (1002, 1007, 1009), or the connection went


async def websocket_handler(request: web.Request) -> web.StreamResponse:
    config = request.app[config_key].websocket
    if not origin_allowed(request, config.allowed_origins):
        return error_response(403, "Origin not allowed")
    if URL_TOKEN_PARAMS & {key.lower() for key in request.query}:
        return error_response(401, "Tokens in the URL are refused; use the Authorization header or an auth message")
    header = request.headers.get("Authorization", "")
    ws = WebSocket(
        # aiohttp refuses a message of max_msg_size bytes or more; the contract refuses only larger ones.
        max_msg_size=config.max_message_bytes + 1,
        # No permessage-deflate: every message is encoded once for all its
        # subscribers, and sessions write ready-made uncompressed frames
        # (wsframe.text_frame) straight to the transport.
        compress=False,
        # A client's close is answered by the session (1000), after the replies to what it sent before.
        autoclose=False,
        autoping=False,  # the session answers pings, coalesced (see Connection.receive)
        heartbeat=None,  # the link's heartbeat instead (wsconn.Link)
        ping_interval=config.heartbeat,
        timeout=CLOSE_REPLY_TIMEOUT,
    )
    auth_deadline = asyncio.get_running_loop().time() + config.auth_timeout
    await ws.prepare(request)
    if ws.compress:
        raise RuntimeError("the WebSocket negotiated compression; sessions write uncompressed frames")
    metrics = request.app[metrics_key]
    metrics.sockets.inc()
    connection = Connection(request, ws)
    if ws.link is not None:
        ws.link.on_protocol_error(lambda: connection.session.close(PROTOCOL_ERROR))
    sockets = request.app[sockets_key]
    sockets.add(connection.session)
    try:
        if header:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not await connection.authenticate(token.strip()):
                connection.reject()
                return ws
        await connection.run(auth_deadline)
    except Exception:  # a bug of ours: never an HTTP 500 into an upgraded stream
        log.exception("WebSocket handler failed on session %s", connection.session.id)
        connection.session.close(INTERNAL_ERROR)
        await connection.session.closed()
    finally:
        # Shielded: a server that cancels handlers when their client goes
        # (aiohttp's handler_cancellation) must not cut the clean-up short.
        await asyncio.shield(_release(request.app, connection))
    return ws


async def _release(app: web.Application, connection: Connection) -> None:
    """Everything of one socket ends: the hub forgets it, its tasks and timers stop, the connection goes."""
    session, ws = connection.session, connection.ws
    app[sockets_key].discard(session)
    app[hub_key].drop_session(session)
    await session.closed()  # a close we started: the queue flushed, the close frame sent (2 s + 2 s at most)
    await session.stop()
    await ws.connection_closed()
    app[metrics_key].sockets.dec()
    _forget_tracebacks(ws.exception())


def _forget_tracebacks(exc: BaseException | None) -> None:
    """Drop the tracebacks of the error a closed socket keeps (``ws.exception()``).

    Their frames hold the response that holds the error: a reference cycle
    that only the cyclic collector would free, with the whole connection in it.
    """
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        exc.__traceback__ = None
        exc = exc.__cause__ or exc.__context__
