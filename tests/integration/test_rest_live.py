"""REST from memory (restcache.py): the same bytes as a database read, never older than the freshness
bound, ETags that are stream positions, and no database statements per polling client.

Two services share each test's database: ``live`` answers from memory (``rest.live_ttl`` on) and
``cold`` reads the database on every request (``rest.live_ttl: 0``, as tests/integration/test_rest.py
runs the seed's contract). Their bodies for the same state must be byte-identical.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
import urllib.parse

import orjson
import pymysql
import pytest

from pushsvc.app import create_app
from pushsvc.demo.seed import SEED_CURRENT_JOB
from pushsvc.keys import hub_key, poller_key, rest_cache_key, store_key
from pushsvc.patch import merge_patch
from pushsvc.store.writes import for_engine, insert_row

from ..conftest import _server
from ..helpers import assert_error_body, assert_same_document, load_seed_json, make_config
from ..wsclient import LiveClient
from .test_rest import SPECIAL_NAMES, special_context

JOB_ID = SEED_CURRENT_JOB["id"]
LIST_QUERIES = [
    "",
    "?status=replicating",
    "?status=failed",
    "?status=discovered",
    "?limit=1",
    "?limit=1&offset=1",
    "?offset=5",
    "?offset=0",
    "?status=discovered&limit=2&offset=1",
    "?limit=1000",
    "?include=last_job",
    "?include=last_job&status=replicating&limit=1",
    "?include=last_job,last_job&offset=1",
]
POSITION = re.compile(r'^"(?P<epoch>[^":;]+):(?P<seq>\d+)(?P<filter>;[^"]*)?"$')


def live_config(url: str, *, margin: float = 30.0, ttl: float = 60.0, **sections):
    """Answers from memory; the generous default margin keeps manual ticks fresh for a whole test."""
    return make_config(url, rest={"live_ttl": ttl, "freshness_margin": margin}, **sections)


@pytest.fixture
async def pair(config, store, aiohttp_client):
    """(live app, live client, cold client) on one database; the live app's poller ticks only when told."""
    app = create_app(live_config(config.database.url), run_poller=False)
    live = await aiohttp_client(app)
    cold = await aiohttp_client(create_app(config, run_poller=False))
    return app, live, cold


async def execute(store, sql, args=()):
    async with store.transaction() as writer:
        return await writer.execute(sql, args)


def vm_path(name: str) -> str:
    return "/api/v1/vm-contexts/" + urllib.parse.quote(name, safe="")


async def fetch(client, path, headers, **extra):
    response = await client.get(path, headers={**headers, **extra})
    return response.status, response.headers.get("ETag"), await response.read()


async def warm(app, client, paths, headers) -> None:
    """Ask once (a database read that makes the topics live), then let the poller materialise them."""
    for path in paths:
        await client.get(path, headers=headers)
    await app[poller_key].poll_once()


def from_memory(app, etag: str | None) -> bool:
    match = POSITION.match(etag or "")
    return match is not None and match["epoch"] == app[hub_key].epoch


@pytest.mark.parametrize("engine", ["mariadb", "sqlite"], indirect=True)
async def test_live_bodies_are_the_database_reads_byte_for_byte(pair, seeded, auth_headers):
    app, live, cold = pair
    async with seeded.transaction() as writer:
        for index, name in enumerate(SPECIAL_NAMES):
            await insert_row(writer, "vm_replication_contexts", for_engine(special_context(name, index), seeded.engine))
    names = ["pgtest1", "pgtest2", *SPECIAL_NAMES]
    paths = ["/api/v1/vm-contexts" + query for query in LIST_QUERIES] + [vm_path(name) for name in names]
    await warm(app, live, paths, auth_headers)
    for path in paths:
        status, etag, body = await fetch(live, path, auth_headers)
        cold_status, cold_etag, cold_body = await fetch(cold, path, auth_headers)
        assert status == cold_status == 200, path
        assert from_memory(app, etag) and not from_memory(app, cold_etag), path
        assert body == cold_body, path
    # The seed's contract, checked on the answers from memory themselves.
    listing = orjson.loads((await fetch(live, "/api/v1/vm-contexts", auth_headers))[2])
    expected = load_seed_json("list-response.json")
    pgtest1 = next(item for item in listing["vm_contexts"] if item["vm_name"] == "pgtest1")
    assert_same_document(pgtest1, expected["vm_contexts"][0])
    detail = orjson.loads((await fetch(live, vm_path("pgtest1"), auth_headers))[2])
    assert_same_document(detail, load_seed_json("detail-response.json"))
    response = await live.get(vm_path("pgtest1"), headers=auth_headers)
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert response.headers["Cache-Control"] == "private, no-cache"


