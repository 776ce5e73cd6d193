"""protocol.py: frames, the request-id echo, the code tables and topic parsing."""

from __future__ import annotations

import orjson
import pytest

from pushsvc import protocol
from pushsvc.protocol import ErrorCode, ProtocolError


def test_every_reply_echoes_the_request_id_as_its_first_key():
    replies = [
        protocol.welcome("s1", "e1", "2026-01-01T00:00:00Z", 20, request_id=7),
        protocol.pong("hb"),
        protocol.unsubscribed("vm-contexts", 3),
        protocol.error(ErrorCode.BAD_REQUEST, "nope", "x"),
        protocol.with_request_id(protocol.snapshot("vm-contexts", "e1", 4, {"vm_contexts": {}}), 9),
        protocol.with_request_id(protocol.delta("vm-contexts", "e1", 5, {"a": 1}), "r"),
    ]
    for data, request_id in zip(replies, [7, "hb", 3, "x", 9, "r"]):
        message = orjson.loads(data)
        assert next(iter(message)) == "id" and message["id"] == request_id, data


def test_without_a_request_id_frames_have_no_id():
    for data in (protocol.pong(), protocol.unsubscribed("t"), protocol.error(ErrorCode.INTERNAL, "m")):
        assert "id" not in orjson.loads(data)
    frame = protocol.delta("t", "e", 1, None)
    assert protocol.with_request_id(frame, None) is frame


def test_frame_shapes():
    assert orjson.loads(protocol.welcome("s", "e", None, 20)) == {
        "type": "welcome",
        "session": "s",
        "epoch": "e",
        "expires_at": None,
        "heartbeat_s": 20,
    }
    assert protocol.pong() == b'{"type":"pong"}'
    assert orjson.loads(protocol.error(ErrorCode.RATE_LIMITED, "slow down")) == {
        "type": "error",
        "code": "rate_limited",
        "message": "slow down",
    }
    assert orjson.loads(protocol.snapshot("vm-context/a", "e", 3, None)) == {
        "type": "snapshot",
        "topic": "vm-context/a",
        "epoch": "e",
        "seq": 3,
        "data": None,
    }
    assert list(orjson.loads(protocol.delta("t", "e", 4, {"x": None}))) == ["type", "topic", "epoch", "seq", "patch"]
    status = protocol.DatabaseStatus(protocol.DATABASE_UNAVAILABLE, "2026-01-01T00:00:00Z")
    assert not status.ok
    assert orjson.loads(protocol.status(status)) == {
        "type": "status",
        "database": "unavailable",
        "since": "2026-01-01T00:00:00Z",
    }


def test_request_id_echo_does_not_reencode_the_frame():
    frame = protocol.snapshot("t", "e", 1, {"k": "v"})
    assert protocol.with_request_id(frame, 'q"uote') == b'{"id":"q\\"uote",' + frame[1:]


def test_close_code_table():
    codes = {close.code: close.reason for close in protocol.CLOSE_CODES}
    assert codes == {
        1000: "",  # aiohttp's answer to a client's close frame
        1001: "server shutting down",
        1002: "client frames must be masked",  # aiohttp sends 1002 without a reason for other framing errors
        1007: "",  # sent by aiohttp's reader
        1008: "too many bad messages",
        1009: "",  # sent by aiohttp's reader
        1011: "internal error",
        1013: "client too slow",
        4001: "authentication required",
        4002: "token expired",
    }


def test_error_code_table():
    assert [code.value for code in ErrorCode] == [
        "bad_request",
        "unknown_topic",
        "too_many_subscriptions",
        "rate_limited",
        "internal",
    ]


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("vm-contexts", True),
        ("vm-context/a", True),
        ("vm-context/" + "x" * 255, True),
        ("vm-context/" + "x" * 256, False),
        ("vm-context/", False),
        ("vm-contexts/", False),
        ("vm-context", False),
        (None, False),
        (7, False),
    ],
)
def test_topic_names(name, valid):
    assert protocol.is_valid_topic(name) is valid


def test_detail_topics_round_trip():
    assert protocol.detail_vm_name(protocol.detail_topic("pg/1")) == "pg/1"
    assert protocol.detail_vm_name(protocol.DASHBOARD_TOPIC) is None


@pytest.mark.parametrize("value", ["a", 0, -5, 2**70])
def test_request_ids_accepted(value):
    assert protocol.is_request_id(value)


@pytest.mark.parametrize("value", [True, False, None, 1.5, [], {}])
def test_request_ids_refused(value):
    assert not protocol.is_request_id(value)


def test_since_parsing():
    assert protocol.parse_since(None) is None
    assert protocol.parse_since({"epoch": "e", "seq": 0}) == ("e", 0)
    for bad in ({"epoch": "e"}, {"epoch": 1, "seq": 1}, {"epoch": "e", "seq": -1}, {"epoch": "e", "seq": True}, [1]):
        with pytest.raises(ProtocolError) as caught:
            protocol.parse_since(bad)
        assert caught.value.code is ErrorCode.BAD_REQUEST
