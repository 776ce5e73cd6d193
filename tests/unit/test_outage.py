"""OutageLog: one line when failures start, a counted reminder a minute, one line when they stop."""

from __future__ import annotations

import logging

from pushsvc.outage import OutageLog


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _lines(caplog) -> list[tuple[int, str]]:
    return [(record.levelno, record.getMessage()) for record in caplog.records if record.name == "test.outage"]


def test_a_run_of_failures_is_one_warning_and_one_recovery(caplog):
    clock = Clock()
    outage = OutageLog(logging.getLogger("test.outage"), "reads", clock=clock)
    with caplog.at_level(logging.INFO):
        outage.succeeded()  # no outage: nothing to say
        for _ in range(267):
            outage.failed("Unknown database 'x' (1049)")
            clock.now += 0.045
        outage.succeeded()
        outage.succeeded()
    lines = _lines(caplog)
    assert len(lines) == 2
    assert lines[0] == (
        logging.WARNING,
        "reads failing: Unknown database 'x' (1049) (logged once; counted until one succeeds)",
    )
    assert lines[1][0] == logging.INFO and lines[1][1].startswith("reads recovered: 267 failed in 12.0 s")
    assert not outage.failing


def test_a_long_outage_is_reminded_with_the_count(caplog):
    clock = Clock()
    outage = OutageLog(logging.getLogger("test.outage"), "reads", remind_every=60, clock=clock)
    with caplog.at_level(logging.INFO):
        for _ in range(150):  # one a second for 150 s
            outage.failed("timed out")
            clock.now += 1
    lines = [message for _, message in _lines(caplog)]
    assert len(lines) == 3
    assert lines[1] == "reads still failing: 60 more failures in 60 s (last: timed out)"
    assert lines[2] == "reads still failing: 60 more failures in 60 s (last: timed out)"
    assert outage.failing


def test_a_new_outage_is_logged_again(caplog):
    outage = OutageLog(logging.getLogger("test.outage"), "reads", clock=Clock())
    with caplog.at_level(logging.INFO):
        outage.failed("a")
        outage.succeeded()
        outage.failed("b")
    assert [message.split(":")[0] for _, message in _lines(caplog)] == [
        "reads failing",
        "reads recovered",
        "reads failing",
    ]
