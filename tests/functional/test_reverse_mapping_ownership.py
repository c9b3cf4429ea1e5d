"""Which event source mappings the switches touch, on moto: only the replicator's (the
function running its handler, or the one the stack names), never another consumer's of the
same streams; and a cutover in AWS refuses when the replicator has no mapping on a target
stream (reverse replication could not start; a rollback would lose the new tables' writes).
Each failed before its fix."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from backfill.event_sources import enable_mappings
from dualwrite.aws.clients import Clients
from dualwrite.aws.streams import REPLICATOR_HANDLER
from dualwrite.cutover.results import Status
from dualwrite.cutover.switch import cutover
from tests.cutover_world import make_function
from tests.reverse_cutover_world import FORCED, build


@pytest.fixture
def moto(aws_env: None) -> Iterator[None]:
    from moto import mock_aws

    with mock_aws(config={"lambda": {"use_docker": False}}):
        yield


def _stream(c: Clients, table: str) -> str:
    return str(c.dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"])


def _mapping(c: Clients, function: str, table: str, **kw: Any) -> str:
    made = c.lambda_.create_event_source_mapping(
        FunctionName=function,
        EventSourceArn=_stream(c, table),
        StartingPosition="TRIM_HORIZON",
        **kw,
    )
    return str(made["UUID"])


def _state(c: Clients, uuid: str) -> dict[str, Any]:
    got: dict[str, Any] = c.lambda_.get_event_source_mapping(UUID=uuid)
    return got


def test_a_backfill_enables_the_replicators_mapping_and_no_other(moto: None) -> None:
    w = build(replicator=False)
    c = w.clients
    make_function(c, "replicator")
    c.lambda_.update_function_configuration(FunctionName="replicator", Handler=REPLICATOR_HANDLER)
    make_function(c, "search-indexer")  # a consumer its owner keeps disabled for now
    ours = _mapping(c, "replicator", "old-t", Enabled=False)
    theirs = _mapping(c, "search-indexer", "old-t", Enabled=False)

    enabled = enable_mappings(c.lambda_, _stream(c, "old-t"))

    assert [m.uuid for m in enabled] == [ours]
    assert _state(c, ours)["State"] == "Enabled"
    assert _state(c, theirs)["State"] == "Disabled"
    # the stack names the replicator to the backfill worker: that one alone, too
    named = enable_mappings(c.lambda_, _stream(c, "old-t"), "search-indexer")
    assert [m.uuid for m in named] == [theirs]


def test_a_cutover_leaves_another_consumers_target_mapping_and_filter_alone(moto: None) -> None:
    w = build()  # the replicator: forward mapping on old-t, reverse one (disabled) on new-t
    c = w.clients
    c.lambda_.update_function_configuration(FunctionName="replicator", Handler=REPLICATOR_HANDLER)
    make_function(c, "app-consumer")  # reads both streams, with a filter of its own
    own = {"Filters": [{"Pattern": '{"eventName":["INSERT"]}'}]}
    _mapping(c, "app-consumer", "old-t")
    theirs = _mapping(c, "app-consumer", "new-t", Enabled=False, FilterCriteria=own)

    assert cutover(w.ctx, FORCED).status is Status.DONE

    assert w.mapping(w.reverse_uuid)["State"] == "Enabled"
    left = _state(c, theirs)
    assert left["State"] == "Disabled"
    assert left["FilterCriteria"] == own


def test_a_cutover_refuses_when_the_replicator_has_no_mapping_on_a_target_stream(
    moto: None,
) -> None:
    w = build()
    c = w.clients
    c.lambda_.delete_event_source_mapping(UUID=w.reverse_uuid)  # a stale stream ARN, say

    dry = cutover(w.ctx, FORCED.__class__(dry_run=True))

    assert dry.gate is not None
    (check,) = [ch for ch in dry.gate.checks if ch.name == "reverse mapping"]
    assert not check.ok and check.subject == _stream(c, "new-t")
    forced = cutover(w.ctx, FORCED)  # past the gate, the switch still will not go silent
    assert forced.status is Status.FAILED
    assert forced.failure is not None and "no event source mapping" in forced.failure.message
