"""A record of the old direction delivered after the Lambda counted the drain done by the
clock (it cannot see the shards: T+O+grace+slack), on Docker-less moto. It kept failing past
the grace (a throttled target, which now also takes the application's traffic). Applied, it
could overwrite what the new direction has written since; acknowledged unseen, it would be
lost without a trace. It is quarantined: counted, listed with the full record."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from dualwrite.backoff import Backoff
from dualwrite.cutover.results import Status
from dualwrite.cutover.switch import cutover
from stream_replicator.apply import Replicator
from stream_replicator.batch import process_records
from stream_replicator.results import QUARANTINED
from tests.reverse_cutover_world import FORCED, build


@pytest.fixture
def moto(aws_env: None) -> Iterator[None]:
    from moto import mock_aws

    with mock_aws(config={"lambda": {"use_docker": False}}):
        yield


class Throttled:
    """The real client, with every BatchWriteItem to the new table left unprocessed."""

    def __init__(self, real: Any) -> None:
        self.real, self.down = real, True

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def batch_write_item(self, RequestItems: dict[str, Any], **kw: Any) -> Any:
        if self.down and "new-t" in RequestItems:
            return {"UnprocessedItems": RequestItems}
        return self.real.batch_write_item(RequestItems=RequestItems, **kw)


def test_a_forward_record_still_failing_after_the_drain_by_time_is_quarantined(
    moto: None,
) -> None:
    w = build(replicator=False)
    ddb = Throttled(w.clients.dynamodb)
    # an invocation with the old environment writes the old table just before the switch
    w.clients.dynamodb.put_item(TableName="old-t", Item={"id": {"S": "in-overlap"}})
    assert cutover(w.ctx, FORCED).status is Status.DONE
    state = w.store.direction("r")
    w.replicator()  # marks the route backfilled
    rep = Replicator(
        w.ctx.migration,
        w.clients,
        w.store,
        clock=w.now,
        backoff=Backoff(sleep=lambda _s: None),
        max_write_attempts=2,
        dynamodb=ddb,
    )
    records = w.records("old-t")
    first = process_records(rep, records)
    assert first.response["batchItemFailures"]  # failed: the mapping delivers it again

    # the throttling outlasts the grace: the Lambda's clock counts the drain done
    w.clock.sleep(state.overlap_s + state.drain_grace_s + state.margin_s + 2)
    ddb.down = False
    again = process_records(rep, records)

    assert again.response["batchItemFailures"] == []
    assert w.store.direction("r").old_drained
    assert again.result.outcomes == [QUARANTINED]
    (entry,) = w.store.quarantined()
    assert entry.route == "r" and entry.reason.startswith("late: a forward record")
    assert w.item("new-t", "in-overlap") is None  # not applied over the new direction
