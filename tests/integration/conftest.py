"""Fixtures of the integration tests beyond tests/conftest.py: a private Redis."""

from __future__ import annotations

import pytest

from ..redisserver import RedisServer


@pytest.fixture
def redis_server():
    """A private redis-server on a free port (started; ``stop()``/``start()`` simulate an outage)."""
    server = RedisServer()
    server.start()
    yield server
    server.close()
