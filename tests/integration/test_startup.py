"""``run.py`` as a user runs it: a start-up failure is one line and exit code 2; start-up and shutdown say what happens."""

from __future__ import annotations

import datetime as dt
import signal
import socket
import urllib.parse

import aiohttp
import jwt
import pytest

from ..conftest import MYSQL_SERVER, _server
from ..contracts.checker import ContractChecker
from ..serverprocess import SECRET, ServerProcess, environment, free_port, run_to_end


def _token() -> str:
    now = dt.datetime.now(dt.UTC)
    return jwt.encode({"sub": "t", "exp": now + dt.timedelta(hours=1)}, SECRET, algorithm="HS256")


def _mysql(user: str, password: str, database: str) -> str:
    server = _server()
    return f"mysql://{user}:{urllib.parse.quote(password)}@{server['host']}:{server['port']}/{database}"


def assert_one_line_failure(code: int, stderr: str, *expected: str) -> str:
    """Exit code 2, no traceback, and exactly one error line, holding ``expected``."""
    assert code == 2, stderr
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith(("cannot start:", "configuration error:"))]
    assert len(errors) == 1, stderr
    assert stderr.rstrip().splitlines()[-1] == errors[0]
    for text in expected:
        assert text in errors[0], errors[0]
    return errors[0]


@pytest.mark.parametrize("port", ["99999", "0", "65536"])
async def test_a_port_out_of_range_names_server_port(tmp_path, port):
    code, _, stderr = await run_to_end("--port", port, env=environment(tmp_path))
    assert_one_line_failure(code, stderr, "server.port", port)


async def test_a_broken_config_file_names_file_line_and_key_but_not_the_secret(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text('auth:\n  algorithm: HS256\n  secret: "YamlSecretLEAK0123456789abcdefghijklmn\n')
    code, stdout, stderr = await run_to_end("--config", str(config), env=environment(tmp_path))
    assert_one_line_failure(code, stderr, str(config), "line 3", "(auth.secret)")
    assert "YamlSecretLEAK" not in stderr + stdout


async def test_a_port_in_use(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, stderr = await run_to_end("--port", str(port), env=environment(tmp_path))
    assert_one_line_failure(code, stderr, f"cannot listen on 127.0.0.1:{port}", "Address already in use")


async def test_demo_on_a_missing_database(tmp_path):
    url = MYSQL_SERVER.rstrip("/") + "/pushsvc_test_no_such_db"
    code, _, stderr = await run_to_end(
        "--demo", "--database", url, "--port", str(free_port()), env=environment(tmp_path)
    )
    assert_one_line_failure(code, stderr, "database.url", "Unknown database 'pushsvc_test_no_such_db' (1049)")


async def test_demo_with_a_wrong_password_never_shows_it(tmp_path):
    url = _mysql("pushsvc_nobody", "Pa55-w0rd-LEAK", "x")
    code, stdout, stderr = await run_to_end(
        "--demo", "--database", url, "--port", str(free_port()), env=environment(tmp_path)
    )
    line = assert_one_line_failure(code, stderr, "Access denied for user 'pushsvc_nobody'", "pushsvc_nobody:***@")
    assert "Pa55-w0rd-LEAK" not in stderr + stdout and "Pa55" not in line


async def test_an_unusable_embedded_database_path(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    url = f"sqlite://{blocker}/sub/pushsvc.db"
    code, _, stderr = await run_to_end("--database", url, "--port", str(free_port()), env=environment(tmp_path))
    assert_one_line_failure(code, stderr, "database.url", str(blocker))


async def test_start_up_and_shutdown_say_what_happens(tmp_path):
    """Empty embedded database: named and warned about; SIGTERM: sockets closed with 1001, counted, "stopped"."""
    server = await ServerProcess.start(env=environment(tmp_path))
    try:
        await server.listening()
        base = f"http://127.0.0.1:{server.port}"
        async with aiohttp.ClientSession(**ContractChecker.current().session_options()) as session:
            async with session.get(f"{base}/readyz") as response:
                assert response.status == 200
                assert (await response.json())["schema"] == "ok"
            ws = await session.ws_connect(f"{base}/api/v1/ws", headers={"Authorization": f"Bearer {_token()}"})
            assert (await ws.receive_json())["type"] == "welcome"
            code = await server.stop()
            msg = await ws.receive()
            assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 1001
            await ws.close()
    finally:
        server.kill()
    assert code == 0
    log = await server.stderr()
    database = tmp_path / "data" / "pushsvc" / "pushsvc.db"
    assert f"INFO pushsvc.startup: database: sqlite://{database}" in log
    assert f"WARNING pushsvc.startup: the embedded database sqlite://{database} holds no VM contexts" in log
    assert "--demo" in log
    assert "shutting down on SIGTERM: " in log and "1 WebSocket sessions open" in log
    assert "closed 1 WebSocket sessions (1001)" in log
    assert log.rstrip().endswith("INFO pushsvc.httpserver: stopped")
    assert "Traceback" not in log


async def test_an_unreachable_database_is_named_without_its_password(tmp_path):
    """Without --demo the service starts anyway, says why the database does not answer, and /readyz is 503."""
    url = _mysql("pushsvc_nobody", "Pa55-w0rd-LEAK", "x")
    server = await ServerProcess.start("--database", url, env=environment(tmp_path))
    try:
        await server.listening()
        async with aiohttp.ClientSession(**ContractChecker.current().session_options()) as session:
            async with session.get(f"http://127.0.0.1:{server.port}/readyz") as response:
                assert response.status == 503
        assert await server.stop(signal.SIGINT) == 0
    finally:
        server.kill()
    log = await server.stderr()
    assert "database: mysql://pushsvc_nobody:***@" in log
    assert "does not answer: Access denied for user 'pushsvc_nobody'" in log
    assert "shutting down on SIGINT" in log
    assert "Pa55-w0rd-LEAK" not in log + "".join(server.stdout)
