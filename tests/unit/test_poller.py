"""poller.Poller with fake stores: failed ticks are counted, cached rows are forgotten with their topics."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from pushsvc.broker import LocalBroker
from pushsvc.config import PollerConfig
from pushsvc.documents import DocumentBuilder
from pushsvc.metrics import Metrics
from pushsvc.poller import Poller
from pushsvc.protocol import DASHBOARD_TOPIC
from pushsvc.store import StoreUnavailable
from pushsvc.tasks import cancel_and_wait

from .fakes import RecordingConsumer


class FailingStore:
    """Every read fails with ``error``; ``reached`` is set at the ``wanted``-th read."""

    engine = "mariadb"

    def __init__(self, error: Exception, wanted: int) -> None:
        self.statements = 0
        self.error, self.wanted, self.reads = error, wanted, 0
        self.reached = asyncio.Event()

    @contextlib.asynccontextmanager
    async def snapshot(self) -> AsyncIterator[None]:
        self.reads += 1
        if self.reads == self.wanted:
            self.reached.set()
        raise self.error
        yield  # pragma: no cover - never reached: the read fails first


def errors(metrics: Metrics) -> float:
    return metrics.registry.get_sample_value("pushsvc_poll_errors_total") or 0.0


@pytest.mark.parametrize("error", [StoreUnavailable("connection refused"), RuntimeError("a bug")])
async def test_every_failed_tick_is_counted(error):
    broker, metrics = LocalBroker("e1"), Metrics()
    await broker.open(RecordingConsumer(), lambda: None)
    broker.watch(DASHBOARD_TOPIC)
    store = FailingStore(error, wanted=4)
    poller = Poller(store, DocumentBuilder(None), broker, PollerConfig(interval=0.1, backoff_max=0.1), metrics)
    task = asyncio.create_task(poller.run())
    await store.reached.wait()  # the 4th read has failed (it raised before this task resumed)
    await cancel_and_wait(task)
    assert errors(metrics) == store.reads == 4
