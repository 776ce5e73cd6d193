"""The database goes away during a stream and comes back: clients stay connected and converge."""

from __future__ import annotations

from pushsvc.app import create_app
from pushsvc.demo.seed import SEED_CURRENT_JOB
from pushsvc.keys import hub_key, poller_key

from ..helpers import make_config, rest_dashboard, rest_detail
from ..wsclient import LiveClient


async def test_status_frames_and_convergence_across_an_outage(aiohttp_client, seeded, db_proxy, token, auth_headers):
    proxy, url = db_proxy
    app = create_app(make_config(url, poller={"interval": 0.1, "backoff_max": 0.3}))
    client = await aiohttp_client(app)
    live = await LiveClient.connect(client, token)
    await live.subscribe("vm-contexts")
    await live.subscribe("vm-context/pgtest1")

    await proxy.cut()
    status = await live.expect("status")
    assert status["type"] == "status" and status["database"] == "unavailable" and status["since"].endswith("Z")
    # A session that arrives during the outage is told right after its welcome.
    late = await LiveClient.connect(client, token)
    assert (await late.next())["database"] == "unavailable"
    assert (await client.get("/readyz")).status == 503
    metrics = await (await client.get("/metrics")).text()
    failed = next(
        float(line.split()[1]) for line in metrics.splitlines() if line.startswith("pushsvc_poll_errors_total")
    )
    assert failed >= 1

    # The appliance keeps writing meanwhile (straight to MariaDB, not through the proxy).
    async with seeded.transaction() as writer:
        await writer.execute(
            "UPDATE replication_jobs SET progress_percent = 77.5, status = 'replicating' WHERE id = %s",
            [SEED_CURRENT_JOB["id"]],
        )
        await writer.execute("DELETE FROM vm_replication_contexts WHERE vm_name = 'pgtest2'")

    await proxy.restore()
    recovered = await live.expect("status")
    assert recovered["database"] == "ok"
    ticks = app[poller_key].ticks
    await app[poller_key].wait_for_tick(ticks + 2)
    await live.catch_up(app[hub_key])
    assert live.document("vm-contexts") == await rest_dashboard(client, auth_headers)
    assert live.document("vm-context/pgtest1") == await rest_detail(client, auth_headers, "pgtest1")
    assert live.docs["vm-contexts"]["vm_contexts"]["pgtest1"]["current_job"]["progress_percent"] == 77.5
    assert "pgtest2" not in live.docs["vm-contexts"]["vm_contexts"]
    assert (await client.get("/readyz")).status == 200
