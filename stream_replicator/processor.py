"""A Powertools batch processor for DynamoDB Streams that keeps per-key order.

Powertools' BatchProcessor calls a record handler once per record and reports each failure on
its own; a later record of the same key could then succeed and overtake a failed one. This
processor extends BasePartialBatchProcessor (the same response building, the same
`batchItemFailures` shape, the same success/failure bookkeeping) but hands the *whole* batch
to its handler, because coalescing needs every record of a key at once: the handler returns
one outcome per record, already closed under "after a record fails, every later record of the
same key fails too". Lambda then retries from the lowest failed sequence number.

Usage:

    processor = KeyOrderedBatchProcessor()
    with processor(records=event["Records"], handler=replicator.apply, lambda_context=context):
        processor.process()
    return processor.response()
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from aws_lambda_powertools.utilities.batch import BasePartialBatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

from stream_replicator.records import StreamRecord
from stream_replicator.results import FAILED, HELD, BatchResult


class RecordFailed(Exception):
    """Why a record was reported as a batch item failure (it will be redelivered)."""


class KeyOrderedBatchProcessor(BasePartialBatchProcessor):
    """Partial batch responses for DynamoDB Streams, failures closed per key (see module)."""

    def __init__(self) -> None:
        # a batch in which every record failed is reported, not raised: Lambda retries it
        # from its first record either way, and the local runner reads the response
        super().__init__(EventType.DynamoDBStreams, raise_on_entire_batch_failure=False)
        self.result: BatchResult | None = None

    def process(self) -> list[tuple[Any, ...]]:
        handler: Callable[..., BatchResult] = self.handler
        context = getattr(self, "lambda_context", None)
        remaining = getattr(context, "get_remaining_time_in_millis", None)
        records: Sequence[StreamRecord] = self.records
        result = handler(records, remaining if callable(remaining) else None)
        self.result = result
        out: list[tuple[Any, ...]] = []
        for record, outcome, reason in zip(records, result.outcomes, result.reasons, strict=True):
            wrapped = DynamoDBRecord(record)
            if outcome in (FAILED, HELD):
                exc = RecordFailed(reason or outcome)
                out.append(self.failure_handler(wrapped, (RecordFailed, exc, None)))
            else:
                out.append(self.success_handler(wrapped, outcome))
        return out

    def _process_record(self, record: StreamRecord) -> Any:
        raise NotImplementedError("KeyOrderedBatchProcessor processes whole batches: process()")

    async def _async_process_record(self, record: StreamRecord) -> Any:
        raise NotImplementedError("KeyOrderedBatchProcessor is synchronous")
