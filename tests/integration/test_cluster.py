"""Real run.py processes on one private Redis and one MariaDB database, with clients spread over them.

Every instance logs in with a SELECT-only database user through its own
counting proxy, so "followers send no statements" is measured on the wire.
Documents are checked against REST answers of an in-process app on the same
database (root login, not counted).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import secrets
import time
import urllib.parse

import pymysql
import pytest

from pushsvc.config import parse_database_url
from pushsvc.keys import store_key

from ..conftest import _admin
from ..dbproxy import DatabaseProxy
from ..helpers import rest_dashboard, rest_detail
from ..instances import Cluster
from ..wsclient import LiveClient, ProtocolError
from .test_convergence import Appliance

SETTINGS = {"PUSHSVC_POLLER_INTERVAL": "0.25", "PUSHSVC_BROKER_LEASE_TTL": "1.0"}
CONVERGE_TIMEOUT = 10.0


class ClusterClient(LiveClient):
    """A LiveClient that also accepts a snapshot in another epoch (an instance fell back or rejoined).

    Deltas must still follow their topic's snapshot in the same epoch with seq exactly one higher.
    """

    def __init__(self, ws) -> None:
        super().__init__(ws)
        self.topic_epochs: dict[str, str] = {}

    def apply(self, message: dict) -> None:
        kind = message.get("type")
        if kind == "snapshot":
            self.docs[message["topic"]] = message["data"]
            self.seqs[message["topic"]] = message["seq"]
            self.topic_epochs[message["topic"]] = message["epoch"]
            return
        if kind == "delta" and message["epoch"] != self.topic_epochs.get(message["topic"], self.epoch):
            raise ProtocolError(f"delta in epoch {message['epoch']} after a snapshot in another: {message}")
        super().apply(message)

    def kinds(self, topic: str, after: int = 0) -> list[str]:
        return [m["type"] for m in self.log[after:] if m.get("topic") == topic and m["type"] in ("snapshot", "delta")]


@pytest.fixture
def readonly_user(database_url):
    """A MariaDB login that may only SELECT from the test database (the service must work with it)."""
    name = urllib.parse.urlsplit(database_url).path.lstrip("/")
    user, password = f"ro_{secrets.token_hex(4)}", secrets.token_hex(8)
    try:
        for host in ("127.0.0.1", "localhost"):
            _admin(f"CREATE USER '{user}'@'{host}' IDENTIFIED BY '{password}'")
            _admin(f"GRANT SELECT ON `{name}`.* TO '{user}'@'{host}'")
    except pymysql.err.MySQLError as exc:
        pytest.skip(f"cannot create a read-only user with the test login: {exc}")
    yield user, password
    for host in ("127.0.0.1", "localhost"):
        _admin(f"DROP USER IF EXISTS '{user}'@'{host}'")


@pytest.fixture
async def proxies(database_url):
    """Three counting proxies to the test's MariaDB (one per instance)."""
    server = parse_database_url(database_url)
    started = []
    for _ in range(3):
        proxy = DatabaseProxy(server.host, server.port)
        await proxy.start()
        started.append(proxy)
    yield started
    for proxy in started:
        await proxy.cut()


@pytest.fixture
async def make_cluster(database_url, readonly_user, proxies, redis_server, store):
    """``make_cluster(n, **settings)``: n started instances, each through its own proxy as the read-only user."""
    user, password = readonly_user
    name = urllib.parse.urlsplit(database_url).path.lstrip("/")
    made = []

    async def make(count: int = 3, **settings: str) -> Cluster:
        urls = [f"mysql://{user}:{password}@127.0.0.1:{proxy.port}/{name}" for proxy in proxies[:count]]
        cluster = Cluster(urls, redis_server.url, **{**SETTINGS, **settings})
        made.append(cluster)
        await cluster.start(lambda body: body.get("broker") == "ready")
        await cluster.leader()
        return cluster

    yield make
    for cluster in made:
        await cluster.close()


async def seed_vms(store, seed: int) -> Appliance:
    appliance = Appliance(store, random.Random(seed))
    async with store.transaction() as writer:
        for _ in range(6):
            await appliance.create_vm(writer)
        for vm in list(appliance.vms.values())[:4]:
            await appliance.start_job(writer, vm)
    return appliance


async def connect(instance, token, topics) -> ClusterClient:
    client = await ClusterClient.connect(await instance.session(), token)
    for topic in topics:
        await client.subscribe(topic)
    return client


async def expected_documents(rest, headers, topics) -> dict:
    documents = {}
    for topic in topics:
        if topic == "vm-contexts":
            documents[topic] = await rest_dashboard(rest, headers)
        else:
            documents[topic] = await rest_detail(rest, headers, topic.split("/", 1)[1])
    return documents


