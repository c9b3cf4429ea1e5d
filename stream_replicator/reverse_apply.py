"""The reverse half of a batch (DESIGN.md section 8): a route's target-stream records applied
to its source through the inverse mapping, and the source-stream records of the check window
told apart into reverse replication's own writes and foreign writes.

Per route and batch: the records are decoded (one that does not decode is quarantined), the
ReverseWriter plans, nets (an echo writes nothing), journals its own writes and writes them;
a change the old schema cannot hold is quarantined with its "unrepresentable: ..." reason;
a change whose writes did not all land fails, and so does every later record of the same
target key (the stream redelivers them in order; the plans are idempotent).
"""

from __future__ import annotations

import binascii
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from dualwrite.aws.dynamo import RequestCounter
from dualwrite.errors import ConfigError, DualwriteError
from dualwrite.reverse.direction import Direction
from dualwrite.reverse.foreign import ForeignWrite, SourceChange, foreign_writes
from dualwrite.reverse.model import KeyId, TargetChange, kid
from dualwrite.reverse.writer import ReverseWriter
from dualwrite.wire import Item, decode_json_item, key_of
from stream_replicator.quarantine import quarantine_record
from stream_replicator.records import REMOVE, Change
from stream_replicator.results import (
    APPLIED,
    FAILED,
    HELD,
    QUARANTINED,
    SKIPPED,
    BatchResult,
    Mark,
    RouteCounts,
)

if TYPE_CHECKING:
    from stream_replicator.apply import Replicator, RouteContext

log = logging.getLogger("dualwrite-replicator.reverse")

#: how long after its journal entry a reverse batch's writes may still be made: Lambda's
#: longest invocation (the writer journals before it writes)
WRITE_SPAN_S = 900.0
#: what decoding a stream record's images may raise (bad base64, not an AttributeValue)
DECODE_ERRORS = (ValueError, TypeError, AttributeError, KeyError, binascii.Error)


def _newest(changes: Sequence[Change], ok: Callable[[int], bool]) -> float | None:
    times = [c.created_at for c in changes if c.created_at is not None and ok(c.index)]
    return max(times) if times else None


def apply_target(
    rep: Replicator,
    ctx: RouteContext,
    changes: Sequence[Change],
    result: BatchResult,
    counts: RouteCounts,
    has_time: Callable[[], bool],
) -> None:
    """Apply a route's target-stream records (verdict APPLY) to its source."""
    route = ctx.route.name
    decoded: list[tuple[Change, TargetChange]] = []
    for c in changes:
        try:
            decoded.append((c, TargetChange.from_lambda(c.raw)))
        except DECODE_ERRORS as exc:
            _quarantine(rep, route, c, f"stream record cannot be decoded: {exc}", None, result)
    if not decoded:
        _count(changes, result, counts)
        return
    try:
        writer = ReverseWriter(
            rep.dynamodb,
            route,
            ctx.route.source,
            ctx.route.target,
            ctx.mapping,
            backoff=rep.backoff,
            counter=rep.counter if rep.counter is not None else RequestCounter(),
            clock=rep.clock,
            has_time=has_time,
            journal=rep.store.record_own_writes,
            name_for=rep.name_for if rep.migration.cognito_user_pool_id else None,
            write_span_s=WRITE_SPAN_S,
        )
    except ConfigError as exc:  # no inverse: the old schema cannot take any of it
        for c, _ in decoded:
            reason = f"unrepresentable: {exc}"
            _quarantine(rep, route, c, reason, Mark.UNREPRESENTABLE, result)
        _count(changes, result, counts)
        return
    failed: set[int] = set()
    try:
        done = writer.apply([t for _, t in decoded])
    except (DualwriteError, ValueError) as exc:
        log.warning("route %s: reverse batch failed (%s); it is retried", route, exc)
        for c, _ in decoded:
            result.mark(c.index, FAILED, None, f"reverse: {exc}")
            failed.add(c.index)
    else:
        for position in done.failed:
            c = decoded[position][0]
            result.mark(c.index, FAILED, None, "reverse: source writes did not all land")
            failed.add(c.index)
        for position, reason in done.unrepresentable:
            c = decoded[position][0]
            if c.index not in failed:
                _quarantine(rep, route, c, reason, Mark.UNREPRESENTABLE, result)
        for c, _ in decoded:
            if result.outcomes[c.index] is APPLIED and c.index not in failed:
                result.mark(c.index, APPLIED, Mark.REVERSE, None)
        if done.written:
            log.debug(
                "route %s: reverse wrote %d put(s), %d update(s), %d delete(s); %d echo(es)",
                route,
                done.puts,
                done.updates,
                done.deletes,
                done.unchanged,
            )
    # nothing overtakes a failed record (a write or a quarantine entry that did not land):
    # later records of its target key fail too
    if any(result.outcomes[c.index] is FAILED for c, _ in decoded):
        broken: set[KeyId] = set()
        for c, t in decoded:
            key = kid(t.keys)
            if result.outcomes[c.index] is FAILED:
                broken.add(key)
            elif key in broken:
                result.mark(c.index, FAILED, None, "an earlier record of the same key failed")
    _count(changes, result, counts)
    newest = _newest(changes, lambda i: result.marks[i] is Mark.REVERSE)
    if newest is not None:
        counts.lag_ms = max(0, int(rep.clock() * 1000.0 - newest * 1000.0))


