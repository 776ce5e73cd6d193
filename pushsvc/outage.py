"""A run of failures logged as one line, with a count, instead of a line per failure.

During a database outage every REST read fails; a WARNING each would be
hundreds of lines a second under load. ``OutageLog`` writes one WARNING when
a run starts, a reminder with the count at most once per ``remind_every``
seconds while it lasts, and one INFO with the total when it ends.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable


class OutageLog:
    def __init__(
        self,
        log: logging.Logger,
        what: str,
        *,
        remind_every: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = log
        self._what = what
        self._remind_every = remind_every
        self._clock = clock
        self._failures = 0  # in the current run; 0 when there is no outage
        self._unreported = 0  # since the last line
        self._started = 0.0
        self._reported = 0.0

    @property
    def failing(self) -> bool:
        return self._failures > 0

    def failed(self, reason: str) -> None:
        """One more failure; ``reason`` must already be safe to log."""
        now = self._clock()
        self._failures += 1
        if self._failures == 1:
            self._started = self._reported = now
            self._log.warning("%s failing: %s (logged once; counted until one succeeds)", self._what, reason)
            return
        self._unreported += 1
        if now - self._reported >= self._remind_every:
            self._log.warning(
                "%s still failing: %d more failures in %.0f s (last: %s)",
                self._what,
                self._unreported,
                now - self._reported,
                reason,
            )
            self._reported, self._unreported = now, 0

    def succeeded(self) -> None:
        """The run (if any) is over: say how long it lasted and how many failed."""
        if not self._failures:
            return
        self._log.info("%s recovered: %d failed in %.1f s", self._what, self._failures, self._clock() - self._started)
        self._failures = self._unreported = 0
