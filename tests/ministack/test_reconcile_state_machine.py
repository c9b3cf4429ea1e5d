"""The reconcile state machine of infra/ executed on ministack, with real Lambda workers
running our handlers (tests/ministack/reconcile_stack.py): parity the cutover gate accepts,
planted differences found exactly, never two executions at once."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

from backfill.job import run_backfill
from dualwrite import seed as seeding
from dualwrite.aws.clients import Clients
from dualwrite.config import Migration
from dualwrite.control import ControlStore
from dualwrite.cutover.gate import CutoverLimits, reconcile_check
from reconciler import sfn_lock
from tests.conftest import MIGRATIONS
from tests.ministack.reconcile_stack import deploy_reconcile
from tests.ministack.test_backfill_state_machine import (
    finished,
    padded_servers,
    prepare_sources,
    run,
)
from tests.ministack_harness import Ministack

#: small segments: several units per table, so the map has children to merge
INPUT = {"total_segments": 2, "settle_s": 0.2}


def backfilled(clients: Clients) -> tuple[Migration, ControlStore]:
    migration = prepare_sources(clients, servers=30, memberships=90)
    store = ControlStore(clients.dynamodb, migration.control_table)
    run_backfill(migration, clients, store, enable_event_sources=False)
    return migration, store


def target_key(server: str) -> dict[str, Any]:
    return {"PK": {"S": f"SERVER#{server}"}, "SK": {"S": "METADATA"}}


def plant(clients: Clients) -> dict[str, set[str]]:
    """Differences in the servers route's part of CoreTable: kind -> server ids."""
    ddb = clients.dynamodb
    planted: dict[str, set[str]] = {"missing": set(), "extra": set(), "mismatched": set()}
    for i in (1, 4, 9):
        ddb.delete_item(TableName="CoreTable", Key=target_key(seeding.server_id(i)))
        planted["missing"].add(seeding.server_id(i))
    for ghost in ("ghost-1", "ghost-2"):
        ddb.put_item(TableName="CoreTable", Item={**target_key(ghost), "name": {"S": "ghost"}})
        planted["extra"].add(ghost)
    for i in (2, 7):
        ddb.update_item(
            TableName="CoreTable",
            Key=target_key(seeding.server_id(i)),
            UpdateExpression="SET #n = :v",
            ExpressionAttributeNames={"#n": "name"},
            ExpressionAttributeValues={":v": {"S": "drifted"}},
        )
        planted["mismatched"].add(seeding.server_id(i))
    return planted


def gate_ok(migration: Migration, store: ControlStore, route: str) -> bool:
    limit = CutoverLimits.of(migration).max_reconcile_age_s
    return reconcile_check(route, store.last_reconcile(route), time.time(), limit).ok


def map_children(clients: Clients, execution: str) -> dict[str, int]:
    """Distributed Map label -> child executions it ran."""
    sfn = clients.client("stepfunctions")
    out: dict[str, int] = {}
    for map_run in sfn.list_map_runs(executionArn=execution)["mapRuns"]:
        label = map_run["mapRunArn"].split("/")[-1].split(":")[0]
        children = sfn.list_executions(mapRunArn=map_run["mapRunArn"])["executions"]
        out[label] = out.get(label, 0) + len(children)
    return out


