"""A private ``redis-server`` for one test: a free port on 127.0.0.1, no persistence, its own directory.

Tests never touch a Redis they did not start (the machine's own on 6379 is
left alone). ``stop`` and ``start`` again keep the port, so instances that
were given the URL see an outage and then the same server back, empty, as a
restarted Redis without persistence would be.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis

START_TIMEOUT = 10.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="pushsvc-redis-"))
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start (or start again, on the same port) and wait until it answers PING."""
        assert self.process is None, "already running"
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed (.ci/run installs Debian's)"
        options = {
            "port": str(self.port),
            "bind": "127.0.0.1",
            "save": "",
            "appendonly": "no",
            "dir": str(self.dir),
            "logfile": str(self.dir / "redis.log"),
        }
        argv = [binary] + [item for key, value in options.items() for item in (f"--{key}", value)]
        self.process = subprocess.Popen(
            argv,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.process.poll() is not None:
                log = (self.dir / "redis.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"redis-server on port {self.port} exited: {log}")
            try:
                with redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=0.2) as client:
                    if client.ping():
                        return
            except redis.RedisError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server on port {self.port} did not answer PING")
            time.sleep(0.02)

    def stop(self) -> None:
        """Kill it (no save, no goodbye: an outage as clients see one)."""
        if self.process is None:
            return
        self.process.kill()
        self.process.wait(timeout=10)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def client(self) -> redis.Redis:
        """A synchronous client for the test's own checks."""
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
