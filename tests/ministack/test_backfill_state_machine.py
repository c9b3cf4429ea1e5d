"""The backfill state machine of infra/ executed on ministack, with real Lambda workers
running our handlers (see tests/ministack/stack.py for how the stack is made)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from dualwrite import prepare as preparing
from dualwrite import seed as seeding
from dualwrite.aws.clients import Clients
from dualwrite.config import Migration, load_migration
from dualwrite.control import ControlStore, Phase
from tests.conftest import MIGRATIONS
from tests.ministack.denyproxy import DenyOnce
from tests.ministack.stack import deploy
from tests.ministack_harness import Ministack
from tests.parity import parity_problems

DEADLINE_S = 120.0


def prepare_sources(clients: Clients, servers: int, memberships: int) -> Migration:
    """Seeded sources, then `prepare` (streams on, control table, CoreTable)."""
    migration = load_migration(MIGRATIONS / "coretable.yaml")
    data = seeding.generate(servers, memberships, seed=7)
    seeding.ensure_tables(clients)
    seeding.write_items(clients, seeding.SERVERS_TABLE, data.servers)
    seeding.write_items(clients, seeding.MEMBERSHIPS_TABLE, data.memberships)
    plan = preparing.analyze(migration, clients, backup=False)
    preparing.apply(migration, clients, plan, backup=False)
    return migration


def wait_for(check: Callable[[], Any], what: str, deadline_s: float = DEADLINE_S) -> Any:
    """Poll check() until it returns something truthy, or fail after the deadline."""
    deadline = time.monotonic() + deadline_s
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def run(clients: Clients, machine: str, payload: dict[str, Any]) -> str:
    sfn = clients.client("stepfunctions")
    return str(
        sfn.start_execution(stateMachineArn=machine, input=json.dumps(payload))["executionArn"]
    )


def finished(clients: Clients, execution: str, server: Ministack) -> dict[str, Any]:
    sfn = clients.client("stepfunctions")

    def done() -> dict[str, Any] | None:
        desc = sfn.describe_execution(executionArn=execution)
        return None if desc["status"] == "RUNNING" else dict(desc)

    desc: dict[str, Any] = wait_for(done, f"execution {execution}")
    desc["_log"] = server.log_tail()
    return desc


def test_backfill_of_both_routes_is_exact_and_the_replicator_takes_over(
    ms_clients: Clients, ministack: Ministack
) -> None:
    migration = prepare_sources(ms_clients, servers=40, memberships=120)
    stack = deploy(ms_clients, migration)
    lam = ms_clients.lambda_
    assert all(
        lam.get_event_source_mapping(UUID=u)["State"] == "Disabled" for u in stack.mappings.values()
    )
    executions = {
        route: run(ms_clients, stack.state_machine_arn, {"route": route, "total_segments": 2})
        for route in ("servers", "memberships")
    }
    for route, arn in executions.items():
        desc = finished(ms_clients, arn, ministack)
        assert desc["status"] == "SUCCEEDED", desc
        output = json.loads(desc["output"])
        assert output["route"] == route and output["phase"] == "backfilled"
        assert output["enabled_mappings"] == [stack.mappings[route]]
    ddb = ms_clients.dynamodb
    assert parity_problems(ddb, migration) == []
    for uuid in stack.mappings.values():
        assert lam.get_event_source_mapping(UUID=uuid)["State"] in ("Enabled", "Enabling")

    # live writes after the backfill: the replicator, invoked by the mappings, applies them
    ddb.put_item(
        TableName=seeding.SERVERS_TABLE, Item={"id": {"S": "srv-live"}, "name": {"S": "live"}}
    )
    ddb.delete_item(TableName=seeding.SERVERS_TABLE, Key={"id": {"S": seeding.server_id(3)}})
    member = ddb.scan(TableName=seeding.MEMBERSHIPS_TABLE, Limit=1)["Items"][0]
    role = "moderator" if member["role"]["S"] == "admin" else "admin"
    ddb.put_item(TableName=seeding.MEMBERSHIPS_TABLE, Item={**member, "role": {"S": role}})

    def core(pk: str) -> dict[str, Any] | None:
        key = {"PK": {"S": pk}, "SK": {"S": "METADATA"}}
        found: dict[str, Any] | None = ddb.get_item(TableName="CoreTable", Key=key).get("Item")
        return found

    wait_for(lambda: parity_problems(ddb, migration) == [], "the replicator to apply live writes")
    # the backfill had ended before these writes: only the replicator can have applied them
    assert (core("SERVER#srv-live") or {}).get("name") == {"S": "live"}
    assert core(f"SERVER#{seeding.server_id(3)}") is None

    # {} is every route (DESIGN.md section 9): one execution plans, copies and completes both
    # (both backfilled already, so put-if-absent: nothing changes, parity holds)
    every = finished(ms_clients, run(ms_clients, stack.state_machine_arn, {}), ministack)
    assert every["status"] == "SUCCEEDED", every
    completions = json.loads(every["output"])
    assert [(c["route"], c["phase"]) for c in completions] == [
        ("servers", "backfilled"),
        ("memberships", "backfilled"),
    ]
    assert parity_problems(ddb, migration) == []


#: far beyond any Lambda timeout: the worker is always "out of time" after its first page
ALWAYS_OUT_OF_TIME = {"DUALWRITE_BACKFILL_MARGIN_MS": str(10**9)}
#: a Scan page stops at 1 MB: about 5 of these servers per page
PADDING = 200_000


def padded_servers(clients: Clients, n: int) -> None:
    items = [
        {"id": {"S": f"srv-{i:03d}"}, "name": {"S": f"big-{i}"}, "padding": {"S": "x" * PADDING}}
        for i in range(n)
    ]
    seeding.write_items(clients, seeding.SERVERS_TABLE, items)


def worker_results(clients: Clients, execution: str) -> dict[int, list[dict[str, Any]]]:
    """segment -> the worker's results in its child execution of the Distributed Map, in order
    (from the execution history: each CopySegment task's Lambda response)."""
    sfn = clients.client("stepfunctions")
    out: dict[int, list[dict[str, Any]]] = {}
    for map_run in sfn.list_map_runs(executionArn=execution)["mapRuns"]:
        for child in sfn.list_executions(mapRunArn=map_run["mapRunArn"])["executions"]:
            events = sfn.get_execution_history(executionArn=child["executionArn"])["events"]
            results = [
                json.loads(e["taskSucceededEventDetails"]["output"])["Payload"]
                for e in events
                if e["type"] == "TaskSucceeded"
            ]
            if results:
                out.setdefault(results[0]["segment"], []).extend(results)
    return out


def test_a_worker_out_of_time_returns_not_done_and_is_continued(
    ms_clients: Clients, ministack: Ministack
) -> None:
    migration = prepare_sources(ms_clients, servers=0, memberships=0)
    padded_servers(ms_clients, 30)
    stack = deploy(
        ms_clients, migration, environment={"BackfillWorkerFunction": ALWAYS_OUT_OF_TIME}
    )
    # called on its own, the worker copies one page and says it is not done
    first = ms_clients.lambda_.invoke(
        FunctionName=stack.functions["BackfillWorkerFunction"],
        Payload=json.dumps({"route": "servers", "segment": 0, "total_segments": 1}),
    )
    result = json.loads(first["Payload"].read())
    assert result["done"] is False and result["pages"] == 1, result
    assert 0 < result["items_read"] < 30
    # the state machine continues it from its checkpoint until it is done
    arn = run(ms_clients, stack.state_machine_arn, {"route": "servers"})
    desc = finished(ms_clients, arn, ministack)
    assert desc["status"] == "SUCCEEDED", desc
    results = worker_results(ms_clients, arn)[0]
    assert len(results) >= 2
    assert [r["done"] for r in results] == [False] * (len(results) - 1) + [True]
    assert all(r["pages"] == 1 and r["resumed"] for r in results)
    assert result["items_read"] + sum(r["items_read"] for r in results) == 30
    assert parity_problems(ms_clients.dynamodb, migration) == []


def test_a_failed_segment_is_resumed_by_a_second_execution(
    ms_clients: Clients, ministack: Ministack
) -> None:
    migration = prepare_sources(ms_clients, servers=0, memberships=0)
    padded_servers(ms_clients, 40)

    def continuing_scan_of_segment_1(operation: str, request: dict[str, Any]) -> bool:
        return (
            operation == "Scan" and request.get("Segment") == 1 and "ExclusiveStartKey" in request
        )

    with DenyOnce(ministack.endpoint, continuing_scan_of_segment_1) as proxy:
        environment = {**ALWAYS_OUT_OF_TIME, "AWS_ENDPOINT_URL": proxy.endpoint}
        stack = deploy(ms_clients, migration, environment={"BackfillWorkerFunction": environment})
        payload = {"route": "servers", "total_segments": 2}
        failed = finished(ms_clients, run(ms_clients, stack.state_machine_arn, payload), ministack)
        assert failed["status"] == "FAILED", failed
        assert proxy.denied == 1
        store = ControlStore(ms_clients.dynamodb, migration.control_table)
        before = store.segment("servers", 1, 2)
        assert before is not None and not before.done and before.items_read > 0, before
        assert store.phase("servers").phase == Phase.BACKFILLING

        second = run(ms_clients, stack.state_machine_arn, {"route": "servers"})
        desc = finished(ms_clients, second, ministack)
        assert desc["status"] == "SUCCEEDED", desc
    after = store.segment("servers", 1, 2)
    assert after is not None and after.done and after.started_at == before.started_at
    resumed = worker_results(ms_clients, second)[1]
    # segment 1 went on from its checkpoint: what the second run read completes it
    assert sum(r["items_read"] for r in resumed) == after.items_read - before.items_read
    assert parity_problems(ms_clients.dynamodb, migration) == []