async def test_list_order_and_membership_follow_the_database_after_changes(pair, seeded, auth_headers):
    """New VMs sort into place (the database's collation), deleted ones go, and a name held by two
    vCenters (one dashboard entry, two list items) sends the list back to the database."""
    app, live, cold = pair
    await warm(app, live, ["/api/v1/vm-contexts"], auth_headers)
    async with seeded.transaction() as writer:
        for index, name in enumerate(["Zeta", "alpha", "Beta", "pgtest0", "pgtest10"]):
            await insert_row(writer, "vm_replication_contexts", for_engine(special_context(name, index), seeded.engine))
        await writer.execute("DELETE FROM vm_replication_contexts WHERE vm_name = 'pgtest2'")
    await app[poller_key].poll_once()
    for query in LIST_QUERIES:
        status, etag, body = await fetch(live, "/api/v1/vm-contexts" + query, auth_headers)
        assert from_memory(app, etag), query
        assert body == (await fetch(cold, "/api/v1/vm-contexts" + query, auth_headers))[2], query

    twin = {**special_context("alpha", 9), "context_id": "ctx-twin", "vcenter_host": "other-vcenter"}
    async with seeded.transaction() as writer:
        await insert_row(writer, "vm_replication_contexts", for_engine(twin, seeded.engine))
    await app[poller_key].poll_once()
    status, etag, body = await fetch(live, "/api/v1/vm-contexts", auth_headers)
    cold_body = (await fetch(cold, "/api/v1/vm-contexts", auth_headers))[2]
    assert not from_memory(app, etag) and body == cold_body
    assert [item["vm_name"] for item in orjson.loads(body)["vm_contexts"]].count("alpha") == 2


async def test_etag_is_the_stream_position_and_since_replays_exactly_the_later_deltas(
    pair, seeded, token, auth_headers
):
    app, live, cold = pair
    hub = app[hub_key]
    paths = {"vm-context/pgtest1": vm_path("pgtest1"), "vm-contexts": "/api/v1/vm-contexts"}
    await warm(app, live, paths.values(), auth_headers)
    snapshots = {}
    for topic, path in paths.items():
        status, etag, body = await fetch(live, path, auth_headers)
        assert etag == f'"{hub.epoch}:{hub.topics[topic].seq}"'
        snapshots[topic] = (etag, orjson.loads(body))
        # Unchanged: 304 on the position, with no body.
        status, again, body = await fetch(live, path, auth_headers, **{"If-None-Match": etag})
        assert (status, again, body) == (304, etag, b"")

    # Filters get their own ETags at the same position.
    etags = {(await fetch(live, "/api/v1/vm-contexts" + query, auth_headers))[1] for query in LIST_QUERIES}
    assert len(etags) == len(LIST_QUERIES) - 1  # "?offset=0" is the whole list
    assert all(from_memory(app, etag) for etag in etags)

    for step in range(3):
        async with seeded.transaction() as writer:
            await writer.execute(
                "UPDATE replication_jobs SET progress_percent = %s WHERE id = %s", [60.0 + step, JOB_ID]
            )
            await writer.execute(
                "UPDATE vm_replication_contexts SET cpu_count = %s WHERE vm_name = 'pgtest1'", [8 + step]
            )
        await app[poller_key].poll_once()

    client = await LiveClient.connect(live, token)
    for topic, path in paths.items():
        etag, document = snapshots[topic]
        match = POSITION.match(etag)
        since = {"epoch": match["epoch"], "seq": int(match["seq"])}
        client.docs[topic], client.seqs[topic] = document, since["seq"]  # what the client holds from REST
        await client.send({"type": "subscribe", "topic": topic, "id": topic, "since": since})
        replayed = [await client.next() for _ in range(3)]
        assert [(m["type"], m["seq"], m["id"]) for m in replayed] == [
            ("delta", since["seq"] + n, topic) for n in (1, 2, 3)
        ]
        status, etag, body = await fetch(live, path, auth_headers, **{"If-None-Match": etag})
        assert status == 200 and etag == f'"{hub.epoch}:{since["seq"] + 3}"'
        now = orjson.loads(body)
        assert now == orjson.loads((await fetch(cold, path, auth_headers))[2])
        if topic == "vm-contexts":
            # The list's items are the dashboard entries' context fields: keyed by name, the patches
            # bring them from the snapshot to now (the job summaries they add are not list fields).
            entries = {item["vm_name"]: item for item in document["vm_contexts"]}
            for message in replayed:
                entries = merge_patch(entries, message["patch"]["vm_contexts"])
            assert [{k: v for k, v in e.items() if k != "current_job"} for e in entries.values()] == now["vm_contexts"]
            assert now["vm_contexts"][0]["cpu_count"] == 10
        else:
            for message in replayed:
                document = merge_patch(document, message["patch"])
            assert document == now and document["current_job"]["progress_percent"] == 62.0
    await client.send({"type": "ping", "id": "end"})
    assert await client.next() == {"id": "end", "type": "pong"}  # nothing more: no duplicate


