"""What the binlog source hands its consumer: change batches, and the news that it stopped.

A batch only *names* what changed; the consumer re-reads those VMs through
the same read-and-diff path as a poll and publishes whatever the read shows.
So a batch may name too much (a row rewritten with the values it had), never
has to be complete in its details, and when in doubt says ``full_reread``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .visibility import BinlogCoordinate


@dataclass(frozen=True)
class ChangeBatch:
    """The changes of one or more committed transactions (never part of one).

    ``context_ids`` are contexts named directly (a context row, or the
    ``vm_context_id`` of a job, disk or CBT row image). ``job_ids``,
    ``disk_ids`` and ``cbt_ids`` are rows whose image did not name their
    context (``binlog_row_image=MINIMAL``, or a job with no
    ``vm_context_id``): :func:`pushsvc.binlog.resolve.resolve_contexts` maps
    them with one query. ``contexts_changed``: a context row was inserted or
    deleted (or its id changed), so the set of VMs is different.
    ``full_reread``: why everything must be read again (the stream
    (re)connected, a statement such as TRUNCATE or ALTER touched the
    database, a transaction too large to itemise); ``None`` when the named
    rows are enough. ``position``: the binlog position (MariaDB GTIDs, one
    per replication domain) just after the newest transaction, so a consumer
    can say how far it has published (:func:`covers`). ``end``: the binlog
    file and offset just after the newest transaction, which reads must see
    before they decide (:func:`~pushsvc.binlog.visibility.wait_until_visible`).
    """

    context_ids: frozenset[str] = frozenset()
    job_ids: frozenset[str] = frozenset()
    disk_ids: frozenset[int] = frozenset()
    cbt_ids: frozenset[int] = frozenset()
    contexts_changed: bool = False
    full_reread: str | None = None
    transactions: int = 0
    # Unix time of the newest transaction's commit event (whole seconds: the binlog's resolution).
    committed_at: float = 0.0
    position: str = ""
    end: BinlogCoordinate | None = None
    # (context id, job id) for the contexts named by nothing but updates of their jobs' rows (full row
    # images): when the job is the context's current one, its detail's children (job history, disks,
    # CBT) cannot have changed, and the read can skip them (Poller.poll_contexts).
    job_updates_only: frozenset[tuple[str, str]] = frozenset()

    def only_job_updates(self) -> dict[str, frozenset[str]]:
        """Context id -> the job ids whose row updates are all that named it."""
        jobs: dict[str, set[str]] = {}
        for context_id, job_id in self.job_updates_only:
            jobs.setdefault(context_id, set()).add(job_id)
        return {context_id: frozenset(ids) for context_id, ids in jobs.items()}

    def merge(self, other: ChangeBatch) -> ChangeBatch:
        """Both batches' changes as one (``other`` is the later)."""
        named_otherwise = _named_otherwise(self) | _named_otherwise(other)
        return ChangeBatch(
            context_ids=self.context_ids | other.context_ids,
            job_ids=self.job_ids | other.job_ids,
            disk_ids=self.disk_ids | other.disk_ids,
            cbt_ids=self.cbt_ids | other.cbt_ids,
            contexts_changed=self.contexts_changed or other.contexts_changed,
            full_reread=self.full_reread or other.full_reread,
            transactions=self.transactions + other.transactions,
            committed_at=max(self.committed_at, other.committed_at),
            position=other.position or self.position,
            end=other.end or self.end,
            job_updates_only=frozenset(
                pair for pair in self.job_updates_only | other.job_updates_only if pair[0] not in named_otherwise
            ),
        )


def _named_otherwise(batch: ChangeBatch) -> set[str]:
    """The contexts ``batch`` names for anything but updates of their jobs' rows."""
    return set(batch.context_ids) - {context_id for context_id, _ in batch.job_updates_only}


@dataclass(frozen=True)
class SourceLost:
    """The binlog stream stopped (``reason`` says why): poll until a ``full_reread`` batch says it is back."""

    reason: str


Signal = ChangeBatch | SourceLost


@dataclass
class PendingChanges:
    """The changes of the transaction being read (the reader thread's scratch pad)."""

    context_ids: set[str] = field(default_factory=set)
    job_ids: set[str] = field(default_factory=set)
    disk_ids: set[int] = field(default_factory=set)
    cbt_ids: set[int] = field(default_factory=set)
    contexts_changed: bool = False
    full_reread: str | None = None
    rows: int = 0
    job_updates: set[tuple[str, str]] = field(default_factory=set)  # (context id, job id) of job row updates
    named_otherwise: set[str] = field(default_factory=set)  # contexts named by any other row

    def __bool__(self) -> bool:
        return bool(
            self.context_ids
            or self.job_ids
            or self.disk_ids
            or self.cbt_ids
            or self.contexts_changed
            or self.full_reread
        )

    def freeze(self, committed_at: float, position: str = "", end: BinlogCoordinate | None = None) -> ChangeBatch:
        return ChangeBatch(
            context_ids=frozenset(self.context_ids),
            job_ids=frozenset(self.job_ids),
            disk_ids=frozenset(self.disk_ids),
            cbt_ids=frozenset(self.cbt_ids),
            contexts_changed=self.contexts_changed,
            full_reread=self.full_reread,
            transactions=1,
            committed_at=committed_at,
            position=position,
            end=end,
            job_updates_only=frozenset(pair for pair in self.job_updates if pair[0] not in self.named_otherwise),
        )


def _sequences(position: str) -> dict[str, int]:
    """``"0-1-42,1-1-7"`` -> {"0": 42, "1": 7}: each replication domain's newest sequence number."""
    sequences: dict[str, int] = {}
    for gtid in filter(None, (part.strip() for part in position.split(","))):
        domain, _server, sequence = gtid.split("-")
        sequences[domain] = int(sequence)
    return sequences


def covers(position: str, wanted: str) -> bool:
    """Whether ``position`` is at or past ``wanted`` in every replication domain ``wanted`` names."""
    have = _sequences(position)
    return all(have.get(domain, -1) >= sequence for domain, sequence in _sequences(wanted).items())
