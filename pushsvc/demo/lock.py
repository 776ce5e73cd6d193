"""One ``--demo`` at a time on the embedded database, locked before any file is touched.

Each ``--demo`` on the embedded SQLite file starts from a fresh database, so
it deletes the previous one. Under a running demo that would leave the first
process serving a deleted file, so a start first takes an exclusive
``flock`` on ``<database>.lock`` and only then deletes anything. The lock is
held for as long as the returned file stays open (the whole run), and the
kernel drops it when the process ends, however it ends: there is never a
stale lock to clean up.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO


class DemoRunning(Exception):
    """Another process holds the demo database's lock; the message says which."""


def claim_demo_database(path: Path) -> IO[str]:
    """Lock ``path`` for this process, then delete the database files a previous demo left.

    Returns the open lock file: closing it (or exiting) releases the lock.
    Raises :class:`DemoRunning`, having touched nothing, when another
    process holds it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = open(f"{path}.lock", "a+", encoding="ascii")  # noqa: SIM115 - returned open: the open file is the lock
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        holder = lock.read().strip()
        lock.close()
        who = f" (pid {holder})" if holder.isdigit() else ""
        message = f"another pushsvc demo{who} is running on {path}; stop it first, or give --database"
        raise DemoRunning(message) from None
    except BaseException:
        lock.close()
        raise
    lock.truncate(0)
    lock.write(f"{os.getpid()}\n")
    lock.flush()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return lock
