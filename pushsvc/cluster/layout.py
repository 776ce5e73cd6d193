"""Every Redis key and channel pushsvc uses, under one namespace (``broker.namespace``).

Two clusters with different namespaces can share one Redis. Topic names are
used in keys verbatim (Redis keys are binary-safe).

- ``<ns>:epoch``       string  the cluster epoch (SET NX; kept while Redis keeps its data)
- ``<ns>:leader``      string  the leader lease: the holder's id, with a TTL
- ``<ns>:seqfloor``    string  one above every seq handed out in this epoch (fresh topics start here)
- ``<ns>:interest``    zset    watched topic -> expiry (ms, Redis clock), refreshed by every instance
- ``<ns>:status``      string  the retained ``status`` frame while the database is unavailable
- ``<ns>:doc:<topic>`` hash    ``seq`` and ``doc`` (the JSON document at that seq)
- ``<ns>:log:<topic>`` stream  the topic's delta frames, entry id ``<seq>-0``, capped at history_size
- ``<ns>:feed``        channel notices: delta, reset, status, wake (see ``feed``)
"""

from __future__ import annotations


class Layout:
    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.epoch = f"{namespace}:epoch"
        self.leader = f"{namespace}:leader"
        self.seq_floor = f"{namespace}:seqfloor"
        self.interest = f"{namespace}:interest"
        self.status = f"{namespace}:status"
        self.channel = f"{namespace}:feed"

    def doc(self, topic: str) -> str:
        return f"{self.namespace}:doc:{topic}"

    def log(self, topic: str) -> str:
        return f"{self.namespace}:log:{topic}"