async def test_a_database_read_with_the_live_bytes_gets_the_position(pair, seeded, auth_headers):
    """Past the freshness bound REST reads the database; when the bytes equal the live document's,
    the ETag is still its position, so clients stay aligned with the stream."""
    app, live, cold = pair
    await warm(app, live, [vm_path("pgtest1")], auth_headers)
    app[hub_key].tick = None  # as after the database was reported unavailable: nothing confirmed
    status, etag, body = await fetch(live, vm_path("pgtest1"), auth_headers)
    assert status == 200 and etag == f'"{app[hub_key].epoch}:{app[hub_key].topics["vm-context/pgtest1"].seq}"'
    await execute(seeded, "UPDATE replication_jobs SET progress_percent = 99.5 WHERE id = %s", [JOB_ID])
    status, etag, body = await fetch(live, vm_path("pgtest1"), auth_headers)
    assert not from_memory(app, etag) and orjson.loads(body)["current_job"]["progress_percent"] == 99.5


async def test_unknown_and_removed_vms(pair, seeded, auth_headers):
    """An unknown name is read from the database each time and keeps nothing live; a VM deleted while
    live answers the seed's 404 from memory."""
    app, live, cold = pair
    for _ in range(2):
        response = await live.get(vm_path("nonexistent-vm"), headers=auth_headers)
        assert response.status == 404
        assert_error_body(await response.json(), "VM context not found for: nonexistent-vm")
    assert "vm-context/nonexistent-vm" not in app[hub_key].topics
    await warm(app, live, [vm_path("pgtest2")], auth_headers)
    await execute(seeded, "DELETE FROM vm_replication_contexts WHERE vm_name = 'pgtest2'")
    await app[poller_key].poll_once()
    response = await live.get(vm_path("pgtest2"), headers=auth_headers)
    assert response.status == 404
    assert_error_body(await response.json(), "VM context not found for: pgtest2")
    assert app[rest_cache_key].detail("pgtest2") is not None  # answered from memory
    long_name = "x" * 300  # longer than any topic name: always a database read
    assert (await live.get(vm_path(long_name), headers=auth_headers)).status == 404


async def test_a_write_shows_within_the_freshness_bound(config, seeded, aiohttp_client, auth_headers):
    """With the poller running: every answer includes every write committed before
    (request sent - interval - margin), and most answers come from memory."""
    app = create_app(live_config(config.database.url, margin=0.3))
    client = await aiohttp_client(app)
    cache, poller = app[rest_cache_key], app[poller_key]
    await client.get(vm_path("pgtest1"), headers=auth_headers)
    await poller.wait_for_tick(poller.ticks + 2)
    committed: list[tuple[float, float]] = []  # (time the commit had returned, value)
    stop = asyncio.Event()

    async def write() -> None:
        value = 10.0
        while not stop.is_set():
            value += 1
            await execute(seeded, "UPDATE replication_jobs SET progress_percent = %s WHERE id = %s", [value, JOB_ID])
            committed.append((time.time(), value))
            await asyncio.sleep(0.03)

    writer = asyncio.create_task(write())
    checked = live_answers = 0
    try:
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            sent = time.time()
            status, etag, body = await fetch(client, vm_path("pgtest1"), auth_headers)
            assert status == 200
            shown = orjson.loads(body)["current_job"]["progress_percent"]
            must_show = [value for at, value in committed if at < sent - cache.bound]
            if must_show:
                assert shown >= must_show[-1], (shown, must_show[-1], sent)
                checked += 1
            live_answers += from_memory(app, etag)
    finally:
        stop.set()
        await writer
    assert checked > 20 and live_answers > checked / 2
    # And the last write shows once a read that began after it has completed.
    last = committed[-1][1]
    await poller.wait_for_tick(poller.ticks + 2)
    assert (
        orjson.loads((await fetch(client, vm_path("pgtest1"), auth_headers))[2])["current_job"]["progress_percent"]
        == last
    )


