"""The binlog source's loop-side pieces: batches merge, the queue keeps order, grants parse."""

from __future__ import annotations

import asyncio

from pushsvc.binlog.batch import ChangeBatch, PendingChanges, SourceLost, covers
from pushsvc.binlog.coalesce import CoalescingQueue
from pushsvc.binlog.requirements import global_privileges


def batch(*context_ids: str, **fields) -> ChangeBatch:
    return ChangeBatch(context_ids=frozenset(context_ids), transactions=1, **fields)


def test_merge_unites_everything_and_keeps_the_first_reason():
    merged = batch("a", job_ids=frozenset({"j"}), committed_at=5.0).merge(
        batch("b", disk_ids=frozenset({7}), contexts_changed=True, full_reread="connected", committed_at=3.0)
    )
    assert merged == ChangeBatch(
        context_ids=frozenset({"a", "b"}),
        job_ids=frozenset({"j"}),
        disk_ids=frozenset({7}),
        contexts_changed=True,
        full_reread="connected",
        transactions=2,
        committed_at=5.0,
    )


def test_a_merged_batch_is_at_the_later_position():
    assert batch("a", position="0-1-5").merge(batch("b", position="0-1-7")).position == "0-1-7"
    assert batch("a", position="0-1-5").merge(batch("b")).position == "0-1-5"


def test_a_position_covers_another_domain_by_domain():
    assert covers("0-1-7", "0-1-7") and covers("0-1-8", "0-2-7")  # the server id does not matter
    assert not covers("0-1-6", "0-1-7")
    assert covers("0-1-9,1-1-3", "0-1-9,1-1-2") and not covers("0-1-9", "0-1-9,1-1-2")
    assert covers("", "") and covers("0-1-1", "") and not covers("", "0-1-1")


def test_pending_changes_are_empty_until_something_is_named():
    pending = PendingChanges()
    assert not pending
    pending.rows = 3  # rows seen but nothing named (a disk of no VM)
    assert not pending
    pending.cbt_ids.add(1)
    assert pending and pending.freeze(9.0) == ChangeBatch(cbt_ids=frozenset({1}), transactions=1, committed_at=9.0)


async def test_queued_batches_merge_but_never_across_a_lost_signal():
    queue = CoalescingQueue(window=0)
    queue.put(batch("a"))
    queue.put(batch("b"))
    queue.put(SourceLost("gone"))
    queue.put(batch(full_reread="reconnected"))
    queue.put(batch("c"))
    assert len(queue) == 3
    assert await queue.get() == batch("a").merge(batch("b"))
    assert await queue.get() == SourceLost("gone")
    last = await queue.get()
    assert (last.context_ids, last.full_reread, last.transactions) == ({"c"}, "reconnected", 2)
    assert len(queue) == 0


async def test_a_batch_waits_out_the_window_for_its_neighbours():
    queue = CoalescingQueue(window=0.2)
    taken = asyncio.create_task(queue.get())
    queue.put(batch("a"))
    for _ in range(3):
        await asyncio.sleep(0)  # let get() see the first batch and start its window
    assert not taken.done()
    queue.put(batch("b"))  # within the window: joins the first
    assert await taken == batch("a").merge(batch("b"))


def test_global_privileges_come_from_the_login_and_its_active_role():
    lines = [
        "GRANT USAGE ON *.* TO `svc`@`%` IDENTIFIED BY PASSWORD '*ABC'",
        "GRANT SELECT ON `migratekit_oma`.* TO `svc`@`%`",
        "GRANT `reader` TO `svc`@`%`",
        "GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO `reader`",
        "GRANT SELECT ON `db`.`t` TO `svc`@`%` WITH GRANT OPTION",
    ]
    assert global_privileges(lines) == {"USAGE", "REPLICATION SLAVE", "BINLOG MONITOR"}
    assert global_privileges(["GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` WITH GRANT OPTION"]) == {
        "ALL PRIVILEGES"
    }


def test_contexts_named_only_by_job_updates_keep_their_jobs_through_a_merge():
    progress = batch("a", "b", job_updates_only=frozenset({("a", "j1"), ("b", "j2")}))
    assert progress.only_job_updates() == {"a": frozenset({"j1"}), "b": frozenset({"j2"})}
    more = batch("a", job_updates_only=frozenset({("a", "j3")}))
    assert progress.merge(more).only_job_updates() == {"a": frozenset({"j1", "j3"}), "b": frozenset({"j2"})}
    # A context row (or a disk, a CBT row, a job inserted or deleted) named "b" too: its children must be read.
    assert progress.merge(batch("b")).only_job_updates() == {"a": frozenset({"j1"})}
    assert batch("b").merge(progress).only_job_updates() == {"a": frozenset({"j1"})}


def test_pending_job_updates_count_only_for_contexts_nothing_else_named():
    pending = PendingChanges()
    pending.context_ids |= {"a", "b"}
    pending.job_updates |= {("a", "j1"), ("b", "j2")}
    pending.named_otherwise.add("b")  # say, a disk of "b" in the same transaction
    assert pending.freeze(1.0).job_updates_only == frozenset({("a", "j1")})
