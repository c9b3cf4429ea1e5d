"""The README's cutover and rollback against the deployed stack (DESIGN.md section 8): the
real `dualwrite cutover` enabling the reverse mapping with its time filter, application
writes to CoreTable carried back to the old tables by the deployed replicator, `dualwrite
rollback`, application writes to the old tables carried forward again.

Nothing here replicates locally: only the deployed replicator, invoked by ministack through
the stack's event source mappings, writes the tables the steps then read back."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from typing import Any

from dualwrite import seed as seeding
from dualwrite.aws.tables import key_schema_of
from dualwrite.cli.demo_reverse import AppWrite, plan_writes
from dualwrite.control import ControlStore
from dualwrite.mapping import build_mapping
from dualwrite.reverse.direction import Direction, Flow, drain_ends_by_time
from dualwrite.traffic import TrafficPlan
from rehearse.adapt import Adaptation
from rehearse.context import CUTOVER_SETTINGS, Rehearsal
from rehearse.probes import REVERSE_MAPPING, TARGET, failure_queue_depth, short, stack_mappings
from rehearse.steps import StepFailed

#: application writes to the old tables after the rollback (at least this many per table)
OLD_TABLE_WRITES = 6

HOLD_GAP = Adaptation(
    "the replicator holding a record while the other direction drains",
    "ministack's DynamoDB stream poller ignores ReportBatchItemFailures: a batch the "
    "replicator answers with failed records is not retried, its position moves past them",
    "the application writes each side only once the drain is over by the Lambda's rule "
    "(T+O+max_lag_seconds plus the clocks' slack; the hold itself is tested in tests/)",
)


def _directions(r: Rehearsal) -> dict[str, Direction]:
    store = ControlStore(r.clients.dynamodb, r.migration.control_table)
    return {route.name: store.direction(route.name) for route in r.migration.routes}


def _drained_at(states: dict[str, Direction]) -> float:
    """When the Lambda counts the old direction of every route drained (by the clock)."""
    ends = []
    for state in states.values():
        end = drain_ends_by_time(state)
        assert end is not None
        ends.append(end)
    return max(ends)


def _await_drain(r: Rehearsal, direction: Flow) -> float:
    """Wait (bounded) until the old direction of the latest switch is drained by the
    Lambda's rule; returns how long that was."""
    states = _directions(r)
    wrong = {k: v.direction.value for k, v in states.items() if v.direction is not direction}
    if wrong:
        raise StepFailed(f"routes not {direction.value}: {wrong}")
    ready = _drained_at(states)
    started = time.time()
    r.say(f"the old direction drains until {time.strftime('%H:%M:%S', time.gmtime(ready))}Z")
    r.wait_for(lambda: time.time() >= ready, "the drain of the old direction")
    if HOLD_GAP not in r.adaptations:
        r.adaptations.append(HOLD_GAP)
    return time.time() - started


def cutover(r: Rehearsal) -> str:
    settings = ", ".join(f"cutover.{k}: {v}" for k, v in CUTOVER_SETTINGS.items())
    r.adaptations.append(
        Adaptation(
            "the drains after cutover and rollback as long as migrations/coretable.yaml makes them",
            "a rehearsal of minutes: each drain waits T+O+max_lag_seconds plus the clocks' slack",
            f"the CLI reads a copy of the migration file with {settings}",
        )
    )
    doc = r.dualwrite_json("cutover")
    if doc.get("status") != "done":
        raise StepFailed(f"cutover: {short(doc, 400)}")
    states = _directions(r)
    wrong = {k: v.direction.value for k, v in states.items() if v.direction is not Flow.REVERSE}
    if wrong:
        raise StepFailed(f"routes not reverse after the cutover: {wrong}")
    r.reverse_since = min(s.starts_at or 0.0 for s in states.values())
    t = time.strftime("%H:%M:%S", time.gmtime(min(s.switched_at or 0.0 for s in states.values())))
    return (
        f"done: {len(doc.get('functions') or [])} function(s) re-pointed (cutover.functions "
        f"is empty), {', '.join(states)} reverse from T={t}Z"
    )


def _pattern(mapping: dict[str, Any]) -> Any:
    filters = (mapping.get("FilterCriteria") or {}).get("Filters") or []
    if len(filters) != 1:
        raise StepFailed(
            f"{REVERSE_MAPPING}'s FilterCriteria: {short(mapping.get('FilterCriteria'))}"
        )
    return json.loads(filters[0]["Pattern"])


