"""The repair while a route replicates in reverse (DESIGN.md section 8): the truth follows
the direction, so the SOURCE is repaired from the target. Adapter.

Each confirmed difference becomes a synthetic target change (MODIFY with the target's item;
REMOVE when the target lacks the key) planned by the route's inverse, exactly as reverse
replication would apply it (dualwrite.reverse: batched reads, updates that keep what the
forward mapping drops, echoes write nothing), with its writes journaled as our own first so
the replicator does not take them for foreign writes. A key listed as a foreign write is
never rewritten or deleted: it is reported. Nor is any source item, unless the replicator
has read the old table's stream up to the repair's reads (`read_through`): a foreign write
it has not seen yet is a difference too (the old table changed, the target did not), and
was deleted as "missing" before anyone could list it. Creating a missing source item
destroys nothing and is always made.

Each write is conditional, as forward's repairs are (repair.write_repair), in one
TransactWriteItems: the source item must still be as read (conditions.still_holds) and every
target item it was planned from must still hold what the check read. A write that loses
that race (the live reverse replicator applied a newer target change, or the application
wrote the old table meanwhile) is never made in this run: its differences are read again
and judged (`settled` when someone else fixed them). Then both sides are read again:
`repaired` is what now agrees, `remaining` what does not.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

from dualwrite.aws.dynamo import RequestCounter
from dualwrite.conditions import UnsafeRepair, still_holds
from dualwrite.control import ControlStore
from dualwrite.errors import ConditionFailedError, DualwriteError
from dualwrite.reverse.echo import net_writes
from dualwrite.reverse.foreign import narrowed, own_writes
from dualwrite.reverse.model import (
    MODIFY,
    REMOVE,
    KeyId,
    SourceWrite,
    TargetChange,
    WriteKind,
    kid,
    leaves,
)
from dualwrite.reverse.plan import batch_reads, plan_batch, planner_for
from dualwrite.reverse.writer import ReverseWriter, update_request
from dualwrite.wire import Item, key_id, key_text
from reconciler.compare import Candidate, Difference
from reconciler.confirm import reread
from reconciler.reads import Sides
from reconciler.repair import RepairReport, transact

#: DynamoDB's limit on the items of one TransactWriteItems
TRANSACT_MAX = 100


def synthetic_change(d: Difference) -> TargetChange:
    """What reverse replication would have seen for this difference."""
    if d.actual is not None:
        return TargetChange(MODIFY, dict(d.target_key), dict(d.actual))
    return TargetChange(REMOVE, dict(d.target_key), None)


#: why the old table's stream may hold unread changes made before a time, or None
ReadThrough = Callable[[float], str | None]


def reverse_repair(
    sides: Sides,
    differences: Sequence[Difference],
    store: ControlStore,
    read_through: ReadThrough,
) -> RepairReport:
    report = RepairReport()
    if not differences:
        return report
    route = sides.route
    mapping = route.mapping
    planner = planner_for(mapping)
    if planner is None:
        report.remaining.extend(differences)
        report.held.update(key_id(d.target_key) for d in differences)
        report.notes.append(
            f"route {route.name} is reverse but mapping {mapping.name} has no inverse: the "
            "source cannot be repaired from the target"
        )
        return report
    writer = ReverseWriter(
        sides.ddb,
        route.name,
        route.source,
        route.target,
        mapping,
        counter=sides.counter or RequestCounter(),
        name_for=route.name_for,
    )
    changes = [synthetic_change(d) for d in differences]
    found = writer.read(batch_reads(planner, changes))
    read_at = store.now()  # every source item the writes replace was read by now
    plan = plan_batch(planner, changes, found, mapping.group_attr)
    listed = {kid(w.key) for w in store.foreign_writes(route.name, unresolved_only=True)}
    foreign = set(listed)
    netted = net_writes(plan.writes, found.source).writes
    held = [w for w in netted if w.kid not in foreign and w.kid in found.source]
    unread = read_through(read_at) if held else None
    if unread is not None:
        for w in held:
            report.notes.append(
                f"{route.source} {key_text(w.key)}: not repaired, it may hold a foreign write "
                f"not listed yet: {unread}"
            )
        foreign |= {w.kid for w in held}
    writes = tuple(w for w in netted if w.kid not in foreign)
    for w in netted:
        if w.kid in listed:
            key = key_text(w.key)
            report.notes.append(
                f"{route.source} {key} is a listed foreign write: not repaired (a repair never "
                "rewrites or deletes one; `dualwrite foreign --resolve` once it is handled)"
            )
    for index, reason in plan.unrepresentable:
        report.notes.append(reason)
        report.held.add(key_id(differences[index].target_key))
    raced: set[int] = set()
    own = None
    if writes:
        at = store.now()
        span = at + writer.write_span_s
        own = own_writes(route.name, writes, found.source, at, span, writer.new_id())
        store.record_own_writes(own)
        planned_from: dict[KeyId, list[int]] = {}
        for index, ids in enumerate(plan.touched):
            for source_id in ids:
                planned_from.setdefault(source_id, []).append(index)
        for w in writes:
            truths = [differences[i] for i in planned_from.get(w.kid, ())]
            try:
                write_conditionally(sides, w, found.source.get(w.kid), truths)
            except ConditionFailedError:
                raced.update(planned_from.get(w.kid, ()))
            except UnsafeRepair as exc:
                report.notes.append(str(exc))
                report.held.update(
                    key_id(differences[i].target_key) for i in planned_from.get(w.kid, ())
                )
    if own is not None:
        with contextlib.suppress(DualwriteError):  # else the open span stays: a wider window
            store.record_own_writes(narrowed(own, store.now()))
    for index, (r, d) in enumerate(
        zip(reread(sides, [d.as_candidate() for d in differences]), differences, strict=True)
    ):
        if r.kind is not None:
            report.remaining.append(r.difference())
        elif index in raced:
            report.settled.append(d)
        else:
            report.repaired.append(d)
    _derived_left(sides, differences, writes, report)
    if report.repaired:  # the truth follows the direction; said only when a write was made
        report.notes.append(
            f"route {route.name} replicates in reverse: {route.source} was repaired from "
            f"{route.target}"
        )
    return report


def _derived_left(
    sides: Sides,
    differences: Sequence[Difference],
    writes: Sequence[SourceWrite],
    report: RepairReport,
) -> None:
    """The derived items (User) of the groups the writes touched, judged again: a write to a
    membership changes its user's User item too. Deleting a user's last membership left the
    target's User item extra while the repair said parity."""
    mapping = sides.route.mapping
    attr = mapping.group_attr
    if not attr or not writes:
        return
    judged = {key_id(d.target_key) for d in differences}
    groups: dict[str, Candidate] = {}
    for w in writes:
        group = w.key.get(attr)
        if group is None:
            continue
        key = mapping.derived_key(group)
        if key_id(key) not in judged:
            candidate = Candidate(sides.route.name, key, None, group, None, None)
            groups.setdefault(key_id(key), candidate)
    for r in reread(sides, list(groups.values())):
        if r.kind is None:
            continue
        report.remaining.append(r.difference())
        report.held.add(key_id(r.candidate.target_key))
        report.notes.append(
            f"{sides.route.target} {key_text(r.candidate.target_key)} is {r.kind} after the "
            "repair: the source cannot make it (a derived item the memberships left behind)"
        )


