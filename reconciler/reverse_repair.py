"""The repair while a route replicates in reverse (DESIGN.md section 8): the truth follows
the direction, so the SOURCE is repaired from the target. Adapter.

Each confirmed difference becomes a synthetic target change (MODIFY with the target's item;
REMOVE when the target lacks the key) planned by the route's inverse, exactly as reverse
replication would apply it (dualwrite.reverse: batched reads, updates that keep what the
forward mapping drops, echoes write nothing), with its writes journaled as our own first so
the replicator does not take them for foreign writes. A key listed as a foreign write is
never rewritten or deleted: it is reported. Then both sides are read again: `repaired` is
what now agrees, `remaining` what does not.
"""

from __future__ import annotations

from collections.abc import Sequence

from dualwrite.aws.dynamo import RequestCounter
from dualwrite.control import ControlStore
from dualwrite.reverse.echo import net_writes
from dualwrite.reverse.foreign import own_writes
from dualwrite.reverse.model import MODIFY, REMOVE, Reads, TargetChange, kid
from dualwrite.reverse.plan import plan_batch, planner_for
from dualwrite.reverse.writer import ReverseWriter
from dualwrite.wire import scalar_text
from reconciler.compare import Difference
from reconciler.confirm import reread
from reconciler.reads import Sides
from reconciler.repair import RepairReport


def synthetic_change(d: Difference) -> TargetChange:
    """What reverse replication would have seen for this difference."""
    if d.actual is not None:
        return TargetChange(MODIFY, dict(d.target_key), dict(d.actual))
    return TargetChange(REMOVE, dict(d.target_key), None)


def reverse_repair(
    sides: Sides, differences: Sequence[Difference], store: ControlStore
) -> RepairReport:
    report = RepairReport()
    if not differences:
        return report
    route = sides.route
    mapping = route.mapping
    planner = planner_for(mapping)
    if planner is None:
        report.remaining.extend(differences)
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
    report.notes.append(
        f"route {route.name} replicates in reverse: {route.source} was repaired from {route.target}"
    )
    changes = [synthetic_change(d) for d in differences]
    found = writer.read(Reads.union(planner.reverse_reads(c) for c in changes))
    plan = plan_batch(planner, changes, found, mapping.group_attr)
    foreign = {kid(w.key) for w in store.foreign_writes(route.name)}
    netted = net_writes(plan.writes, found.source).writes
    writes = tuple(w for w in netted if w.kid not in foreign)
    for w in netted:
        if w.kid in foreign:
            key = " ".join(f"{n}={scalar_text(v)}" for n, v in w.key.items())
            report.notes.append(
                f"{route.source} {key} is a listed foreign write: not repaired (a repair never "
                "rewrites or deletes one)"
            )
    for _index, reason in plan.unrepresentable:
        report.notes.append(reason)
    if writes:
        at = store.now()
        store.record_own_writes(
            own_writes(route.name, writes, found.source, at, at + writer.write_span_s)
        )
        writer.write(writes)
    for r, d in zip(
        reread(sides, [d.as_candidate() for d in differences]), differences, strict=True
    ):
        if r.kind is None:
            report.repaired.append(d)
        else:
            report.remaining.append(r.difference())
    return report
