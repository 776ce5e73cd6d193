"""``run.py`` as a child process: start-up output, a real listening port, signals, the log it wrote."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

RUN_PY = Path(__file__).resolve().parent.parent / "run.py"
SECRET = "s" * 40


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def environment(home: Path, **extra: str) -> dict[str, str]:
    """A clean environment: data under ``home``, a fixed HMAC secret, nothing from the caller's PUSHSVC_*."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PUSHSVC_")}
    env.update(HOME=str(home), XDG_DATA_HOME=str(home / "data"), PUSHSVC_AUTH_SECRET=SECRET, PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


class ServerProcess:
    """``python run.py ARGS``: wait for it to listen, stop it with a signal, read what it printed."""

    def __init__(self, process: asyncio.subprocess.Process, port: int) -> None:
        self.process = process
        self.port = port
        self.stdout: list[str] = []
        self._stderr = asyncio.create_task(process.stderr.read()) if process.stderr else None

    @classmethod
    async def start(cls, *args: str, env: dict[str, str], port: int | None = None) -> ServerProcess:
        port = port or free_port()
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(RUN_PY),
            *args,
            "--port",
            str(port),
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        return cls(process, port)

    async def listening(self, timeout: float = 20) -> None:
        """Read stdout until the "listening" line; raises if the process ends first."""
        assert self.process.stdout is not None
        async with asyncio.timeout(timeout):
            while True:
                line = (await self.process.stdout.readline()).decode()
                if not line:
                    raise AssertionError(f"exited {await self.process.wait()}: {await self.stderr()}")
                self.stdout.append(line)
                if line.startswith("pushsvc listening on"):
                    return

    async def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 20) -> int:
        if self.process.returncode is None:
            self.process.send_signal(sig)
        async with asyncio.timeout(timeout):
            return await self.process.wait()

    async def stderr(self) -> str:
        """Everything written to stderr (waits for the process to end)."""
        assert self._stderr is not None
        return (await self._stderr).decode()

    def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()


async def run_to_end(*args: str, env: dict[str, str], timeout: float = 30) -> tuple[int, str, str]:
    """``python run.py ARGS`` expected to exit by itself: (exit code, stdout, stderr)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(RUN_PY), *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        async with asyncio.timeout(timeout):
            out, err = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()
