#!/usr/bin/env python3
"""Run a command against a private MariaDB of its own: ``python tests/bench/private_mariadb.py CMD...``.

Starts a throwaway ``mariadbd`` (``tests/binlog_server.py``: its own data
directory, socket, port and ``--tmpdir``, root without a password, no binary
log), runs the command with ``PUSHSVC_BENCH_MYSQL`` pointing at it, and stops
it. For benchmarks whose load should not fall on a MariaDB that others
share, e.g.::

    python tests/bench/private_mariadb.py python tests/bench/bench_rest.py --only load --cold-clients 1000
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.binlog_server import PrivateMariaDB, install_template  # noqa: E402


def main() -> int:
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    with tempfile.TemporaryDirectory(prefix="pushsvc-bench-mariadb-") as tmp:
        template = install_template(Path(tmp) / "template")
        server = PrivateMariaDB(Path(tmp) / "server", template, log_bin=False, server_id=5)
        server.start()
        try:
            env = dict(os.environ, PUSHSVC_BENCH_MYSQL=server.url)
            return subprocess.run(sys.argv[1:], env=env, cwd=ROOT).returncode
        finally:
            server.stop()


if __name__ == "__main__":
    sys.exit(main())
