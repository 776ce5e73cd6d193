"""Clustering on Redis: the shared pieces that N pushsvc instances agree through.

One job per module:

- ``layout``: the Redis key and channel names under ``broker.namespace``.
- ``connect``: a Redis client from ``broker.url`` with bounded timeouts.
- ``lease``: the leader lease (one key, a TTL, renewed by its holder).
- ``sharedlog``: the cluster epoch, each topic's document + seq + delta stream,
  and the retained database status; every write is one Lua script fenced on
  the lease and the epoch.
- ``interest``: the cluster-wide set of watched topics, with expiry.
- ``feed``: the one pub/sub channel that tells every instance about new deltas,
  fresh topics, status changes and wake-ups.

docs/decisions.md ("Cluster") describes the layout and why it is so.
"""
