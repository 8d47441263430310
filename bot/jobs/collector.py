"""Python's cycle collector set up for a process that keeps many jobs in flight.

A full (generation 2) collection walks every tracked object of the process while it
holds the interpreter: nothing else moves meanwhile (commands, cards, the store's
thread). With 1,000 jobs in flight that is about 290,000 objects and 140-380 ms of
CPU per collection, ten of them in one bench/jobs.py run, which is what its
command -> fal p99 measured (the job leases' renewal, suspected first, costs about
3.5 ms of store time for 1,000 jobs). Most of those objects live as long as the
process (modules, the catalog, settings, validation schemas), and a job's own objects
go by reference counting when it ends, so full collections can be rarer and shorter:

- what exists once the first runner starts is frozen (`gc.freeze`): it is never
  walked again (cyclic garbage among it would never be freed: it is collected first);
- a full collection waits for `FULL_COLLECTION_EVERY` younger (generation 1)
  collections instead of Python's 10. Younger collections are unchanged: they walk
  only new objects and take a millisecond or two.
"""

from __future__ import annotations

import gc
import logging

log = logging.getLogger(__name__)

# Generation 1 collections between two full ones (Python's default is 10). Python also
# skips a full collection until the long-lived objects grew by a quarter since the last.
FULL_COLLECTION_EVERY = 100

_settled = False


def settle_collector() -> bool:
    """Freeze what exists now and make full collections rarer, once per process; True
    when this call did it."""
    global _settled
    if _settled:
        return False
    _settled = True
    gc.collect()
    gc.freeze()
    young, middle, full = gc.get_threshold()
    if young:  # 0 means the collector was turned off on purpose: leave it so
        gc.set_threshold(young, middle, max(full, FULL_COLLECTION_EVERY))
    log.debug("cycle collector: %d objects frozen, thresholds %s", gc.get_freeze_count(),
              gc.get_threshold())
    return True
