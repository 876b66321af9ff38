"""Freezing start-up objects (services/common/heap.py): skipped by the collector while frozen,
collectable again after a job's block, so a reused worker process (Ray) does not keep a finished
job's reference cycles."""
from __future__ import annotations

import gc
import weakref

from trainhouse.common.heap import frozen_during


class _Node:
    pass


def test_a_cycle_frozen_for_a_job_is_collected_once_the_job_is_over():
    node = _Node()
    node.itself = node  # a reference cycle: only the collector can free it
    alive = weakref.ref(node)
    with frozen_during() as frozen:
        assert frozen > 0
        del node
        gc.collect()
        assert alive() is not None  # frozen: the collector does not look at it
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert alive() is None
