"""How many scan segments and worker threads a backfill uses by default. Pure."""

from __future__ import annotations

import math

#: AWS guidance for parallel scans is on the order of one segment per ~1 GB or so; we also
#: keep a segment to ~100 pages of 1,000 items so a Lambda worker finishes one in a few calls
ITEMS_PER_SEGMENT = 100_000
BYTES_PER_SEGMENT = 1 << 30
#: below ~10 pages per segment another thread is not worth its Scan overhead
PARALLEL_FROM_ITEMS = 10_000
MAX_SEGMENTS = 1_000
DEFAULT_WORKERS = 8


def default_segments(item_count: int, size_bytes: int, workers: int = DEFAULT_WORKERS) -> int:
    """Segments for a table of this (approximate, DescribeTable) size: at least 1, capped."""
    by_items = math.ceil(max(0, item_count) / ITEMS_PER_SEGMENT)
    by_bytes = math.ceil(max(0, size_bytes) / BYTES_PER_SEGMENT)
    parallel = min(max(1, workers), max(0, item_count) // PARALLEL_FROM_ITEMS)
    return max(1, min(MAX_SEGMENTS, max(by_items, by_bytes, parallel)))


def default_workers(tasks: int) -> int:
    """Worker threads: one per segment to copy, at most DEFAULT_WORKERS, at least 1."""
    return max(1, min(DEFAULT_WORKERS, tasks))
