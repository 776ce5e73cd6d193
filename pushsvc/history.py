"""The recent deltas of every topic, kept for resume (``subscribe`` with ``since``), bounded in bytes.

Each topic keeps at most ``per_topic`` deltas and ``per_topic_bytes`` bytes of
them, and all topics together at most ``total_bytes``: past a bound the
oldest deltas go first (over all topics for the global bound). A ``since``
older than what is kept is answered with a snapshot by the hub, so a bound
only ever costs a resuming client a snapshot, never a wrong document.

Counting messages alone is not enough: a big dashboard's deltas can be
hundreds of KB each, and 256 of them per topic would hold hundreds of MB.
"""

from __future__ import annotations

import collections


class History:
    def __init__(self, per_topic: int, per_topic_bytes: int, total_bytes: int) -> None:
        self.per_topic = per_topic
        self.per_topic_bytes = per_topic_bytes
        self.total_bytes = total_bytes
        self.bytes = 0  # held over all topics
        self._deltas: dict[str, collections.deque[tuple[int, bytes]]] = {}
        self._topic_bytes: collections.Counter[str] = collections.Counter()
        # (topic, seq) of every delta held, oldest first over all topics: the global eviction order.
        self._age: collections.OrderedDict[tuple[str, int], None] = collections.OrderedDict()

    def append(self, topic: str, seq: int, data: bytes) -> None:
        """Keep ``data`` as ``topic``'s delta to ``seq`` (seqs of a topic only grow)."""
        deltas = self._deltas.setdefault(topic, collections.deque())
        deltas.append((seq, data))
        self._age[topic, seq] = None
        self._topic_bytes[topic] += len(data)
        self.bytes += len(data)
        while deltas and (len(deltas) > self.per_topic or self._topic_bytes[topic] > self.per_topic_bytes):
            self._evict_oldest(topic)
        while self.bytes > self.total_bytes:
            oldest_topic, _ = next(iter(self._age))
            self._evict_oldest(oldest_topic)

    def after(self, topic: str, seq: int) -> list[bytes] | None:
        """Every delta of ``topic`` after ``seq``, oldest first; None unless all of them are still held."""
        deltas = self._deltas.get(topic)
        if not deltas or deltas[0][0] > seq + 1 or deltas[-1][0] <= seq:
            return None
        return [data for held, data in deltas if held > seq]

    def drop(self, topic: str) -> None:
        """Forget ``topic``'s deltas (it was dropped, or reset to a new base)."""
        deltas = self._deltas.pop(topic, None)
        if not deltas:
            return
        for seq, _ in deltas:
            del self._age[topic, seq]
        self.bytes -= self._topic_bytes.pop(topic)

    def held(self, topic: str) -> int:
        """How many deltas of ``topic`` are kept."""
        return len(self._deltas.get(topic, ()))

    def _evict_oldest(self, topic: str) -> None:
        deltas = self._deltas[topic]
        seq, data = deltas.popleft()
        del self._age[topic, seq]
        self._topic_bytes[topic] -= len(data)
        self.bytes -= len(data)
        if not deltas:
            del self._deltas[topic], self._topic_bytes[topic]
