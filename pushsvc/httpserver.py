"""Serving an app on a socket: aiohttp's runner, with the edge's policy for malformed requests.

aiohttp answers a request it cannot parse (a bad request line, a header over
8,190 bytes, a bad header) with a 400 whose body quotes the offending bytes,
and logs an ERROR with a traceback quoting them too: for an over-long
``Authorization`` header that is the start of a token, in the log and in the
body, and any client can flood the error log with them. Here such a request
gets the service's JSON 400 naming only the kind of problem, and one DEBUG
line (the access log still records the request at INFO).

``serve`` runs the app until SIGINT or SIGTERM and logs each step of the
shutdown; a failure to listen is a :class:`StartupError` naming the cause.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import (
    BadHttpMethod,
    BadStatusLine,
    HttpProcessingError,
    InvalidHeader,
    InvalidURLError,
    LineTooLong,
)

from .errors import error_response
from .keys import sockets_key
from .logsafe import printable

log = logging.getLogger(__name__)

RequestHandlerFunction = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]

# Most specific first: the kind of problem, in words that quote nothing the client sent.
PARSE_ERRORS: tuple[tuple[type[HttpProcessingError], str], ...] = (
    (LineTooLong, "request line or header too long"),
    (BadHttpMethod, "invalid method"),
    (BadStatusLine, "invalid request line"),
    (InvalidURLError, "invalid request target"),
    (InvalidHeader, "invalid header"),
    (HttpProcessingError, "malformed request"),
)


class StartupError(Exception):
    """The service could not start; the message names the setting or the cause."""


def describe_parse_error(exc: HttpProcessingError) -> str:
    return next(text for kind, text in PARSE_ERRORS if isinstance(exc, kind))


class ConnectionHandler(web.RequestHandler):
    """aiohttp's per-connection handler; malformed requests are answered without quoting them."""

    __slots__ = ()

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if not isinstance(exc, HttpProcessingError):
            return super().handle_error(request, status, exc, message)
        reason = describe_parse_error(exc)
        log.debug("bad request from %s: %s (%s)", printable(request.remote or "-", 64), reason, type(exc).__name__)
        if request.writer.output_size > 0:
            raise ConnectionError("response already started")  # as aiohttp does: the connection just closes
        response = error_response(status if 400 <= status < 500 else 400, f"Bad request: {reason}")
        response.force_close()
        return response

    def log_exception(self, *args: Any, **kwargs: Any) -> None:
        # A request body that breaks off or is badly framed surfaces here, outside handle_error.
        exc = kwargs.get("exc_info")
        if isinstance(exc, HttpProcessingError):
            log.debug("bad request body: %s (%s)", describe_parse_error(exc), type(exc).__name__)
            return
        super().log_exception(*args, **kwargs)


class _Server(web.Server):
    def __call__(self) -> web.RequestHandler:
        return ConnectionHandler(self, loop=self._loop, **self._kwargs)


class Runner(web.AppRunner):
    """``web.AppRunner`` whose connections use :class:`ConnectionHandler`, and that refuses unknown expectations."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # aiohttp takes no parameter for the handler class; the server it built
        # is given a subclass that differs only in the handler it creates.
        server.__class__ = _Server
        server.request_handler = _refusing_unknown_expectations(server.request_handler)
        return server


def _refusing_unknown_expectations(handler: RequestHandlerFunction) -> RequestHandlerFunction:
    """``Expect`` other than ``100-continue`` gets the service's 417 before routing.

    aiohttp's own check runs before any middleware, answers with the header's
    value in the body, and fails with a 500 and an ERROR traceback when the
    value is not valid UTF-8.
    """

    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        expect = request.headers.get("Expect")
        if expect is not None and expect.lower() != "100-continue":
            response = error_response(417, "Expectation Failed: only 100-continue is supported")
            response.force_close()
            return response
        return await handler(request)

    return handle


async def serve(
    app: web.Application,
    host: str,
    port: int,
    *,
    access_log: logging.Logger | None,
    shutdown_timeout: float,
    on_listening: Callable[[], None] = lambda: None,
) -> None:
    """Start ``app``, listen on ``host:port``, run until SIGINT or SIGTERM, then shut down."""
    runner = Runner(app, access_log=access_log, shutdown_timeout=shutdown_timeout, handle_signals=False)
    stop = _StopSignal()
    try:
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as exc:
            reason = os.strerror(exc.errno) if exc.errno and exc.errno > 0 else exc.strerror or str(exc)
            raise StartupError(f"server.host/server.port: cannot listen on {host}:{port}: {reason}") from None
        on_listening()
        signal_name = await stop.received
        server = runner.server
        log.info(
            "shutting down on %s: %d HTTP connections, %d WebSocket sessions open",
            signal_name,
            len(server.connections) if server else 0,
            len(app[sockets_key]),
        )
    finally:
        try:
            await runner.cleanup()
        finally:
            stop.remove()
    log.info("stopped")


class _StopSignal:
    """SIGINT and SIGTERM resolve ``received`` with the signal's name; a second one is ignored."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.received: asyncio.Future[str] = loop.create_future()
        for number in self.SIGNALS:
            loop.add_signal_handler(number, self._set, number)

    def _set(self, number: signal.Signals) -> None:
        if not self.received.done():
            self.received.set_result(number.name)

    def remove(self) -> None:
        loop = asyncio.get_running_loop()
        for number in self.SIGNALS:
            loop.remove_signal_handler(number)