def reverse_mapping(r: Rehearsal) -> str:
    """get-event-source-mapping: the cutover enabled the reverse mapping with its filter."""
    mappings = stack_mappings(r)
    reverse = mappings[REVERSE_MAPPING]
    if reverse["State"] not in ("Enabled", "Enabling"):
        raise StepFailed(f"{REVERSE_MAPPING} is {reverse['State']} after the cutover")
    since = math.floor(r.reverse_since)
    wanted = {"dynamodb": {"ApproximateCreationDateTime": [{"numeric": [">=", since]}]}}
    if _pattern(reverse) != wanted:
        raise StepFailed(f"{REVERSE_MAPPING}'s filter {_pattern(reverse)}, not {wanted}")
    forward = {k: m["State"] for k, m in mappings.items() if k != REVERSE_MAPPING}
    if any(s not in ("Enabled", "Enabling") for s in forward.values()):
        raise StepFailed(f"a forward mapping is not enabled (it drains): {forward}")
    return (
        f"{REVERSE_MAPPING} {reverse['State']} on {TARGET}'s stream, FilterCriteria "
        f"ApproximateCreationDateTime >= {since} (T minus the margin), kept as given"
        f"; {', '.join(forward)} still enabled"
    )


def writes_to_core(r: Rehearsal) -> str:
    waited = _await_drain(r, Flow.REVERSE)
    ddb = r.clients.dynamodb
    data = seeding.generate(r.options.servers, r.options.memberships, seed=1)
    writes = plan_writes(ddb, data)
    if not writes:
        raise StepFailed("too few seeded servers or memberships left to write to")
    for w in writes:
        w.write(ddb)
    r.core_writes = writes
    return f"{len(writes)} writes after the forward drain ({waited:.0f}s): " + "; ".join(
        w.what for w in writes
    )


def _poll_held(r: Rehearsal, writes: list[AppWrite], what: str) -> float:
    """Poll until the old tables hold every write (bounded), saying the count as it grows."""
    ddb = r.clients.dynamodb
    started = time.monotonic()
    shown = -1

    def every() -> bool:
        nonlocal shown
        held = sum(1 for w in writes if w.held(ddb))
        if held != shown:
            r.say(f"{held}/{len(writes)} {what} ({time.monotonic() - started:.0f}s)")
            shown = held
        return held == len(writes)

    r.wait_for(every, what)
    return time.monotonic() - started


def reverse_replication(r: Rehearsal) -> str:
    seconds = _poll_held(r, r.core_writes, "writes in the old tables")
    skipped = failure_queue_depth(r)
    if skipped:
        raise StepFailed(f"{skipped} batch(es) of stream records skipped to the failure queue")
    last = stack_mappings(r)[REVERSE_MAPPING].get("LastProcessingResult")
    return (
        f"all {len(r.core_writes)} in the old tables after {seconds:.0f}s, applied by the "
        f"deployed replicator through {REVERSE_MAPPING} (last result: {last}); "
        "failure queue empty"
    )


FOREIGN_SERVER = "srv-rehearse-foreign"


def foreign_write(r: Rehearsal) -> str:
    """A writer nobody re-pointed writes ServersTable after the cutover: the deployed
    replicator lists it as a foreign write (reverse replication's own writes never count)."""
    ddb = r.clients.dynamodb
    item = {"id": {"S": FOREIGN_SERVER}, "name": {"S": "written by a forgotten writer"}}
    ddb.put_item(TableName=seeding.SERVERS_TABLE, Item=item)
    route = next(x.name for x in r.migration.routes if x.source == seeding.SERVERS_TABLE)
    r.foreign = {route: 1}

    def listed() -> dict[str, Any] | None:
        doc = r.dualwrite_json("status")
        found = next(x for x in doc["routes"] if x["route"] == route)
        return found if found["foreign_writes"] else None

    found = r.wait_for(listed, "the replicator to list the foreign write")
    keys = [k.get("key", k) for k in found["foreign_keys"]]
    if found["foreign_writes"] != 1 or FOREIGN_SERVER not in json.dumps(keys):
        raise StepFailed(f"foreign writes: {found['foreign_writes']}, {short(keys, 200)}")
    return (
        f"{seeding.SERVERS_TABLE} {FOREIGN_SERVER} put directly: {route} lists 1 foreign "
        f"write ({short(keys, 80)}), the {len(r.core_writes)} reverse writes none"
    )


def _status_routes(
    r: Rehearsal, direction: Flow, settled: Callable[[dict[str, Any]], bool]
) -> list[dict[str, Any]]:
    """`dualwrite status --json` polled until every route satisfies settled()."""

    def check() -> list[dict[str, Any]] | None:
        doc = r.dualwrite_json("status")
        routes: list[dict[str, Any]] = doc["routes"]
        if doc["quarantined"]:
            raise StepFailed(f"{doc['quarantined']} quarantined: {short(doc['quarantine'], 300)}")
        for x in routes:
            if x["direction"] != direction.value or x["foreign_writes"] != r.foreign.get(
                x["route"], 0
            ):
                raise StepFailed(
                    f"{x['route']}: direction {x['direction']}, {x['foreign_writes']} foreign "
                    f"write(s) {short(x.get('foreign_keys'), 200)}"
                )
        return routes if all(settled(x) for x in routes) else None

    found: list[dict[str, Any]] = r.wait_for(check, f"status to show every route {direction}")
    return found