def status_json(server: Ministack) -> dict[str, Any]:
    """`dualwrite status --json` against ministack, as an operator would run it."""
    done = subprocess.run(
        [sys.executable, "-m", "dualwrite", "--config", str(MIGRATIONS / "coretable.yaml"),
         "--endpoint-url", server.endpoint, "status", "--json"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    data: dict[str, Any] = json.loads(done.stdout)
    return data


def output(clients: Clients, arn: str, server: Ministack) -> dict[str, Any]:
    desc = finished(clients, arn, server)
    assert desc["status"] == "SUCCEEDED", desc
    result: dict[str, Any] = json.loads(desc["output"])
    return result


def test_a_parity_run_the_gate_accepts_then_planted_differences_found_exactly(
    ms_clients: Clients, ministack: Ministack
) -> None:
    migration, store = backfilled(ms_clients)
    stack = deploy_reconcile(ms_clients)
    assert store.last_reconcile("servers") is None

    first = run(ms_clients, stack.state_machine_arn, dict(INPUT))
    out = output(ms_clients, first, ministack)
    assert out["parity"] is True, out
    assert sorted(r["route"] for r in out["routes"]) == ["memberships", "servers"]
    # 2 segments of each source and of CoreTable; no bucket differs: no exact phase
    assert map_children(ms_clients, first) == {"DigestSegments": 6}
    for route in ("servers", "memberships"):
        record = store.last_reconcile(route)
        assert record is not None and record.parity, record
        assert record.to_json()["mode"] == "state-machine"
        assert record.to_json()["exact_buckets"] == 0  # digests cancelled out: no item reads
        assert gate_ok(migration, store, route)
    servers = store.last_reconcile("servers")
    assert servers is not None
    assert servers.to_json()["source_items"] == 30 == servers.to_json()["expected_target_items"]
    assert servers.to_json()["target_items"] == 30
    assert sfn_lock.holder(store) is None  # released at the end
    shown = {r["route"]: r["last_reconcile"] for r in status_json(ministack)["routes"]}
    for route in ("servers", "memberships"):
        assert shown[route]["parity"] is True and shown[route]["mode"] == "state-machine"
        assert (shown[route]["missing"], shown[route]["extra"]) == (0, 0)

    planted = plant(ms_clients)
    arn = run(ms_clients, stack.state_machine_arn, {**INPUT, "route": "servers"})
    out = output(ms_clients, arn, ministack)
    # the servers route alone: its source and CoreTable, then the same units item by item
    assert map_children(ms_clients, arn) == {"DigestSegments": 4, "ExactSegments": 4}
    assert out["parity"] is False
    (summary,) = out["routes"]
    assert (summary["missing"], summary["extra"], summary["mismatched"]) == (3, 2, 2)
    record = store.last_reconcile("servers")
    assert record is not None and not record.parity
    assert (record.missing, record.extra, record.mismatched) == (3, 2, 2)
    assert 0 < record.to_json()["exact_buckets"] <= 7
    found: dict[str, set[str]] = {"missing": set(), "extra": set(), "mismatched": set()}
    for d in record.to_json()["differences"]:
        found[d["kind"]].add(d["key"]["PK"]["S"].removeprefix("SERVER#"))
        if d["kind"] == "mismatched":
            assert d["attributes"] == ["name"]
    assert found == planted
    assert not gate_ok(migration, store, "servers")
    assert gate_ok(migration, store, "memberships")  # not checked again: its record stands
    assert sfn_lock.holder(store) is None


WAIT_MACHINE = {
    "StartAt": "Hold",
    "States": {"Hold": {"Type": "Wait", "Seconds": 600, "End": True}},
}


def test_never_two_at_once_and_a_dead_holder_does_not_block(
    ms_clients: Clients, ministack: Ministack
) -> None:
    migration, store = backfilled(ms_clients)
    stack = deploy_reconcile(ms_clients)
    sfn = ms_clients.client("stepfunctions")
    # an execution that is running and holds the lock (as a long reconcile would)
    other = sfn.create_state_machine(
        name="holder",
        definition=json.dumps(WAIT_MACHINE),
        roleArn="arn:aws:iam::000000000000:role/holder",
    )["stateMachineArn"]
    holder_arn = sfn.start_execution(stateMachineArn=other)["executionArn"]
    is_running = sfn_lock.execution_running(sfn)
    assert sfn_lock.acquire(store, holder_arn, "earlier", is_running) is None

    out = output(ms_clients, run(ms_clients, stack.state_machine_arn, dict(INPUT)), ministack)
    assert out == {"skip": True, "running": holder_arn}
    assert store.last_reconcile("servers") is None  # it did nothing
    held = sfn_lock.holder(store)
    assert held is not None and held.execution == holder_arn

    # the holder ends without releasing the lock: the next execution takes it over
    sfn.stop_execution(executionArn=holder_arn)
    out = output(ms_clients, run(ms_clients, stack.state_machine_arn, dict(INPUT)), ministack)
    assert out["parity"] is True, out
    assert gate_ok(migration, store, "servers") and gate_ok(migration, store, "memberships")
    assert sfn_lock.holder(store) is None


def invocations_per_child(clients: Clients, execution: str) -> list[int]:
    """Per Distributed Map child: how many times its task ran (1 + continuations)."""
    sfn = clients.client("stepfunctions")
    out = []
    for map_run in sfn.list_map_runs(executionArn=execution)["mapRuns"]:
        for child in sfn.list_executions(mapRunArn=map_run["mapRunArn"])["executions"]:
            events = sfn.get_execution_history(executionArn=child["executionArn"])["events"]
            out.append(sum(1 for e in events if e["type"] == "TaskSucceeded"))
    return out


def test_a_unit_out_of_time_is_continued_from_its_record(
    ms_clients: Clients, ministack: Ministack
) -> None:
    migration = prepare_sources(ms_clients, servers=0, memberships=0)
    padded_servers(ms_clients, 24)  # a Scan page stops at 1 MB: several pages per segment
    store = ControlStore(ms_clients.dynamodb, migration.control_table)
    run_backfill(migration, ms_clients, store, enable_event_sources=False)
    ms_clients.dynamodb.delete_item(TableName="CoreTable", Key=target_key("srv-005"))
    # far beyond any Lambda timeout: every invocation stops after its first page
    stack = deploy_reconcile(
        ms_clients,
        environment={"ReconcileSegmentFunction": {"DUALWRITE_RECONCILE_MARGIN_MS": str(10**9)}},
    )
    arn = run(ms_clients, stack.state_machine_arn, {**INPUT, "total_segments": 1})
    out = output(ms_clients, arn, ministack)
    counts = invocations_per_child(ms_clients, arn)
    assert max(counts) >= 3, counts  # a unit of many pages went on where it had stopped
    record = store.last_reconcile("servers")
    assert record is not None
    assert (record.missing, record.extra, record.mismatched) == (1, 0, 0), out
    assert record.to_json()["source_items"] == 24 and record.to_json()["target_items"] == 23
    (missing,) = record.to_json()["differences"]
    assert missing["key"] == target_key("srv-005")
