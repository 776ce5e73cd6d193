"""poller.source: poll by default; binlog makes the interval a 10 s safety net unless it is set."""

from __future__ import annotations

import pytest

from pushsvc.config import ConfigError, build_config


@pytest.mark.parametrize(
    "raw, env, expected",
    [
        ({}, {}, ("poll", 1.0)),
        ({"poller": {"source": "binlog"}}, {}, ("binlog", 10.0)),
        ({}, {"PUSHSVC_POLLER_SOURCE": "binlog"}, ("binlog", 10.0)),
        ({"poller": {"source": "binlog", "interval": None}}, {}, ("binlog", 10.0)),
        ({"poller": {"source": "binlog", "interval": 2}}, {}, ("binlog", 2.0)),
        ({"poller": {"source": "binlog"}}, {"PUSHSVC_POLLER_INTERVAL": "0.5"}, ("binlog", 0.5)),
        ({"poller": {"source": "poll", "interval": None}}, {}, ("poll", 1.0)),
    ],
)
def test_source_and_its_interval(raw, env, expected):
    poller = build_config(raw, env).poller
    assert (poller.source, poller.interval) == expected


def test_an_unknown_source_names_the_key():
    with pytest.raises(ConfigError, match=r"poller\.source: must be poll or binlog, got 'wal'"):
        build_config({}, {"PUSHSVC_POLLER_SOURCE": "wal"})
