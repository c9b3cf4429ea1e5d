"""After a rollback's drain, forward re-maps each listed foreign write (DESIGN.md section 8,
reverse-wiring decision 6): a write made to an old table while reverse was live never reached
the new table, and forward's stream window (from the rollback's T minus the margin) does not
hold it. The key's source item is read now and applied forward as if it were a MODIFY (or,
when the item is gone, a REMOVE) record of that key; then the write is marked re-mapped. It
stays listed (status counts it, decommission is refused)."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from dualwrite.aws.dynamo import batch_get
from dualwrite.reverse.foreign import ForeignWrite
from dualwrite.wire import key_id, to_lambda_json
from stream_replicator import forward_apply
from stream_replicator.records import MODIFY, REMOVE, StreamRecord, parse
from stream_replicator.results import APPLIED, QUARANTINED, BatchResult, RouteCounts

if TYPE_CHECKING:
    from stream_replicator.apply import Replicator, RouteContext

log = logging.getLogger("dualwrite-replicator.remap")

#: the synthetic records' stream ARN names the source table, as a real record's does
_ARN = "arn:aws:dynamodb:local:000000000000:table/{table}/stream/remap"


def remap_foreign(
    rep: Replicator, ctx: RouteContext, has_time: Callable[[], bool]
) -> tuple[int, int]:
    """Re-maps the route's foreign writes not re-mapped yet; returns how many were, and how
    many are left (their writes failed: tried again later). Raises DualwriteError when the
    list or the source cannot be read."""
    pending = [w for w in rep.store.foreign_writes(ctx.route.name) if w.remapped_at is None]
    if not pending:
        return 0, 0
    done = carry_foreign(rep, ctx, pending, has_time)
    log.info(
        "route %s: %d of %d foreign write(s) re-mapped into %s",
        ctx.route.name,
        len(done),
        len(pending),
        ctx.route.target,
    )
    return len(done), len(pending) - len(done)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def carry_foreign(
    rep: Replicator,
    ctx: RouteContext,
    writes: Sequence[ForeignWrite],
    has_time: Callable[[], bool],
) -> list[tuple[ForeignWrite, bool]]:
    """Applies forward what the source holds now for each foreign-written key (the item, or
    its absence) and marks those that landed re-mapped; returns them, each with whether the
    mapping quarantined it rather than writing it. Also what `dualwrite foreign --carry`
    does while the route is still reverse."""
    if not writes:
        return []
    names = ctx.mapping.source_key.names
    items = batch_get(rep.dynamodb, ctx.route.source, [w.key for w in writes], counter=rep.counter)
    records: list[StreamRecord] = []
    for n, write in enumerate(writes, start=1):
        item = items.get(key_id(write.key))
        body: dict[str, object] = {
            "Keys": to_lambda_json({k: write.key[k] for k in names if k in write.key}),
            "SequenceNumber": str(n),
        }
        if item is not None:
            body["NewImage"] = to_lambda_json(item)
        records.append(
            {
                # names the write, not its place in this call: the quarantine's marker is
                # keyed on it, and "remap-1" of a later call was taken for the first's entry
                # (a second unmappable key was counted quarantined and never listed)
                "eventID": f"remap-{_digest(key_id(write.key))}-{write.at}",
                "eventName": MODIFY if item is not None else REMOVE,
                "dynamodb": body,
                "eventSourceARN": _ARN.format(table=ctx.route.source),
            }
        )
    changes = [parse(r, i) for i, r in enumerate(records)]
    result = BatchResult(
        [c.sequence_number for c in changes],
        [APPLIED] * len(changes),
        [None] * len(changes),
        unknown_roles=[False] * len(changes),
        ttl_deletes=[False] * len(changes),
        route_names=[ctx.route.name] * len(changes),
        streams=[records[0]["eventSourceARN"]] * len(changes),
        marks=[None] * len(changes),
    )
    forward_apply.apply_forward(
        rep, ctx, changes, result, RouteCounts(records=len(changes)), has_time
    )
    now = rep.clock()
    done = []
    for write, outcome in zip(writes, result.outcomes, strict=True):
        if outcome in (APPLIED, QUARANTINED):  # a quarantined item is listed there instead
            rep.store.mark_remapped(write, now)
            done.append((replace(write, remapped_at=now), outcome is QUARANTINED))
    return done
