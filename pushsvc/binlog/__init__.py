"""The binlog change source: MariaDB's binary log names what changed; reads decide.

- :mod:`.source`: :class:`BinlogSource`, the reader thread and its async stream;
- :mod:`.batch`: :class:`ChangeBatch` and :class:`SourceLost`, what it yields;
- :mod:`.rows`: row events of the four watched tables -> ids;
- :mod:`.coalesce`: one batch per transaction, neighbours merged;
- :mod:`.resolve`: a batch -> the contexts to re-read (one query at most);
- :mod:`.requirements`: the start-up check (log_bin, ROW format, grants);
- :mod:`.visibility`: reads wait until a batch's commits are visible to them.

docs/decisions.md ("Binlog change source") says why it is built this way.
"""

from .batch import ChangeBatch, Signal, SourceLost, covers
from .requirements import BinlogRequirements, check_requirements
from .resolve import ContextTargets, resolve_contexts
from .rows import WATCHED_TABLES
from .source import BinlogSource
from .visibility import BinlogCoordinate, visible_snapshot, wait_until_visible

__all__ = [
    "WATCHED_TABLES",
    "BinlogCoordinate",
    "BinlogRequirements",
    "BinlogSource",
    "ChangeBatch",
    "ContextTargets",
    "Signal",
    "SourceLost",
    "check_requirements",
    "covers",
    "resolve_contexts",
    "visible_snapshot",
    "wait_until_visible",
]