async def test_database_down_answers_500_not_stale_data(seeded, db_proxy, aiohttp_client, token, auth_headers):
    proxy, url = db_proxy
    app = create_app(live_config(url, margin=0.1, poller={"interval": 0.1, "backoff_max": 0.3}))
    client = await aiohttp_client(app)
    poller = app[poller_key]
    viewer = await LiveClient.connect(client, token)
    await client.get(vm_path("pgtest1"), headers=auth_headers)
    await poller.wait_for_tick(poller.ticks + 2)
    status, etag, body = await fetch(client, vm_path("pgtest1"), auth_headers)
    assert status == 200 and from_memory(app, etag)

    await proxy.cut()
    assert (await viewer.expect("status"))["database"] == "unavailable"
    for path in (vm_path("pgtest1"), "/api/v1/vm-contexts"):
        response = await client.get(path, headers=auth_headers)
        assert response.status == 500
        assert_error_body(await response.json(), "Failed to retrieve VM context")

    await proxy.restore()
    assert (await viewer.expect("status"))["database"] == "ok"
    await poller.wait_for_tick(poller.ticks + 1)
    status, etag, body = await fetch(client, vm_path("pgtest1"), auth_headers)
    assert status == 200 and from_memory(app, etag)


async def test_no_answer_from_memory_past_the_bound_without_a_tick(seeded, db_proxy, aiohttp_client, auth_headers):
    """The poller has not yet noticed the outage (no tick, no status): once the last read is older
    than interval + margin, REST reads the database itself, which fails: 500."""
    proxy, url = db_proxy
    app = create_app(live_config(url, margin=0.05), run_poller=False)
    client = await aiohttp_client(app)
    await warm(app, client, [vm_path("pgtest1")], auth_headers)
    assert from_memory(app, (await fetch(client, vm_path("pgtest1"), auth_headers))[1])
    await proxy.cut()
    await asyncio.sleep(app[rest_cache_key].bound)  # the bound itself is what is tested: time must pass
    response = await client.get(vm_path("pgtest1"), headers=auth_headers)
    assert response.status == 500
    assert_error_body(await response.json(), "Failed to retrieve VM context")


async def test_a_lease_lasts_while_clients_poll_and_expires_after(config, seeded, aiohttp_client, auth_headers):
    ttl = 0.5
    app = create_app(live_config(config.database.url, ttl=ttl), run_poller=False)
    client = await aiohttp_client(app)
    broker, cache = app[hub_key].broker, app[rest_cache_key]
    started = time.monotonic()
    await warm(app, client, [vm_path("pgtest1"), "/api/v1/vm-contexts"], auth_headers)
    assert set(broker.watched()) == {"vm-context/pgtest1", "vm-contexts"} and cache.live_topics == 2
    # Polling the detail renews its lease; the list, asked once, runs out after its TTL.
    async with asyncio.timeout(10):
        while "vm-contexts" in broker.watched():
            await app[poller_key].poll_once()
            assert from_memory(app, (await fetch(client, vm_path("pgtest1"), auth_headers))[1])
            await asyncio.sleep(ttl / 5)
    assert time.monotonic() - started >= ttl
    assert list(broker.watched()) == ["vm-context/pgtest1"] and cache.live_topics == 1
    async with asyncio.timeout(10):
        while broker.watched():
            await asyncio.sleep(ttl / 5)
    assert cache.live_topics == 0 and not app[hub_key].topics


# -- database statements per login ----------------------------------------------------------------


