"""Real ``run.py`` processes for the multi-instance tests: start, SIGKILL, SIGTERM, restart, readiness.

Each instance is configured through environment variables only (an empty
config file), listens on its own free port, logs to its own file, and is
ready when ``/readyz`` says what the test waits for.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

from pushsvc.demo.seed import SEED_TIMEZONE

from .contracts.checker import ContractChecker
from .helpers import SECRET
from .redisserver import free_port

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 20.0


class Instance:
    def __init__(self, name: str, env: dict[str, str], workdir: Path) -> None:
        self.name = name
        self.port = free_port()
        self.env = env
        self.log_path = workdir / f"{name}.log"
        self.config_path = workdir / "empty.yaml"
        self.config_path.touch()
        self.process: subprocess.Popen | None = None
        self.http: aiohttp.ClientSession | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        assert self.process is None or self.process.poll() is not None, f"{self.name} is running"
        env = {
            **{key: value for key, value in os.environ.items() if not key.startswith("PUSHSVC_")},
            **self.env,
            "PUSHSVC_SERVER_PORT": str(self.port),
            "PYTHONUNBUFFERED": "1",
        }
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, str(ROOT / "run.py"), "--config", str(self.config_path)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )

    async def session(self) -> aiohttp.ClientSession:
        """An HTTP client bound to this instance (``ws_connect("/api/v1/ws")`` works on it)."""
        if self.http is None or self.http.closed:
            # Checked against the API contracts like every test client (tests/contracts/checker.py);
            # the benchmarks (tests/bench/bench_cluster.py) start instances outside pytest, unchecked.
            checker = ContractChecker.active
            options = checker.session_options() if checker is not None else {}
            self.http = aiohttp.ClientSession(base_url=self.base_url, **options)
        return self.http

    async def readyz(self) -> dict[str, Any] | None:
        """The /readyz body (any status code), or None while nothing answers."""
        http = await self.session()
        try:
            async with http.get("/readyz", timeout=aiohttp.ClientTimeout(total=2)) as response:
                return await response.json()
        except (aiohttp.ClientError, TimeoutError):
            return None

    async def wait_ready(
        self, check: Callable[[dict[str, Any]], bool] = lambda body: True, timeout: float = START_TIMEOUT
    ) -> dict[str, Any]:
        """Until /readyz answers and ``check(body)`` holds (the process must stay alive)."""
        async with asyncio.timeout(timeout):
            while True:
                if self.process is not None and self.process.poll() is not None:
                    raise AssertionError(f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}")
                body = await self.readyz()
                if body is not None and check(body):
                    return body
                await asyncio.sleep(0.05)

    async def metric(self, name: str) -> float:
        http = await self.session()
        async with http.get("/metrics") as response:
            for line in (await response.text()).splitlines():
                if line.startswith((name + " ", name + "{")):
                    return float(line.rsplit(" ", 1)[1])
        raise KeyError(name)

    def kill(self) -> None:
        """SIGKILL: the machine-loss case (no handover, no goodbye)."""
        self._signal(signal.SIGKILL)

    def terminate(self) -> None:
        """SIGTERM: a graceful stop (sockets closed with 1001, the lease handed over)."""
        self._signal(signal.SIGTERM)

    def _signal(self, signum: int) -> None:
        assert self.process is not None
        self.process.send_signal(signum)
        self.process.wait(timeout=15)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    async def close(self) -> None:
        if self.running:
            self.kill()
        if self.http is not None:
            await self.http.close()


class Cluster:
    """N instances sharing one database URL each (or their own) and one broker URL."""

    def __init__(self, database_urls: list[str], broker_url: str, **settings: str) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="pushsvc-cluster-"))
        self.instances = []
        for index, database_url in enumerate(database_urls):
            env = {
                "PUSHSVC_DATABASE_URL": database_url,
                "PUSHSVC_DATABASE_TIMEZONE": SEED_TIMEZONE,
                "PUSHSVC_AUTH_SECRET": SECRET,
                "PUSHSVC_BROKER_URL": broker_url,
                "PUSHSVC_SERVER_ACCESS_LOG": "false",
                "PUSHSVC_SERVER_SHUTDOWN_TIMEOUT": "2",
                **settings,
            }
            self.instances.append(Instance(f"instance-{index}", env, self.workdir))

    def __getitem__(self, index: int) -> Instance:
        return self.instances[index]

    def __iter__(self):
        return iter(self.instances)

    async def start(self, check: Callable[[dict[str, Any]], bool] = lambda body: True) -> None:
        for instance in self.instances:
            instance.start()
        await asyncio.gather(*(instance.wait_ready(check) for instance in self.instances))

    async def roles(self) -> dict[str, str | None]:
        bodies = await asyncio.gather(*(instance.readyz() for instance in self.instances if instance.running))
        running = [instance for instance in self.instances if instance.running]
        return {instance.name: (body or {}).get("role") for instance, body in zip(running, bodies)}

    async def leader(self, timeout: float = 10.0) -> Instance:
        """The one running instance whose /readyz says leader (waits until there is exactly one)."""
        async with asyncio.timeout(timeout):
            while True:
                roles = await self.roles()
                leaders = [name for name, role in roles.items() if role == "leader"]
                if len(leaders) == 1:
                    return next(i for i in self.instances if i.name == leaders[0])
                await asyncio.sleep(0.05)

    def logs(self) -> str:
        return "\n".join(f"--- {i.name}\n{i.log_tail(60)}" for i in self.instances)

    async def close(self) -> None:
        await asyncio.gather(*(instance.close() for instance in self.instances))
