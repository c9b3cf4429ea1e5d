"""The inner function of the replicator, shared by the Lambda entry point and the local runner.

It emits no metrics and prints nothing: the Lambda entry point turns the result into EMF
metrics, the local runner into PutMetricData calls and its summary.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from stream_replicator.apply import BatchResult, Replicator
from stream_replicator.processor import KeyOrderedBatchProcessor


@dataclass(frozen=True)
class Processed:
    #: the partial batch response Lambda expects: {"batchItemFailures": [{"itemIdentifier"}]}
    response: dict[str, Any]
    result: BatchResult


@contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while a batch is applied. A batch makes tens of thousands
    of short-lived containers (decoded images, requests) that reference counting frees; the
    generational collector would scan them again and again while the batch holds them (a
    quarter of the CPU time per record, measured with bench/replicator.py). Whatever cyclic
    garbage a batch leaves is collected by the first automatic collection after it."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def process_records(
    replicator: Replicator, records: Sequence[dict[str, Any]], context: Any = None
) -> Processed:
    """Apply one batch of Lambda-shaped stream records through the key-ordered processor."""
    processor = KeyOrderedBatchProcessor()
    with (
        _collector_paused(),
        processor(records=list(records), handler=replicator.apply, lambda_context=context),
    ):
        processor.process()
    result = processor.result
    assert result is not None  # process() always sets it
    return Processed(dict(processor.response()), result)
