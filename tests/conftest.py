"""Shared fixtures: a private MariaDB database per test (or a SQLite file), the app, tokens.

MariaDB comes from PUSHSVC_TEST_MYSQL (default mysql://root@127.0.0.1:3306);
each test creates its own database ``pushsvc_test_<random>`` and drops it.

Every client that ``aiohttp_client`` makes checks its traffic against the API
contracts (tests/contracts/checker.py): REST responses against the OpenAPI
document, WebSocket frames both ways against the AsyncAPI document. A test
that saw a violation fails, and the session ends with the counts.
"""

from __future__ import annotations

import os
import secrets
import urllib.parse

import pymysql
import pytest

from pushsvc.app import create_app
from pushsvc.config import Config, parse_database_url
from pushsvc.demo.seed import load_seed
from pushsvc.store import open_store

from .contracts.checker import ContractChecker
from .dbproxy import DatabaseProxy
from .helpers import make_config, make_token

MYSQL_SERVER = os.environ.get("PUSHSVC_TEST_MYSQL", "mysql://root@127.0.0.1:3306")
CONTRACTS = pytest.StashKey[ContractChecker]()
CALL_REPORT = pytest.StashKey[pytest.TestReport]()


def _server() -> dict:
    return parse_database_url(MYSQL_SERVER, require_database=False).server_args()


def _admin(sql: str) -> None:
    conn = pymysql.connect(**_server(), autocommit=True)
    try:
        with conn.cursor() as cursor:
            cursor.execute(sql)
    finally:
        conn.close()