def check_foreign(
    rep: Replicator,
    ctx: RouteContext,
    state: Direction,
    changes: Sequence[Change],
    result: BatchResult,
    counts: RouteCounts,
) -> None:
    """Source-stream records made after T+O while reverse is live: write nothing; list the
    ones reverse replication did not make as foreign writes."""
    route = ctx.route.name
    names = ctx.mapping.source_key.names
    seen: list[tuple[Change, SourceChange]] = []
    for c in changes:
        if c.ttl_delete:  # DynamoDB's TTL, nobody's write: the target's own TTL expires it
            result.mark(c.index, SKIPPED, None, None)
            continue
        try:
            seen.append((c, _source_change(c, names)))
        except DECODE_ERRORS as exc:
            _quarantine(rep, route, c, f"stream record cannot be decoded: {exc}", None, result)
    times = [s.created_at for _, s in seen if s.created_at is not None]
    try:
        journal = rep.store.own_writes(route, min(times), max(times), WRITE_SPAN_S) if times else []
        found = []
        suspects: list[tuple[Change, SourceChange]] = []
        for c, s in seen:
            if foreign_writes(route, state, [s], journal):
                suspects.append((c, s))
            else:
                result.mark(c.index, SKIPPED, None, None)
        # a foreign write is listed only by the direction as it is now (the cached one may
        # be older than a rollback's switch back: the application's own writes then wait)
        fresh = rep.directions.read(route) if suspects and state.next_at is None else state
        for c, s in suspects:
            if fresh != state and not foreign_writes(route, fresh, [s], journal):
                result.mark(c.index, HELD, Mark.WAITING, "the direction changed: decided again")
                counts.waiting += 1
                continue
            result.mark(c.index, SKIPPED, Mark.FOREIGN, None)
            found.append(ForeignWrite(route, s.key, s.created_at))
        if found:
            rep.store.record_foreign(found)
            log.warning(
                "route %s: %d foreign write(s) to %s since the cutover (listed by key)",
                route,
                len(found),
                ctx.route.source,
            )
    except DualwriteError as exc:
        log.warning("route %s: foreign-write check failed (%s); retried", route, exc)
        for c, _ in seen:
            result.mark(c.index, FAILED, None, f"foreign-write check: {exc}")
    _count(changes, result, counts)


def _source_change(c: Change, names: Sequence[str]) -> SourceChange:
    body = c.body
    keys = body.get("Keys")
    image = body.get("NewImage")
    new: Item | None = None
    if c.event_name != REMOVE and isinstance(image, dict):
        new = decode_json_item(image)
    source = decode_json_item(keys) if isinstance(keys, dict) else new
    if source is None:
        raise ValueError("the record has no Keys")
    return SourceChange(key_of(source, names), new, c.created_at, c.sequence_number)


def _quarantine(
    rep: Replicator,
    route: str,
    change: Change,
    reason: str,
    mark: Mark | None,
    result: BatchResult,
) -> None:
    if quarantine_record(rep.store, route, change, reason, now=rep.clock()):
        result.mark(change.index, QUARANTINED, mark, reason)
    else:
        result.mark(change.index, FAILED, None, "could not write the quarantine entry")


def _count(changes: Sequence[Change], result: BatchResult, counts: RouteCounts) -> None:
    for c in changes:
        outcome, mark = result.outcomes[c.index], result.marks[c.index]
        if outcome is FAILED:
            counts.failed += 1
        elif outcome is QUARANTINED:
            counts.quarantined += 1
            counts.unrepresentable += int(mark is Mark.UNREPRESENTABLE)
        elif outcome is SKIPPED:
            counts.skipped += 1
            counts.foreign_writes += int(mark is Mark.FOREIGN)
        elif mark is Mark.REVERSE:
            counts.reverse_replicated += 1