def write_conditionally(
    sides: Sides, write: SourceWrite, before: Item | None, truths: Sequence[Difference]
) -> None:
    """One source write, made only if the source item is still `before` and every target
    item of `truths` still holds what the check read (ConditionFailedError otherwise)."""
    route = sides.route
    condition = still_holds(before, route.source_names, leaves(write, before))
    body: dict[str, Any]
    if write.kind is WriteKind.UPDATE:
        op, body = "Update", update_request(route.source, write)
        # update_request's placeholders (#s, :s, #r) and the condition's (#a, :v, #n, #k)
        # never collide
        body["ConditionExpression"] = condition.expression
        body["ExpressionAttributeNames"] = {**body["ExpressionAttributeNames"], **condition.names}
        if condition.values:
            values = body.get("ExpressionAttributeValues", {})
            body["ExpressionAttributeValues"] = {**values, **condition.values}
    elif write.kind is WriteKind.PUT:
        op, body = "Put", {"TableName": route.source, "Item": write.item, **condition.kwargs()}
    else:
        op, body = "Delete", {"TableName": route.source, "Key": write.key, **condition.kwargs()}
    checks: dict[str, dict[str, Any]] = {}
    for d in truths:  # one check per target item (a transaction touches an item once)
        held = still_holds(d.actual, route.target_names)
        check = {"TableName": route.target, "Key": d.target_key, **held.kwargs()}
        checks.setdefault(key_id(d.target_key), {"ConditionCheck": check})
    if len(checks) + 1 > TRANSACT_MAX:
        raise UnsafeRepair(
            f"{route.source}: a repair write planned from {len(checks)} target items cannot be "
            f"conditioned on all of them in one transaction (at most {TRANSACT_MAX - 1})"
        )
    transact(sides, [*checks.values(), {op: body}], route.source)
