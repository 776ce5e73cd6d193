"""The demo: seed rows, a dozen realistic VMs and a simulator that writes as the appliance does.

The dependency points one way: the demo imports the service, and no service
module imports the demo. Only the command line's ``--demo`` (and
``schema --seed``) load it, lazily.

| module | job |
|---|---|
| ``seed`` | the seed API doc's example rows (pgtest1, pgtest2) |
| ``data`` | the demo fleet and the vocabulary of job rows |
| ``simulator`` | replication progress, written as the appliance writes it |
| ``context`` | the cleanup context ``--demo`` adds to the app |
| ``lock`` | one demo at a time on the embedded database |
"""

from .context import demo_context, prepare_demo_database
from .lock import DemoRunning, claim_demo_database

__all__ = ["DemoRunning", "claim_demo_database", "demo_context", "prepare_demo_database"]
