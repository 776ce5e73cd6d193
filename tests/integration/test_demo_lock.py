"""A second ``--demo`` leaves a running one alone (issue 8, B.3).

Both demos are real ``run.py`` processes with HOME in a temporary directory,
so the demo database is ``<tmp>/.local/share/pushsvc/demo.db``, never the
user's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ..processes import REPO, TOKEN_LINE, ServerProcess, clean_env, free_port, http_get

RUN = [sys.executable, str(REPO / "run.py")]


def open_files(pid: int) -> list[str]:
    """What the process's descriptors point at (``... (deleted)`` for an unlinked file)."""
    fds = Path(f"/proc/{pid}/fd")
    targets = []
    for fd in fds.iterdir():
        try:
            targets.append(os.readlink(fd))
        except OSError:
            continue
    return targets


def test_second_demo_refuses_in_one_line_and_leaves_the_first_running(tmp_path):
    env = clean_env(tmp_path, PUSHSVC_SERVER_SHUTDOWN_TIMEOUT="1")
    database = tmp_path / ".local" / "share" / "pushsvc" / "demo.db"
    port = free_port()
    with ServerProcess([*RUN, "--demo", "--no-simulator", "--port", str(port)], env=env, ready=TOKEN_LINE) as first:
        base = f"http://127.0.0.1:{port}"
        status, body = http_get(f"{base}/api/v1/vm-contexts", first.token)
        assert status == 200
        count = json.loads(body)["count"]
        inode = database.stat().st_ino

        # The same port and another port: the database is the one at stake either way.
        for second_port in (port, free_port()):
            second = subprocess.run(
                [*RUN, "--demo", "--no-simulator", "--port", str(second_port)],
                env=env,
                capture_output=True,
                text=True,
                timeout=30,
            )
            assert second.returncode == 2, second.stderr
            assert second.stdout == ""
            lines = second.stderr.splitlines()
            assert len(lines) == 1, second.stderr
            assert lines[0].startswith("error: another pushsvc demo")
            assert f"pid {first.process.pid}" in lines[0] and str(database) in lines[0]

        assert database.stat().st_ino == inode
        assert not [path for path in open_files(first.process.pid) if path.endswith("(deleted)")]
        assert http_get(f"{base}/readyz")[0] == 200
        status, body = http_get(f"{base}/api/v1/vm-contexts", first.token)
        assert status == 200 and json.loads(body)["count"] == count
        first.process.kill()  # no clean-up at all: the kernel still drops the lock
        first.process.wait()

    # The lock ended with its process: the next demo starts.
    with ServerProcess([*RUN, "--demo", "--no-simulator", "--port", str(free_port())], env=env) as third:
        assert third.process.pid != first.process.pid


def test_demo_token_command_leaves_a_running_demo_alone(tmp_path):
    """``--demo`` with a subcommand serves nothing, so it must not claim (or wipe) the demo database."""
    env = clean_env(tmp_path, PUSHSVC_SERVER_SHUTDOWN_TIMEOUT="1")
    database = tmp_path / ".local" / "share" / "pushsvc" / "demo.db"
    with ServerProcess([*RUN, "--demo", "--no-simulator", "--port", str(free_port())], env=env):
        inode = database.stat().st_ino
        token = subprocess.run([*RUN, "--demo", "token"], env=env, capture_output=True, text=True, timeout=30)
        assert token.returncode == 0 and token.stdout.count(".") == 2, token.stderr
        assert database.stat().st_ino == inode