@pytest.fixture
def service_login(database_url):
    """A MariaDB login of the service's own (SELECT on the test database), and its statement counter.

    ``INFORMATION_SCHEMA.USER_STATISTICS`` counts per login when ``userstat`` is on; setting it needs
    SUPER (root, here). It is switched on and left on: other processes on this shared server may be
    counting with it. Yields (url as that login, counter); the counter reads every statement
    (SELECT, UPDATE and OTHER commands: transaction control included).
    """
    name = urllib.parse.urlsplit(database_url).path.lstrip("/")
    user, password = f"pt_{secrets.token_hex(5)}", secrets.token_hex(12)
    server = _server()
    admin = pymysql.connect(**server, autocommit=True)
    cursor = admin.cursor()
    cursor.execute("SET GLOBAL userstat = 1")
    login = f"'{user}'@'{server['host']}'"
    cursor.execute(f"CREATE USER {login} IDENTIFIED BY %s", [password])
    cursor.execute(f"GRANT SELECT ON {name}.* TO {login}")

    def statements() -> int:
        cursor.execute(
            "SELECT SELECT_COMMANDS + UPDATE_COMMANDS + OTHER_COMMANDS FROM INFORMATION_SCHEMA.USER_STATISTICS "
            "WHERE USER = %s",
            [user],
        )
        row = cursor.fetchone()
        return 0 if row is None else int(row[0])

    yield f"mysql://{user}:{password}@{server['host']}:{server['port']}/{name}", statements
    cursor.execute(f"DROP USER IF EXISTS {login}")
    admin.close()


async def test_polling_clients_cost_the_database_nothing(seeded, service_login, aiohttp_client, auth_headers):
    """N clients polling live topics send no statement; the poller's ticks cost what one WebSocket
    viewer's do (5: contexts, history, disks, CBT, the read's ROLLBACK), whatever N is."""
    url, statements = service_login
    app = create_app(live_config(url), run_poller=False)
    client = await aiohttp_client(app)
    poller, store = app[poller_key], app[store_key]
    paths = [vm_path("pgtest1"), vm_path("pgtest2"), "/api/v1/vm-contexts", "/api/v1/vm-contexts?status=replicating"]
    await warm(app, client, paths, auth_headers)

    async def window(clients: int) -> tuple[int, int]:
        """(statements by the service's login, by the store's own count) over one tick and the polls."""
        login, own = statements(), store.statements
        await execute(
            seeded, "UPDATE replication_jobs SET progress_percent = progress_percent + 1 WHERE id = %s", [JOB_ID]
        )
        await poller.poll_once()

        async def poll_client() -> None:
            for _ in range(5):
                for path in paths:
                    status, etag, _ = await fetch(client, path, auth_headers)
                    assert status == 200 and from_memory(app, etag)

        await asyncio.gather(*(poll_client() for _ in range(clients)))
        return statements() - login, store.statements - own

    one = await window(1)
    many = await window(40)
    assert one == many == (5, 5)


async def test_no_statements_from_rest_for_topics_a_viewer_keeps_live(
    seeded, service_login, aiohttp_client, token, auth_headers
):
    """REST on topics a WebSocket viewer already watches: zero statements from the first request on."""
    url, statements = service_login
    app = create_app(live_config(url), run_poller=False)
    client = await aiohttp_client(app)
    viewer = await LiveClient.connect(client, token)
    await viewer.send({"type": "subscribe", "topic": "vm-context/pgtest1"})
    await viewer.send({"type": "ping", "id": "subscribed"})
    await viewer.expect("pong")
    await app[poller_key].poll_once()
    await viewer.expect("snapshot")
    before = statements()
    for _ in range(20):
        assert from_memory(app, (await fetch(client, vm_path("pgtest1"), auth_headers))[1])
    assert statements() == before


async def test_a_late_tick_is_waited_for_not_read_around(seeded, service_login, aiohttp_client, auth_headers):
    """Past the bound but with the database up, 30 clients wait for the poller's next read and get
    their answers from memory: the only statements are that read's."""
    url, statements = service_login
    app = create_app(live_config(url, margin=0.05), run_poller=False)
    client = await aiohttp_client(app)
    poller = app[poller_key]
    await warm(app, client, [vm_path("pgtest1")], auth_headers)
    await asyncio.sleep(app[rest_cache_key].bound)  # late: the bound is what is tested
    before = statements()
    polls = [asyncio.ensure_future(fetch(client, vm_path("pgtest1"), auth_headers)) for _ in range(30)]
    async with asyncio.timeout(5):
        while app[hub_key]._next_tick is None:
            await asyncio.sleep(0)  # until the first of them waits for the tick (then it is not live)
    await poller.poll_once()
    answers = await asyncio.gather(*polls)
    assert all(status == 200 and from_memory(app, etag) for status, etag, _ in answers)
    assert statements() - before == 5  # the tick's read, nothing else
