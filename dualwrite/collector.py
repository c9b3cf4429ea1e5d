"""Cyclic garbage collection during bulk work (a batch of stream records, a parity scan).

Bulk work allocates containers by the million (decoded items, request bodies) that reference
counting frees a page later. CPython's collector counts allocations, not garbage: at its
default threshold (700) it runs a young collection every few dozen items and keeps promoting
the pages in flight into the older generations, whose collections then walk the whole heap.
Measured on a parity scan (bench/reconcile.py on dynalite), that was half the client's CPU.
`bulk()` raises the young threshold to a million net allocations for the duration: nothing
is collected while work merely churns through pages, and cyclic garbage (a few objects per
request, in botocore) is still collected once it piles up, so memory stays bounded.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

#: net container allocations (allocations minus frees) before a young collection
BULK_THRESHOLD = 1_000_000

_lock = threading.Lock()
_depth = 0
_saved: tuple[int, int, int] = (700, 10, 10)


@contextmanager
def bulk() -> Iterator[None]:
    """Collect only when a million containers outlive their page. Nests, and threads may
    enter and leave in any order: the first in raises the threshold, the last out restores
    it."""
    global _depth, _saved
    with _lock:
        if _depth == 0:
            _saved = gc.get_threshold()
            gen0, *older = _saved
            gc.set_threshold(max(gen0, BULK_THRESHOLD), *older)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                gc.set_threshold(*_saved)
