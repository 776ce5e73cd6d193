"""The live protocol's wire format (docs/protocol.md): the one module that builds frames.

Every frame the server sends is built here and returned already encoded
(orjson), so the hub can hand the same bytes to every subscriber. A reply to
a client message echoes the request's ``id`` as its first key, always through
:func:`with_request_id`, which prefixes encoded bytes instead of re-encoding.
The close codes, the error codes, the topic names and the parsing of what a
client sends (``id``, ``since``, topics) are tabled here too, so a grep for a
code or a frame type finds one place (as centrifuge keeps its disconnect
codes in ``disconnect.go``).

This module knows nothing about sockets, the hub or aiohttp.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

import orjson

RequestId = str | int

# -- topics ---------------------------------------------------------------------

DASHBOARD_TOPIC = "vm-contexts"
DETAIL_PREFIX = "vm-context/"
MAX_VM_NAME_LENGTH = 255


def is_valid_topic(name: object) -> bool:
    """``vm-contexts`` or ``vm-context/<vm_name>`` (1-255 characters of name)."""
    if not isinstance(name, str):
        return False
    if name == DASHBOARD_TOPIC:
        return True
    return name.startswith(DETAIL_PREFIX) and 0 < len(name) - len(DETAIL_PREFIX) <= MAX_VM_NAME_LENGTH


def detail_vm_name(topic: str) -> str | None:
    """The VM a ``vm-context/<name>`` topic is about; None for any other topic."""
    return topic[len(DETAIL_PREFIX) :] if topic.startswith(DETAIL_PREFIX) else None


def detail_topic(vm_name: str) -> str:
    """The topic of one VM's detail document."""
    return DETAIL_PREFIX + vm_name


# -- close codes ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Close:
    """A close code and the reason text sent with it (empty for the codes aiohttp sends itself)."""

    code: int
    reason: str


# aiohttp answers a client's close frame itself, with 1000 and no reason.
CLIENT_CLOSED = Close(1000, "")
GOING_AWAY = Close(1001, "server shutting down")
# Sent by wsconn for an unmasked client frame; aiohttp's reader sends 1002 itself
# (without a reason) for other framing errors: a bad opcode, reserved bits, a
# fragmented or oversized control frame, a continuation nothing started, a bad close code.
PROTOCOL_ERROR = Close(1002, "client frames must be masked")
# aiohttp's reader sends these two itself: a text frame that is not UTF-8, and a
# client message over websocket.max_message_bytes (ws.py makes aiohttp's limit exact).
INVALID_TEXT = Close(1007, "")
TOO_MANY_ERRORS = Close(1008, "too many bad messages")
MESSAGE_TOO_BIG = Close(1009, "")
INTERNAL_ERROR = Close(1011, "internal error")
TOO_SLOW = Close(1013, "client too slow")
AUTH_FAILED = Close(4001, "authentication required")
TOKEN_EXPIRED = Close(4002, "token expired")

CLOSE_CODES: tuple[Close, ...] = (
    CLIENT_CLOSED,
    GOING_AWAY,
    PROTOCOL_ERROR,
    INVALID_TEXT,
    TOO_MANY_ERRORS,
    MESSAGE_TOO_BIG,
    INTERNAL_ERROR,
    TOO_SLOW,
    AUTH_FAILED,
    TOKEN_EXPIRED,
)


# -- error codes (the ``code`` of an ``error`` frame; the socket stays open) -----


class ErrorCode(enum.StrEnum):
    BAD_REQUEST = "bad_request"
    UNKNOWN_TOPIC = "unknown_topic"
    TOO_MANY_SUBSCRIPTIONS = "too_many_subscriptions"
    RATE_LIMITED = "rate_limited"
    INTERNAL = "internal"


class ProtocolError(Exception):
    """A client message the server answers with an ``error`` frame."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


# -- reading what a client sends -------------------------------------------------


def is_request_id(value: object) -> bool:
    """A valid ``id``: a string or an integer (not a boolean)."""
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def parse_since(value: Any) -> tuple[str, int] | None:
    """A subscribe's ``since`` as (epoch, seq); None when absent."""
    if value is None:
        return None
    if (
        not isinstance(value, dict)
        or not isinstance(value.get("epoch"), str)
        or not isinstance(value.get("seq"), int)
        or isinstance(value.get("seq"), bool)
        or value["seq"] < 0
    ):
        raise ProtocolError(ErrorCode.BAD_REQUEST, 'since must be {"epoch": string, "seq": integer >= 0}')
    return value["epoch"], value["seq"]


# -- frames -------------------------------------------------------------------------


def with_request_id(frame: bytes, request_id: RequestId | None) -> bytes:
    """An encoded frame with ``"id": request_id`` as its first key (unchanged when None).

    The frame is not re-encoded: a snapshot encoded once can answer many
    requests, each with its own id.
    """
    if request_id is None:
        return frame
    return b'{"id":' + orjson.dumps(request_id) + b"," + frame[1:]


def welcome(
    session: str, epoch: str, expires_at: str | None, heartbeat_s: int, request_id: RequestId | None = None
) -> bytes:
    frame = {
        "type": "welcome",
        "session": session,
        "epoch": epoch,
        "expires_at": expires_at,
        "heartbeat_s": heartbeat_s,
    }
    return with_request_id(orjson.dumps(frame), request_id)


def pong(request_id: RequestId | None = None) -> bytes:
    return with_request_id(b'{"type":"pong"}', request_id)


def unsubscribed(topic: str, request_id: RequestId | None = None) -> bytes:
    return with_request_id(orjson.dumps({"type": "unsubscribed", "topic": topic}), request_id)


def error(code: ErrorCode, message: str, request_id: RequestId | None = None) -> bytes:
    return with_request_id(orjson.dumps({"type": "error", "code": code, "message": message}), request_id)


def snapshot(topic: str, epoch: str, seq: int, data: Any) -> bytes:
    """A topic's whole document at ``seq`` (add the request id with :func:`with_request_id`)."""
    return orjson.dumps({"type": "snapshot", "topic": topic, "epoch": epoch, "seq": seq, "data": data})


def delta(topic: str, epoch: str, seq: int, patch: Any) -> bytes:
    """One change of a topic: an RFC 7386 merge patch taking ``seq - 1`` to ``seq``."""
    return orjson.dumps({"type": "delta", "topic": topic, "epoch": epoch, "seq": seq, "patch": patch})


DATABASE_OK = "ok"
DATABASE_UNAVAILABLE = "unavailable"


@dataclass(frozen=True, slots=True)
class DatabaseStatus:
    """What a ``status`` frame says: ``ok`` or ``unavailable``, and since when (RFC 3339, UTC)."""

    database: str
    since: str

    @property
    def ok(self) -> bool:
        return self.database == DATABASE_OK


def status(state: DatabaseStatus) -> bytes:
    return orjson.dumps({"type": "status", "database": state.database, "since": state.since})
