"""pushsvc as a process of its own, started from its command line the way a user starts it.

``ServerProcess`` waits for the line that says it is up ("listening", or a
demo's token line, printed after it) on the process's output (an event, not a sleep), keeps every line for assertions and failure messages, and
stops the process with SIGTERM (SIGKILL only if that hangs).
"""

from __future__ import annotations

import socket
import subprocess
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .contracts.checker import ContractChecker

REPO = Path(__file__).resolve().parent.parent
LISTENING = "pushsvc listening on "
TOKEN_LINE = "Token (12h): "


def stop_process(process: subprocess.Popen[Any], timeout: float, *, terminate: bool = True) -> None:
    """Let ``process`` end within ``timeout`` seconds, then SIGKILL it; reaped either way.

    ``terminate`` sends SIGTERM first; pass False when it was already told to
    exit some other way (a command on its stdin, say).
    """
    if process.poll() is not None:
        return
    if terminate:
        process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """A minimal environment: nothing of the caller's PUSHSVC_* settings, data under ``home``.

    HOME decides the data directory (``~/.local/share/pushsvc``): a test never
    touches the real one.
    """
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8", **extra}


class ServerProcess:
    def __init__(
        self, argv: Sequence[str], *, env: Mapping[str, str], cwd: Path | None = None, ready: str = LISTENING
    ) -> None:
        self.argv = list(argv)
        self.ready = ready
        self.env = dict(env)
        self.cwd = cwd
        self.lines: list[str] = []
        self.process: subprocess.Popen[str] | None = None
        self._settled = threading.Event()  # ready, or ended
        self._ended = threading.Event()

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    @property
    def token(self) -> str:
        """The token a demo prints for the sign-in form."""
        return next(line[len(TOKEN_LINE) :] for line in self.lines if line.startswith(TOKEN_LINE))

    def start(self, timeout: float = 30) -> ServerProcess:
        self.process = subprocess.Popen(
            self.argv,
            env=self.env,
            cwd=self.cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()
        self._settled.wait(timeout)
        if not any(line.startswith(self.ready) for line in self.lines):
            self.stop()
            raise AssertionError(f"{self.argv} printed no {self.ready!r} line within {timeout}s:\n{self.output}")
        return self

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            if line.startswith(self.ready):
                self._settled.set()
        self._ended.set()
        self._settled.set()  # a process that ended before it was ready: start() reports it

    def stop(self, timeout: float = 20) -> int:
        assert self.process is not None
        stop_process(self.process, timeout)
        self._ended.wait(5)
        if self.process.stdout is not None:
            self.process.stdout.close()
        return self.process.returncode

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def http_get(url: str, token: str | None = None, timeout: float = 10) -> tuple[int, bytes]:
    """GET ``url``; the status and the body (error statuses too), checked against the API contract."""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, headers, body = response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        status, headers, body = exc.code, exc.headers, exc.read()
    ContractChecker.current().response_received("GET", urllib.parse.urlsplit(url).path, status, headers, body)
    return status, body