async def assert_converged(clients: list[ClusterClient], rest, headers) -> None:
    """Every client's documents equal fresh REST reads (each client gets until CONVERGE_TIMEOUT)."""
    topics = sorted({topic for client in clients for topic in client.docs})
    expected = await expected_documents(rest, headers, topics)

    def matches(client: ClusterClient) -> bool:
        for topic in client.docs:
            document = client.docs[topic]
            actual = None if document is None else client.document(topic)
            if actual != expected[topic]:
                return False
        return True

    for client in clients:
        async with asyncio.timeout(CONVERGE_TIMEOUT):
            while not matches(client):
                try:
                    await client.receive(timeout=1.0)
                except TimeoutError:
                    expected = await expected_documents(rest, headers, topics)  # a write landed after our read


async def write(appliance: Appliance, count: int) -> None:
    for _ in range(count):
        await appliance.random_write()


async def test_three_instances_one_poller_one_position(
    make_cluster, manual_app, token, auth_headers, proxies, redis_server
):
    _, rest = manual_app
    appliance = await seed_vms(manual_app[0][store_key], 20261129)
    cluster = await make_cluster(3)
    leader = await cluster.leader()
    followers = [instance for instance in cluster if instance is not leader]
    names = [vm.name for vm in appliance.vms.values()]
    details = [f"vm-context/{name}" for name in names[:3]]
    clients = []
    for index, instance in enumerate(cluster):
        clients.append(await connect(instance, token, ["vm-contexts"]))
        clients.append(await connect(instance, token, ["vm-contexts", details[index], details[(index + 1) % 3]]))
    assert len({client.epoch for client in clients}) == 1, "every instance welcomes with the cluster's epoch"
    epoch = clients[0].epoch
    await assert_converged(clients, rest, auth_headers)

    # Followers read nothing from the database for the live topics: not one statement, not one new
    # connection, after start-up (where every instance names its database and checks its schema once).
    follower_proxies = [proxies[cluster.instances.index(f)] for f in followers]
    leader_proxy = proxies[cluster.instances.index(leader)]

    def follower_traffic():
        return [(p.connections, sum(p.commands.values())) for p in follower_proxies]

    after_start_up = follower_traffic()
    leader_queries = leader_proxy.commands["query"]
    for _ in range(6):
        await write(appliance, 12)
        await assert_converged(clients, rest, auth_headers)
    assert leader_proxy.commands["query"] > leader_queries
    assert follower_traffic() == after_start_up, [p.commands for p in follower_proxies]

    # A client leaves one follower and resumes on the other with since: only the missed deltas.
    mover = clients[2]  # on instance 1
    target = cluster[2]
    held = dict(mover.docs), dict(mover.seqs)
    await mover.close()
    clients.remove(mover)
    await write(appliance, 15)
    await assert_converged(clients, rest, auth_headers)
    resumed = await ClusterClient.connect(await target.session(), token)
    resumed.docs, resumed.seqs = held
    resumed.topic_epochs = dict.fromkeys(held[0], epoch)
    for topic, seq in held[1].items():
        await resumed.send({"type": "subscribe", "topic": topic, "since": {"epoch": epoch, "seq": seq}})
    clients.append(resumed)
    await assert_converged(clients, rest, auth_headers)
    assert "snapshot" not in [m["type"] for m in resumed.log], "a resume on another instance is a replay"
    assert resumed.kinds("vm-contexts"), "the missed dashboard deltas were replayed"
    assert resumed.epoch == epoch

    # The database saw one poller's statements, whatever the number of instances.
    assert follower_traffic() == after_start_up
    for client in clients:
        await client.close()


class Writer:
    """Appliance writes in the background, one every ``pause`` seconds, until stopped."""

    def __init__(self, appliance: Appliance, pause: float = 0.05) -> None:
        self.appliance, self.pause, self.count = appliance, pause, 0
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            await self.appliance.random_write()
            self.count += 1
            await asyncio.sleep(self.pause)

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


async def receive_until(client: ClusterClient, predicate, timeout: float) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            try:
                await client.receive(timeout=timeout)
            except TimeoutError:
                pass


