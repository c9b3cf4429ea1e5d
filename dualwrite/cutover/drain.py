"""Settling the previous switch's drain before the next switch (DESIGN.md section 8).

A switch is refused while the old direction of the previous one still drains (the Direction
core raises SwitchPendingError): a rollback right after a cutover, or a cutover right after
a rollback, first finds out whether that drain is over, by the replicator's own rules:

- the old direction's stream has event source mappings (AWS, no shard view): drained once
  the clock is past T+O + drain_grace_s + the clocks' slack (the margin and a second: the
  gate bounded the lag at the switch);
- otherwise (the local runner): past T+O + the slack, every shard read after its checkpoint holds
  no change made before T+O that is still to apply. For the reverse direction a change that
  would write nothing (an echo of forward, the plans say) is no change to apply, nor is one
  made before the reverse direction's start.

Whoever sees it first saves `drained(state)`; so does this. Waiting (ctx.sleep) is bounded:
T+O lies at most a function Timeout after the switch.
"""

from __future__ import annotations

from collections.abc import Sequence

from dualwrite.aws.streams import list_shards
from dualwrite.control import iso
from dualwrite.cutover import streams
from dualwrite.cutover.context import CutoverContext
from dualwrite.cutover.facts import RouteTables
from dualwrite.cutover.lag import event_source_mappings
from dualwrite.cutover.reversal import route_mapping
from dualwrite.reverse.direction import Direction, Flow, clock_slack, drained
from dualwrite.reverse.echo import net_writes
from dualwrite.reverse.model import TargetChange
from dualwrite.reverse.plan import batch_reads, plan_batch, planner_for
from dualwrite.reverse.writer import ReverseWriter

#: a Lambda Timeout is at most 900 s; the grace (cutover.max_lag_seconds) comes on top
MAX_WAIT_S = 960.0
ADVICE = "run `dualwrite replicate --until-caught-up` (or let the deployed replicator run)"


def settle_drains(
    ctx: CutoverContext,
    routes: Sequence[RouteTables],
    *,
    reverse_since: float | None,
    wait: bool,
) -> dict[str, str]:
    """route -> why its previous switch still drains; a drain found over is saved."""
    out: dict[str, str] = {}
    for r in routes:
        reason = settle_route(ctx, r, reverse_since=reverse_since, wait=wait)
        if reason is not None:
            out[r.route] = reason
    return out


def settle_route(
    ctx: CutoverContext, r: RouteTables, *, reverse_since: float | None, wait: bool
) -> str | None:
    store = ctx.store
    assert store is not None
    for _ in range(3):  # the replicator may save the same state first: read again
        state = store.direction(r.route)
        if state.old_drained:
            return None
        until = state.drain_until
        assert until is not None
        old = state.applying
        info = r.source_table if old is Flow.FORWARD else r.target_table
        stream = info.stream_arn if info is not None else None
        mappings = event_source_mappings(ctx.clients.lambda_, stream) if stream else []
        ready = until + clock_slack(state) + (state.drain_grace_s if mappings else 0.0)
        now = ctx.clock()
        if now < ready:
            if not wait or ready - now > MAX_WAIT_S:
                return (
                    f"the {old} direction is still draining the changes made before "
                    f"{iso(until)} (switch at {iso(state.switched_at or 0.0)}): {ADVICE}"
                )
            ctx.sleep(ready - now)
        if stream and not mappings:
            left = unapplied(ctx, r, state, stream, reverse_since)
            if left:
                return (
                    f"the {old} direction has {left} change(s) made before {iso(until)} "
                    f"still to apply: {ADVICE}"
                )
        if store.save_direction(r.route, drained(state), expected=state):
            return None
    return "the direction kept changing while its drain was checked: try again"


def unapplied(
    ctx: CutoverContext,
    r: RouteTables,
    state: Direction,
    stream: str,
    reverse_since: float | None,
) -> int:
    """Changes of the old direction's stream made before T+O and not yet applied."""
    store = ctx.store
    assert store is not None and state.drain_until is not None
    old = state.applying
    records = []
    for shard in list_shards(ctx.clients.streams, stream):
        checkpoint = store.shard(stream, shard["ShardId"])
        if checkpoint is not None and checkpoint.done:
            continue
        after = checkpoint.sequence_number if checkpoint is not None else None
        for record in streams.records(ctx.clients.streams, stream, shard["ShardId"], after=after):
            t = streams.record_time(record)
            if t >= state.drain_until or streams.is_ttl_expiry(record):
                continue
            if old is Flow.REVERSE and reverse_since is not None and t < reverse_since:
                continue
            records.append(record)
    if old is Flow.FORWARD or not records:
        return len(records)
    return reverse_writes(ctx, r, records)


def reverse_writes(ctx: CutoverContext, r: RouteTables, records: Sequence[object]) -> int:
    """How many of these target-stream records of the route would write to the source
    (echoes write nothing); a route without an inverse counts them all."""
    mapping = route_mapping(ctx.migration, r)
    planner = planner_for(mapping) if mapping is not None else None
    if mapping is None or planner is None:
        return len(records)
    changes = []
    for record in records:
        assert isinstance(record, dict)
        body = record.get("dynamodb") or {}
        keys = dict(body.get("Keys") or {})
        if not mapping.owns(keys) and (
            mapping.source_key_for(keys) is None and mapping.group_for_target(keys) is None
        ):
            continue  # another route's item on a shared target (one of ours that no source
            # key can hold still counts: the replicator quarantines it, it is not dropped)
        new = body.get("NewImage")
        changes.append(
            TargetChange(
                event_name=str(record.get("eventName", "")),
                keys=keys,
                new_image=dict(new) if new is not None else None,
                created_at=streams.record_time(record),
            )
        )
    if not changes:
        return 0
    writer = ReverseWriter(ctx.clients.dynamodb, r.route, r.source, r.target, mapping)
    found = writer.read(batch_reads(planner, changes))
    plan = plan_batch(planner, changes, found, mapping.group_attr)
    return len(net_writes(plan.writes, found.source).writes) + len(plan.unrepresentable)
