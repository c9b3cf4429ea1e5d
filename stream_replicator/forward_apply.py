"""The forward half of a batch: a route's source-stream records applied to its target (the
I/O around planning), DESIGN.md sections 2 and 7.

Per route, in this order:
1. quarantine: records the mapping cannot migrate go to the control table with the full
   record and the reason (once per record, even when the stream delivers it again);
2. derived items: each affected group (user) is recomputed once from a strongly consistent
   Query of the source, and deleted when no member remains;
3. writes: one write per target key, 25 per BatchWriteItem, UnprocessedItems retried with
   backoff and jitter while the invocation has time left;
4. failures: whatever could not be done fails its records and every later record of the same
   source key, and nothing of those is written.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from dualwrite.aws.dynamo import query_all
from dualwrite.errors import DualwriteError
from stream_replicator.planning import (
    QUARANTINE,
    KeyIdentity,
    TargetWrite,
    classify,
    close_failures,
    coalesce,
    fast_key_id,
)
from stream_replicator.quarantine import quarantine_record
from stream_replicator.records import Change
from stream_replicator.results import (
    APPLIED,
    FAILED,
    QUARANTINED,
    BatchResult,
    RouteCounts,
)
from stream_replicator.target_writes import TargetWriter

if TYPE_CHECKING:
    from stream_replicator.apply import Replicator, RouteContext

log = logging.getLogger("dualwrite-replicator.apply")


def apply_forward(
    rep: Replicator,
    ctx: RouteContext,
    changes: Sequence[Change],
    result: BatchResult,
    counts: RouteCounts,
    has_time: Callable[[], bool],
) -> None:
    items = [classify(ctx.mapping, c, ctx.target_key_names) for c in changes]
    failed: set[int] = set()
    quarantined: set[int] = set()

    # 1. quarantine first: a record whose quarantine cannot be written must fail, and then
    # later records of its key must not be applied either
    for c in items:
        if c.kind != QUARANTINE:
            continue
        if _quarantine(rep, ctx, c.change, c.reason or "unmappable"):
            quarantined.add(c.change.index)
        else:
            failed.add(c.change.index)
            result.reasons[c.change.index] = "could not write the quarantine entry"

    # 2. derived items from the source's current state (a consistent Query per group)
    plan = coalesce(items, failed, ctx.target_key_names)
    derived: dict[KeyIdentity, TargetWrite] = {}
    for gkid, work in plan.groups.items():
        try:
            members = query_all(
                rep.dynamodb,
                ctx.route.source,
                ctx.mapping.group_attr or "",
                work.value,
                consistent=True,
                counter=rep.counter,
            )
            name = rep.name_for(work.value) if members else None
        except DualwriteError as exc:
            log.warning(
                "route %s: recomputing a derived item failed (%s); %d record(s) retried",
                ctx.route.name,
                type(exc).__name__,
                len(work.contributors),
            )
            failed.update(work.contributors)
            for i in work.contributors:
                result.reasons[i] = f"derived item: {exc}"
            continue
        key = ctx.mapping.derived_key(work.value)
        derived[gkid] = TargetWrite(key, ctx.mapping.derive(work.value, members, name))

    # 3. the writes of everything still standing
    if failed:
        plan = coalesce(items, failed, ctx.target_key_names)
    writes: dict[KeyIdentity, TargetWrite] = dict(plan.writes)
    for gkid, work in plan.groups.items():
        write = derived.get(gkid)
        if write is None:
            continue
        write.contributors = list(work.contributors)
        dkid = fast_key_id(write.key, ctx.target_key_names)
        clash = writes.get(dkid)
        if clash is not None:  # a custom mapping may derive onto a direct key
            write.contributors = sorted({*clash.contributors, *write.contributors})
        writes[dkid] = write
    writer = TargetWriter(rep.backoff, rep.max_write_attempts, rep.counter)
    written = writer.write(
        rep.dynamodb, ctx.route.target, ctx.target_key_names, list(writes.values()), has_time
    )
    for write, why in written.lost:
        failed.update(write.contributors)
        for i in write.contributors:
            result.reasons[i] = why
    rejected = written.rejected
    while rejected:
        again: dict[KeyIdentity, TargetWrite] = {}
        for write, reason in rejected:
            culprit = max(write.contributors)
            item = next(c for c in items if c.change.index == culprit)
            if not _quarantine(rep, ctx, item.change, reason):
                failed.update(write.contributors)
                continue
            quarantined.add(culprit)
            dkid = fast_key_id(write.key, ctx.target_key_names)
            if len(write.contributors) > 1 and dkid in plan.writes:
                again[dkid] = write
        if not again:
            break
        # the refused write carried only its last record's state: the records before it
        # are written as they stand without it (else they would be acknowledged unwritten)
        plan = coalesce(items, failed | quarantined, ctx.target_key_names)
        retry = [plan.writes[k] for k in again if k in plan.writes]
        written = writer.write(
            rep.dynamodb, ctx.route.target, ctx.target_key_names, retry, has_time
        )
        for write, why in written.lost:
            failed.update(write.contributors)
            for i in write.contributors:
                result.reasons[i] = why
        rejected = written.rejected

    # 4. outcomes
    final_failed = close_failures(items, failed | plan.blocked)
    now_ms = rep.clock() * 1000.0
    newest: float | None = None
    for c in items:
        index = c.change.index
        if index in final_failed:
            result.outcomes[index] = FAILED
            if result.reasons[index] is None:
                result.reasons[index] = "an earlier record of the same key failed"
            counts.failed += 1
        elif index in quarantined:
            result.outcomes[index] = QUARANTINED
            counts.quarantined += 1
        else:
            result.outcomes[index] = APPLIED
            counts.applied += 1
            counts.unknown_role += int(c.unknown_role)
            result.unknown_roles[index] = c.unknown_role
            counts.ttl_deletes += int(c.change.ttl_delete)
            result.ttl_deletes[index] = c.change.ttl_delete
            created = c.change.created_at
            if created is not None and (newest is None or created > newest):
                newest = created
    if newest is not None:
        counts.lag_ms = max(0, int(now_ms - newest * 1000.0))
    if counts.failed:
        log.warning(
            "route %s: %d of %d record(s) failed and will be redelivered",
            ctx.route.name,
            counts.failed,
            counts.records,
        )


def _quarantine(rep: Replicator, ctx: RouteContext, change: Change, reason: str) -> bool:
    return quarantine_record(rep.store, ctx.route.name, change, reason, now=rep.clock())