async def test_leader_sigkill_loses_nothing(make_cluster, manual_app, token, auth_headers):
    app, rest = manual_app
    appliance = await seed_vms(app[store_key], 20261130)
    cluster = await make_cluster(3)
    leader = await cluster.leader()
    followers = [instance for instance in cluster if instance is not leader]
    topics = ["vm-contexts", f"vm-context/{next(iter(appliance.vms.values())).name}"]
    clients = [await connect(instance, token, topics) for instance in followers for _ in range(2)]
    epoch = clients[0].epoch
    await assert_converged(clients, rest, auth_headers)
    marks = [len(client.log) for client in clients]

    writer = Writer(appliance)
    await receive_until(clients[0], lambda: writer.count >= 10, 10)
    killed_at = time.monotonic()
    leader.kill()
    new_leader = await cluster.leader(timeout=10)
    took_over = time.monotonic() - killed_at
    assert new_leader in followers
    seq_at_takeover = clients[0].seqs["vm-contexts"]
    await receive_until(clients[0], lambda: clients[0].seqs["vm-contexts"] > seq_at_takeover, 10)
    first_delta_after = time.monotonic() - killed_at
    await receive_until(clients[0], lambda: writer.count >= 40, 20)
    await writer.stop()
    await assert_converged(clients, rest, auth_headers)

    for client, mark in zip(clients, marks):
        kinds = [m["type"] for m in client.log[mark:] if m["type"] in ("snapshot", "delta")]
        assert "snapshot" not in kinds, "survivors' clients saw no snapshot: same epoch, no gap (seqs checked)"
        assert kinds.count("delta") > 5
        assert client.epoch == epoch
    # lease TTL 1.0 + one interval 0.25, with slack for a loaded 2-core machine.
    assert took_over < 4.0, took_over
    print(f"failover: lease taken after {took_over:.2f}s, next delta after {first_delta_after:.2f}s")


async def test_sigterm_hands_over_at_once(make_cluster, manual_app, token, auth_headers):
    app, rest = manual_app
    appliance = await seed_vms(app[store_key], 20261201)
    # A long TTL: a handover that waited for expiry would take 10 s.
    cluster = await make_cluster(2, PUSHSVC_BROKER_LEASE_TTL="10.0")
    leader = await cluster.leader()
    follower = next(instance for instance in cluster if instance is not leader)
    on_leader = await connect(leader, token, ["vm-contexts"])
    on_follower = await connect(follower, token, ["vm-contexts"])
    stopped_at = time.monotonic()
    leader.terminate()
    assert await on_leader.expect_closed() == 1001
    assert await cluster.leader(timeout=5) is follower
    assert time.monotonic() - stopped_at < 5.0
    mark = len(on_follower.log)
    await write(appliance, 5)
    await assert_converged([on_follower], rest, auth_headers)
    assert "snapshot" not in on_follower.kinds("vm-contexts", mark)
    assert "lease released" in leader.log_text()


async def test_redis_outage_falls_back_and_rejoins(make_cluster, manual_app, token, auth_headers, redis_server):
    app, rest = manual_app
    appliance = await seed_vms(app[store_key], 20261202)
    cluster = await make_cluster(2)
    topics = ["vm-contexts", f"vm-context/{next(iter(appliance.vms.values())).name}"]
    clients = [await connect(instance, token, topics) for instance in cluster]
    epoch = clients[0].epoch
    await assert_converged(clients, rest, auth_headers)

    outage_started = time.monotonic()
    redis_server.stop()
    for instance in cluster:
        body = await instance.wait_ready(lambda body: body.get("broker") == "degraded", timeout=10)
        assert body["status"] == "ok" and body["role"] == "local"
        assert await instance.metric("pushsvc_broker_ready") == 0
    # Each instance serves its own clients from its own poller, in a local epoch.
    await write(appliance, 10)
    await assert_converged(clients, rest, auth_headers)
    local_epochs = [client.topic_epochs["vm-contexts"] for client in clients]
    assert epoch not in local_epochs and local_epochs[0] != local_epochs[1]

    # The outage lasts 10 s (the scenario) while writes keep coming; clients stay current meanwhile.
    writer = Writer(appliance, pause=0.1)
    await asyncio.sleep(max(0.0, 10 - (time.monotonic() - outage_started)))
    await writer.stop()
    await assert_converged(clients, rest, auth_headers)
    redis_server.start()
    for instance in cluster:
        await instance.wait_ready(lambda body: body.get("broker") == "ready", timeout=15)
    await cluster.leader()
    await write(appliance, 10)
    await assert_converged(clients, rest, auth_headers)
    rejoined = {client.topic_epochs["vm-contexts"] for client in clients}
    assert len(rejoined) == 1 and rejoined.isdisjoint(local_epochs), "one cluster epoch again"
    for instance in cluster:
        log = instance.log_text()
        assert log.count("Redis at") == 1, "the outage is logged once"
        assert log.count("joined the cluster") == 2, "the first join and the rejoin"
        assert await instance.metric("pushsvc_broker_ready") == 1