def create_database() -> str:
    """A new empty MariaDB database; returns its URL."""
    name = f"pushsvc_test_{secrets.token_hex(6)}"
    _admin(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
    server = _server()
    auth = urllib.parse.quote(server["user"]) + (
        ":" + urllib.parse.quote(server["password"]) if server["password"] else ""
    )
    return f"mysql://{auth}@{server['host']}:{server['port']}/{name}"


def drop_database(url: str) -> None:
    """Drop a test database, first ending any session still using it.

    A test's app may still hold a connection (fixture teardown order is not
    guaranteed); a DROP waiting on its metadata lock would block this thread,
    and with it the event loop that must release the lock.
    """
    name = urllib.parse.urlsplit(url).path.lstrip("/")
    assert name.startswith("pushsvc_test_")
    conn = pymysql.connect(**_server(), autocommit=True)
    try:
        with conn.cursor() as cursor:
            cursor.execute(
                "SELECT id FROM information_schema.processlist WHERE db = %s AND id <> CONNECTION_ID()", [name]
            )
            for (session_id,) in cursor.fetchall():
                try:
                    cursor.execute(f"KILL {int(session_id)}")
                except pymysql.err.OperationalError:
                    pass  # already gone
            cursor.execute("SET SESSION lock_wait_timeout = 10")
            cursor.execute(f"DROP DATABASE IF EXISTS {name}")
    finally:
        conn.close()


@pytest.fixture(params=["mariadb"])
def engine(request):
    """The engine under test; the contract suite parametrizes it with both."""
    return request.param


@pytest.fixture
def database_url(engine, tmp_path):
    """An empty database of this test's own (MariaDB, or a SQLite file), dropped afterwards."""
    if engine == "sqlite":
        yield f"sqlite://{tmp_path / 'pushsvc.db'}"
        return
    url = create_database()
    yield url
    drop_database(url)


@pytest.fixture
def config(database_url) -> Config:
    return make_config(database_url)


@pytest.fixture
async def store(config):
    """A store of the test's own (the writer side: plays the appliance)."""
    store = open_store(config.database)
    await store.create_schema()
    yield store
    await store.close()


@pytest.fixture
async def seeded(store):
    await load_seed(store)
    return store


@pytest.fixture
async def client(config, store, aiohttp_client):
    """An HTTP client for a running app on a real socket (schema created, no rows)."""
    return await aiohttp_client(create_app(config))


@pytest.fixture
def token() -> str:
    return make_token()


@pytest.fixture
def auth_headers(token) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def db_proxy(database_url):
    """A cuttable TCP path to this test's MariaDB database; yields (proxy, url through it)."""
    parsed = urllib.parse.urlsplit(database_url)
    proxy = DatabaseProxy(parsed.hostname, parsed.port or 3306)
    await proxy.start()
    netloc = parsed.netloc.rsplit("@", 1)
    auth = netloc[0] + "@" if len(netloc) == 2 else ""
    yield proxy, urllib.parse.urlunsplit((parsed.scheme, f"{auth}127.0.0.1:{proxy.port}", parsed.path, "", ""))
    await proxy.cut()


@pytest.fixture
async def manual_app(config, store, aiohttp_client):
    """(app, client) with the poller not ticking by itself: tests call ``poll_once``."""
    app = create_app(config, run_poller=False)
    client = await aiohttp_client(app)
    return app, client


# -- a private MariaDB with the binary log on (the binlog source's tests) -------


@pytest.fixture(scope="session")
def binlog_template(tmp_path_factory):
    """System tables installed once per test run; each private server copies them."""
    from .binlog_server import install_template

    return install_template(tmp_path_factory.mktemp("mariadb-template"))


@pytest.fixture(scope="session")
def binlog_server(binlog_template, tmp_path_factory):
    """A private MariaDB with ``--log-bin --binlog-format=ROW``, started once per run.

    Tests may ``restart()`` it; it is stopped at the end of the run.
    """
    from .binlog_server import PrivateMariaDB

    server = PrivateMariaDB(tmp_path_factory.mktemp("mariadb-binlog"), binlog_template, server_id=71)
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def binlog_store(binlog_server):
    """A database of this test's own on the private binlog server, with the schema: (store, url)."""
    from pushsvc.config import DatabaseConfig

    name = f"pushsvc_test_{secrets.token_hex(6)}"
    binlog_server.execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
    url = binlog_server.database_url(name)
    store = open_store(DatabaseConfig(url=url))
    await store.create_schema()
    yield store, url
    await store.close()
    binlog_server.execute(f"DROP DATABASE IF EXISTS {name}")


# -- API contracts on every test's traffic -------------------------------------------


@pytest.fixture(scope="session")
def contracts(pytestconfig) -> ContractChecker:
    """The contract checker shared by the whole session (its counts are summed at the end)."""
    if CONTRACTS not in pytestconfig.stash:
        pytestconfig.stash[CONTRACTS] = ContractChecker.active = ContractChecker.load()
    return pytestconfig.stash[CONTRACTS]


@pytest.fixture
def aiohttp_client_cls(contracts):
    """pytest-aiohttp's hook for the client class: ours validates all traffic against the contracts."""
    return contracts.client_class


@pytest.fixture(autouse=True)
def contract_violations_fail_the_test(request, contracts):
    """A violation the test caught and swallowed still fails it (one it raised has failed it already)."""
    seen = len(contracts.violations)
    yield
    new = contracts.violations[seen:]
    report = request.node.stash.get(CALL_REPORT, None)
    if new and (report is None or report.passed):
        pytest.fail("traffic outside the API contract:\n  " + "\n  ".join(new), pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.stash[CALL_REPORT] = report
    return report


def pytest_sessionfinish(session, exitstatus):
    """A violation no test answered for (a browser frame seen after its test ended) fails the run."""
    checker = session.config.stash.get(CONTRACTS, None)
    if checker is not None and checker.violations and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, config):
    checker = config.stash.get(CONTRACTS, None)
    if checker is not None:
        terminalreporter.write_sep("-", "API contract checks")
        for line in checker.summary():
            terminalreporter.write_line(line)
        for violation in checker.violations[:20]:
            terminalreporter.write_line(f"  {violation}")
