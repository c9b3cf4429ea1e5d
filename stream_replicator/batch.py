"""The inner function of the replicator, shared by the Lambda entry point and the local runner.

It emits no metrics and prints nothing: the Lambda entry point turns the result into EMF
metrics, the local runner into PutMetricData calls and its summary; both count what
`Processed.settled()` says is final.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dualwrite import collector
from dualwrite.runtime import LambdaResponse
from stream_replicator.apply import Replicator
from stream_replicator.processor import KeyOrderedBatchProcessor
from stream_replicator.records import StreamRecord
from stream_replicator.results import BatchResult, RouteCounts, settle


@dataclass(frozen=True)
class Processed:
    #: the partial batch response Lambda expects: {"batchItemFailures": [{"itemIdentifier"}]}
    response: LambdaResponse
    result: BatchResult

    @property
    def failures(self) -> list[str]:
        """Sequence numbers of the records reported failed (they are redelivered)."""
        return [str(f["itemIdentifier"]) for f in self.response["batchItemFailures"]]

    def settled(self) -> dict[str, RouteCounts]:
        """Per route, the records whose outcome is final and the failure reports."""
        return settle(self.result, self.failures)


def process_records(
    replicator: Replicator, records: Sequence[StreamRecord], context: Any = None
) -> Processed:
    """Apply one batch of Lambda-shaped stream records through the key-ordered processor."""
    processor = KeyOrderedBatchProcessor()
    with (
        collector.bulk(),  # a batch churns through ~20 containers per record
        processor(records=list(records), handler=replicator.apply, lambda_context=context),
    ):
        processor.process()
    result = processor.result
    assert result is not None  # process() always sets it
    return Processed(dict(processor.response()), result)
