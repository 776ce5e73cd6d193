"""Redis cost per delta with and without hiredis (redis-py's C reply parser).

    python tests/bench/bench_redis_parser.py     # run once with hiredis installed and once without

Leader side: one fenced publish script (document ~27 KB). Follower side: one pub/sub notice
read, and a 256-entry history read (what a follower does when a topic gets its first
subscriber, and a new leader per topic at takeover).
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(1, str(REPO))

import redis.utils  # noqa: E402

from pushsvc.cluster.connect import open_redis  # noqa: E402
from pushsvc.cluster.feed import Feed  # noqa: E402
from pushsvc.cluster.layout import Layout  # noqa: E402
from pushsvc.cluster.lease import Lease  # noqa: E402
from pushsvc.cluster.sharedlog import SharedLog  # noqa: E402
from tests.redisserver import RedisServer  # noqa: E402

DELTAS = 3000
HISTORY_READS = 200


async def main() -> None:
    server = RedisServer()
    server.start()
    client = open_redis(server.url)
    layout = Layout("bench")
    log = SharedLog(client, layout, 256)
    await Lease(client, layout.leader, "L", 60).hold()
    epoch = await log.join_epoch()
    entries = b",".join(
        b'"vm-%d":{"progress":%d.5,"status":"replicating","bytes":123456789}' % (i, i) for i in range(400)
    )
    document = b'{"vm_contexts":{' + entries + b"}}"
    frame = b'{"type":"delta","topic":"vm-contexts","epoch":"x","seq":1,"patch":{"vm_contexts":{"vm-1":{"bytes":1}}}}'
    await log.reset("L", epoch, "vm-contexts", 0, document)
    feed = Feed(client, layout.channel)
    await feed.open()
    notices = feed.notices()
    started = time.perf_counter()
    for seq in range(1, DELTAS + 1):
        await log.publish("L", epoch, "vm-contexts", seq, document, frame)
    published = time.perf_counter()
    for _ in range(DELTAS):
        await anext(notices)
    read = time.perf_counter()
    for _ in range(HISTORY_READS):
        await log.history("vm-contexts", 256)
    done = time.perf_counter()
    print(
        f"hiredis={redis.utils.HIREDIS_AVAILABLE}: publish {(published - started) / DELTAS * 1e6:.0f} us/delta "
        f"(document {len(document)} B), notice read {(read - published) / DELTAS * 1e6:.0f} us, "
        f"256-entry history read {(done - read) / HISTORY_READS * 1e6:.0f} us"
    )
    await feed.close()
    await client.aclose()
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