def status_reverse(r: Rehearsal) -> str:
    routes = _status_routes(r, Flow.REVERSE, lambda x: not x["drain_pending"])
    return (
        ", ".join(f"{x['route']}: {x['direction']}" for x in routes)
        + "; forward's drain recorded as over (by the replicator), foreign writes "
        f"{_foreign(r)}, nothing quarantined"
    )


def rollback(r: Rehearsal) -> str:
    doc = r.dualwrite_json("rollback")
    if doc.get("status") != "done" or doc.get("switch_pending"):
        raise StepFailed(f"rollback: {short(doc, 400)}")
    states = _directions(r)
    wrong = {k: v.direction.value for k, v in states.items() if v.direction is not Flow.FORWARD}
    if wrong:
        raise StepFailed(f"routes not forward after the rollback: {wrong}")
    lost = [w.what for w in r.core_writes if not w.held(r.clients.dynamodb)]
    if lost:
        raise StepFailed(f"after the rollback the old tables lack: {'; '.join(lost)}")
    return (
        f"done: {', '.join(states)} forward again, {len(doc['unrepresentable'])} "
        f"unrepresentable; the old tables hold all {len(r.core_writes)} writes made to "
        f"{TARGET} since the cutover"
    )


def writes_to_old(r: Rehearsal) -> str:
    waited = _await_drain(r, Flow.FORWARD)
    ddb = r.clients.dynamodb
    plan = TrafficPlan(seeding.generate(r.options.servers, r.options.memberships, seed=1), 11)
    counts: dict[str, int] = {}
    r.old_writes = {}
    while min(counts.get(t, 0) for t in (seeding.SERVERS_TABLE, seeding.MEMBERSHIPS_TABLE)) < (
        OLD_TABLE_WRITES
    ):
        for op in plan.next_ops():
            if op.item is not None:
                ddb.put_item(TableName=op.table, Item=op.item)
            elif op.key is not None:
                ddb.delete_item(TableName=op.table, Key=op.key)
            if op.table == seeding.SERVERS_TABLE:  # the last write of each server counts
                key = op.item["id"] if op.item is not None else (op.key or {})["id"]
                r.old_writes[key["S"]] = op.item
            counts[op.table] = counts.get(op.table, 0) + 1
    shown = ", ".join(f"{t}: {n}" for t, n in counts.items())
    return f"puts and deletes after the reverse drain ({waited:.0f}s): {shown}"


def forward_replication(r: Rehearsal) -> str:
    started = time.monotonic()

    def at_parity() -> bool:
        done = r.dualwrite("reconcile", "--json", ok=(0, 3))
        doc = json.loads(done.stdout)
        drift = sum(x["missing"] + x["extra"] + x["mismatched"] for x in doc["routes"])
        r.say(f"{drift} differences left ({time.monotonic() - started:.0f}s)")
        return done.returncode == 0

    r.wait_for(at_parity, "the replicator to apply the writes to the old tables")
    servers = _servers_in_core(r)
    skipped = failure_queue_depth(r)
    if skipped:
        raise StepFailed(f"{skipped} batch(es) of stream records skipped to the failure queue")
    routes = _status_routes(r, Flow.FORWARD, lambda x: not x["drain_pending"])
    return (
        f"{TARGET} at parity after {time.monotonic() - started:.0f}s ({servers} written "
        f"servers each as mapped), by the deployed replicator; "
        f"{', '.join(x['route'] for x in routes)} forward, foreign writes {_foreign(r)} "
        f"({FOREIGN_SERVER} re-mapped into {TARGET}), failure queue empty"
    )


def _foreign(r: Rehearsal) -> str:
    return ", ".join(f"{x.name}: {r.foreign.get(x.name, 0)}" for x in r.migration.routes)


def _servers_in_core(r: Rehearsal) -> int:
    """Each server written to ServersTable after the rollback is in CoreTable as the servers
    mapping makes it (or gone, if its last write deleted it): checked key by key, besides
    the reconcile's digest."""
    ddb = r.clients.dynamodb
    route = next(x for x in r.migration.routes if x.source == seeding.SERVERS_TABLE)
    desc = ddb.describe_table(TableName=route.source)["Table"]
    mapping = build_mapping(route.mapping, key_schema_of(desc))
    wrong = []
    foreign = {"id": {"S": FOREIGN_SERVER}, "name": {"S": "written by a forgotten writer"}}
    for sid, item in {FOREIGN_SERVER: foreign, **r.old_writes}.items():
        (key,) = mapping.target_keys({"id": {"S": sid}})
        got = ddb.get_item(TableName=TARGET, Key=key, ConsistentRead=True).get("Item")
        if got != (None if item is None else mapping.transform(item)):
            wrong.append(sid)
    if wrong:
        raise StepFailed(f"servers not in {TARGET} as written to the old table: {wrong}")
    return len(r.old_writes) + 1
