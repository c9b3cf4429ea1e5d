"""The backfill job against in-process moto: exact copies, pages, resume, faults, budget."""

from __future__ import annotations

import math
import random
import threading
import time
from typing import Any

import pytest

from backfill.job import run_backfill
from backfill.results import BackfillResult
from backfill.writer import write_units
from dualwrite import seed as seeding
from dualwrite.aws.clients import AwsSettings, Clients
from dualwrite.backoff import Backoff, RateLimiter
from dualwrite.config import parse_migration
from dualwrite.control import ControlStore, Phase
from dualwrite.errors import ConfigError, ThrottledError
from dualwrite.wire import Item, av_type, key_id
from tests.functional.test_backfill_support import (
    CORETABLE,
    CountingClients,
    assert_exact,
    coretable,
    expected_target,
    prepare,
    scan_all,
    seed,
    throttling_error,
)


def stopper() -> tuple[threading.Event, Any]:
    """A stop event and an on_progress callback that sets it after the first page (the
    callback's first call per route reports what checkpoints already cover)."""
    stop = threading.Event()
    calls = [0]

    def on_progress(route: str, items: int, total: int) -> None:
        calls[0] += 1
        if calls[0] > 1:
            stop.set()

    return stop, on_progress


def no_sleep_backoff(sleeps: list[float] | None = None) -> Backoff:
    record = sleeps if sleeps is not None else []
    return Backoff(base=0.001, cap=0.002, sleep=record.append)


@pytest.fixture
def counting(aws_env: None) -> Any:
    from moto import mock_aws

    with mock_aws():
        yield CountingClients(AwsSettings(region="us-east-1"))


def ready(clients: Clients, servers: list[Item], memberships: list[Item]) -> ControlStore:
    seed(clients, servers, memberships)
    migration = coretable()
    prepare(clients, migration)
    return ControlStore(clients.dynamodb, migration.control_table)


def by_route(result: BackfillResult) -> dict[str, dict[str, Any]]:
    """The routes as `backfill --json` prints them."""
    return {r["route"]: r for r in result.to_json()["routes"]}


def types_in(items: list[Item]) -> set[str]:
    found: set[str] = set()

    def walk(value: dict[str, Any]) -> None:
        t = av_type(value)
        found.add(t)
        if t == "M":
            for v in value["M"].values():
                walk(v)
        if t == "L":
            for v in value["L"]:
                walk(v)

    for item in items:
        for value in item.values():
            walk(value)
    return found


def test_copies_every_attribute_type_exactly_with_one_user_item_per_user(
    counting: CountingClients,
) -> None:
    data = seeding.generate(40, 90, seed=5)
    assert types_in(data.servers) >= {"S", "N", "B", "BOOL", "NULL", "SS", "NS", "BS", "M", "L"}
    store = ready(counting, data.servers, data.memberships)
    migration = coretable()
    queried: list[str] = []
    counting.hooks["query"] = lambda real, kwargs: queried.append(kwargs["TableName"])
    result = run_backfill(migration, counting, store, segments=3, workers=2)

    assert_exact(scan_all(counting, "CoreTable"), expected_target(counting, migration))
    routes = by_route(result)
    users = {key_id({"u": m["userId"]}) for m in data.memberships}
    assert routes["servers"]["items_read"] == 40
    assert routes["servers"]["items_written"] == 40
    assert routes["memberships"]["items_read"] == len(data.memberships)
    # one User item per user, derived from the page: no Query at all on a fresh run
    assert routes["memberships"]["items_written"] == len(data.memberships) + len(users)
    assert "UserMembershipTable" not in queried
    for r in result.to_json()["routes"]:
        assert r["segments"] == 3 and r["segments_resumed"] == 0 and r["quarantined"] == 0
        assert r["complete"] and r["phase"] == Phase.BACKFILLED and not r["needs_repair"]
        # full batches: per segment, ceil(items / 25) requests at most
        assert r["write_requests"] <= math.ceil(r["items_written"] / 25) + r["segments"] - 1
    phase = store.phase("memberships")
    assert phase.phase == Phase.BACKFILLED
    assert phase.backfill_started_at <= phase.backfill_completed_at
    checkpoints = [cp.to_json() for cp in store.segments("memberships")]
    assert len(checkpoints) == 3 and all(cp["done"] for cp in checkpoints)
    assert sum(cp["items_read"] for cp in checkpoints) == len(data.memberships)
    assert set(checkpoints[0]) >= {
        "route",
        "segment",
        "total",
        "last_key",
        "done",
        "items_read",
        "items_written",
        "quarantined",
        "started_at",
        "updated_at",
    }

    again = by_route(run_backfill(migration, counting, store))
    assert again["memberships"]["segments_resumed"] == 3
    assert again["memberships"]["items_read"] == 0


def big_server(i: int, size: int) -> Item:
    return {"id": {"S": f"srv-{i:03d}"}, "blob": {"S": "x" * size}, "n": {"N": str(i)}}


def test_multi_page_segments_of_large_items(counting: CountingClients) -> None:
    # items of ~240 KB: DynamoDB (and moto) end a Scan page at 1 MB, long before Limit 1000
    servers = [big_server(i, 240_000) for i in range(14)]
    store = ready(counting, servers, [])
    migration = coretable()
    counting.calls.clear()
    result = run_backfill(migration, counting, store, routes=["servers"], segments=2)

    assert_exact(scan_all(counting, "CoreTable"), expected_target(counting, migration))
    route = by_route(result)["servers"]
    assert route["items_read"] == 14 and route["items_written"] == 14
    assert counting.calls["scan"] >= 14 / 4  # at most 4 such items fit in a page
    checkpoints = [cp.to_json() for cp in store.segments("servers")]
    assert sum(cp["items_read"] for cp in checkpoints) == 14
    assert all(cp["done"] and cp["last_key"] is None for cp in checkpoints)


def test_stop_after_every_page_and_resume_keeps_user_items_exact(
    counting: CountingClients,
) -> None:
    # three ~300 KB memberships per user: every 1 MB page ends exactly between two users,
    # so each resume must derive the user carried past the checkpoint with a Query
    memberships = [
        {
            "userId": {"S": f"user-{u}"},
            "serverId": {"S": f"srv-{s}"},
            "role": {"S": "admin" if s == 0 else "viewer"},
            "email": {"S": f"u{u}.{s}@example.com"},
            "notes": {"S": "n" * 300_000},
        }
        for u in range(3)
        for s in range(3)
    ]
    store = ready(counting, [], memberships)
    migration = coretable()
    runs: list[dict[str, Any]] = []
    queried: list[str] = []
    counting.hooks["query"] = lambda real, kwargs: queried.append(kwargs["TableName"])
    while True:
        stop, stop_after_a_page = stopper()
        result = by_route(
            run_backfill(
                migration,
                counting,
                store,
                routes=["memberships"],
                on_progress=stop_after_a_page,
                stop=stop,
            )
        )["memberships"]
        runs.append(result)
        if result["complete"]:
            break
        assert result["phase"] == Phase.BACKFILLING
        assert len(runs) < 10

    assert len(runs) == 3  # one page per user
    assert all(r["segments_resumed"] == 1 for r in runs[1:])
    # a stopped run checkpoints its page: nothing is read twice
    assert sum(r["items_read"] for r in runs) == len(memberships)
    assert_exact(scan_all(counting, "CoreTable"), expected_target(counting, migration))
    # each resume queried the user carried past the checkpoint, and nothing else
    assert queried.count("UserMembershipTable") == len(runs) - 1


def test_throttling_and_unprocessed_items_are_retried_until_nothing_is_lost(
    counting: CountingClients,
) -> None:
    data = seeding.generate(20, 60, seed=9)
    store = ready(counting, data.servers, data.memberships)
    migration = coretable()
    faults = {"unprocessed": 4, "throttled": 3, "scan_throttled": 2}
    lock = threading.Lock()

    def take(kind: str) -> bool:
        with lock:
            if faults[kind] > 0:
                faults[kind] -= 1
                return True
            return False

    def batch_write_item(real: Any, kwargs: dict[str, Any]) -> Any:
        if take("throttled"):
            raise throttling_error("BatchWriteItem")
        if take("unprocessed"):
            ((table, requests),) = kwargs["RequestItems"].items()
            half = len(requests) // 2  # write the first half, leave the rest unprocessed
            if half:
                real.batch_write_item(RequestItems={table: requests[:half]})
            return {"UnprocessedItems": {table: requests[half:]}}
        return None

    def scan(real: Any, kwargs: dict[str, Any]) -> Any:
        if take("scan_throttled"):
            raise throttling_error("Scan")
        return None

    counting.hooks.update(batch_write_item=batch_write_item, scan=scan)
    sleeps: list[float] = []
    result = run_backfill(migration, counting, store, segments=2, backoff=no_sleep_backoff(sleeps))

    assert faults == {"unprocessed": 0, "throttled": 0, "scan_throttled": 0}
    assert len(sleeps) >= 9  # every fault was backed off from
    assert all(r.complete for r in result.routes)
    assert_exact(scan_all(counting, "CoreTable"), expected_target(counting, migration))


def test_items_left_unprocessed_fail_the_run_without_checkpointing_the_page(
    counting: CountingClients,
) -> None:
    data = seeding.generate(12, 0, seed=2)
    store = ready(counting, data.servers, [])
    migration = coretable()

    def never(real: Any, kwargs: dict[str, Any]) -> Any:
        return {"UnprocessedItems": kwargs["RequestItems"]}

    counting.hooks["batch_write_item"] = never
    with pytest.raises(ThrottledError, match="not checkpointed"):
        run_backfill(
            migration,
            counting,
            store,
            routes=["servers"],
            segments=1,
            backoff=no_sleep_backoff(),
        )
    (checkpoint,) = [cp.to_json() for cp in store.segments("servers")]
    assert checkpoint["last_key"] is None and not checkpoint["done"]
    assert store.phase("servers").phase == Phase.BACKFILLING

    counting.hooks.clear()
    result = by_route(run_backfill(migration, counting, store, routes=["servers"]))
    assert result["servers"]["items_written"] == 12
    assert_exact(scan_all(counting, "CoreTable"), expected_target(counting, migration))


def test_refused_items_are_quarantined_counted_and_filed_once(
    counting: CountingClients,
) -> None:
    data = seeding.generate(10, 20, seed=4)
    servers = [*data.servers, {"id": {"S": "clash-1"}, "PK": {"S": "evil"}}]
    servers.append({"id": {"S": "clash-2"}, "Type": {"S": "x"}, "SK": {"S": "y"}})
    memberships = [
        *data.memberships,
        {"userId": {"S": "user-norole"}, "serverId": {"S": "srv-000001"}},
    ]
    store = ready(counting, servers, memberships)
    migration = coretable()
    result = by_route(run_backfill(migration, counting, store, segments=2, workers=1))

    assert result["servers"]["quarantined"] == 2
    assert result["memberships"]["quarantined"] == 1
    filed = store.quarantined("servers")
    assert sorted(rec.record["id"]["S"] for rec in filed) == ["clash-1", "clash-2"]
    assert all(rec.source == "backfill" for rec in filed)
    assert all("overwrite the target's keys" in rec.reason for rec in filed)
    (norole,) = store.quarantined("memberships")
    assert "no role" in norole.reason
    assert_exact(scan_all(counting, "CoreTable"), expected_target(counting, migration))

    again = by_route(run_backfill(migration, counting, store, restart=True, workers=1))
    assert again["servers"]["quarantined"] == 2  # still refused, still counted ...
    assert len(store.quarantined("servers")) == 2  # ... but not filed twice


def test_a_rerun_after_replication_is_live_never_overwrites_newer_data(
    counting: CountingClients,
) -> None:
    data = seeding.generate(20, 40, seed=6)
    store = ready(counting, data.servers, data.memberships)
    migration = coretable()
    run_backfill(migration, counting, store)
    backfilled_at = store.phase("servers").backfilled_at
    ddb = counting.dynamodb
    server_key = {"PK": {"S": "SERVER#srv-000003"}, "SK": {"S": "METADATA"}}
    user = data.memberships[0]["userId"]["S"]
    user_key = {"PK": {"S": f"USER#{user}"}, "SK": {"S": "METADATA"}}
    # the replicator's newer versions
    ddb.update_item(
        TableName="CoreTable",
        Key=server_key,
        UpdateExpression="SET #n = :v",
        ExpressionAttributeNames={"#n": "name"},
        ExpressionAttributeValues={":v": {"S": "renamed live"}},
    )
    ddb.update_item(
        TableName="CoreTable",
        Key=user_key,
        UpdateExpression="SET email = :v",
        ExpressionAttributeValues={":v": {"S": "new@example.com"}},
    )
    lost = {"PK": {"S": "SERVER#srv-000004"}, "SK": {"S": "METADATA"}}
    ddb.delete_item(TableName="CoreTable", Key=lost)

    result = by_route(run_backfill(migration, counting, store, restart=True))

    assert result["servers"]["mode"] == "put-if-absent"
    assert result["servers"]["items_written"] == 1  # only the absent one
    assert result["servers"]["skipped_existing"] == 19
    assert result["memberships"]["items_written"] == 0
    target = scan_all(counting, "CoreTable")
    assert target[key_id(server_key)]["name"] == {"S": "renamed live"}
    assert target[key_id(user_key)]["email"] == {"S": "new@example.com"}
    assert key_id(lost) in target
    assert store.phase("servers").phase == Phase.BACKFILLED
    assert store.phase("servers").backfilled_at == backfilled_at


def test_max_wcu_spreads_writes_over_time(counting: CountingClients) -> None:
    data = seeding.generate(30, 60, seed=8)
    store = ready(counting, data.servers, data.memberships)
    migration = coretable()
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    rate = 10.0
    limiter = RateLimiter(rate, clock=lambda: now[0], sleep=sleep)
    result = run_backfill(migration, counting, store, workers=1, rate_limiter=limiter)

    consumed = sum(r.consumed_wcu for r in result.routes)
    written = sum(r.items_written for r in result.routes)
    assert consumed >= written  # at least 1 WCU per item, whatever the emulator reports
    # a token bucket of 10 units/s (10 to start with) lets a batch go only when it is not in
    # debt, so everything but the last batch fitted in the budget
    units = max(
        write_units({"PutRequest": {"Item": it}})
        for it in expected_target(counting, migration).values()
    )
    last_batch = 25 * units
    assert consumed - last_batch > 2 * rate
    assert rate + rate * now[0] >= consumed - last_batch
    with pytest.raises(ConfigError):
        run_backfill(migration, counting, store, max_wcu=0)


def test_a_backfill_that_outlives_the_stream_retention_needs_repair(
    counting: CountingClients,
) -> None:
    data = seeding.generate(30, 0, seed=3)
    seed(counting, data.servers, [])
    migration = coretable()
    prepare(counting, migration)
    clock = [time.time() + 60]
    store = ControlStore(counting.dynamodb, migration.control_table, clock=lambda: clock[0])
    warnings: list[str] = []
    stop, on_progress = stopper()
    first = by_route(
        run_backfill(
            migration,
            counting,
            store,
            routes=["servers"],
            scan_limit=10,
            on_progress=on_progress,
            stop=stop,
            warn=warnings.append,
        )
    )["servers"]
    assert not first["complete"] and not warnings

    clock[0] += 25 * 3600
    second = by_route(
        run_backfill(migration, counting, store, routes=["servers"], warn=warnings.append)
    )["servers"]
    assert second["complete"] and second["phase"] == Phase.BACKFILLED
    assert second["needs_repair"] and "24 h retention" in second["repair_reason"]
    assert any("repair" in w and "24 h" in w for w in warnings)
    phase = store.phase("servers")
    assert phase.needs_repair is True and "retention" in phase.repair_reason
    assert_exact(scan_all(counting, "CoreTable"), expected_target(counting, migration))


def test_refuses_before_writing_when_prepare_has_not_run(counting: CountingClients) -> None:
    data = seeding.generate(5, 5, seed=1)
    seed(counting, data.servers, data.memberships)
    migration = coretable()
    store = ControlStore(counting.dynamodb, migration.control_table)
    with pytest.raises(ConfigError, match=r"control table .* prepare"):
        run_backfill(migration, counting, store)
    with pytest.raises(ConfigError, match="no route named 'nope'"):
        run_backfill(migration, counting, store, routes=["nope"])
    from dualwrite.aws import tables
    from dualwrite.control import control_table_definition

    tables.create_table(counting.dynamodb, control_table_definition(migration.control_table))
    with pytest.raises(ConfigError, match="stream on ServersTable is off"):
        run_backfill(migration, counting, store)
    assert "CoreTable" not in counting.dynamodb.list_tables()["TableNames"]


def test_resuming_with_another_segment_count_is_refused(counting: CountingClients) -> None:
    rng = random.Random(1)
    servers = [seeding.server_item(rng, i) for i in range(30)]
    store = ready(counting, servers, [])
    migration = coretable()
    stop, on_progress = stopper()
    run_backfill(
        migration,
        counting,
        store,
        routes=["servers"],
        segments=2,
        scan_limit=5,
        on_progress=on_progress,
        stop=stop,
    )
    with pytest.raises(ConfigError, match="--segments 2"):
        run_backfill(migration, counting, store, routes=["servers"], segments=3)
    result = by_route(run_backfill(migration, counting, store, routes=["servers"]))
    assert result["servers"]["segments"] == 2 and result["servers"]["segments_resumed"] >= 1
    assert_exact(scan_all(counting, "CoreTable"), expected_target(counting, migration))


def test_user_names_come_from_the_cognito_pool_when_one_is_configured(
    counting: CountingClients,
) -> None:
    memberships = [
        {
            "userId": {"S": f"user-{u}"},
            "serverId": {"S": f"srv-{s}"},
            "role": {"S": "viewer"},
            "email": {"S": f"person{u}@example.com"},
        }
        for u in range(3)
        for s in range(2)
    ]
    seed(counting, [], memberships)
    idp = counting.client("cognito-idp")
    pool = idp.create_user_pool(PoolName="users")["UserPool"]["Id"]
    idp.admin_create_user(
        UserPoolId=pool, Username="user-0", UserAttributes=[{"Name": "name", "Value": "Zoë Ø"}]
    )
    idp.admin_create_user(UserPoolId=pool, Username="user-1")  # no name attribute
    migration = parse_migration({**CORETABLE, "cognito_user_pool_id": pool})
    prepare(counting, migration)
    store = ControlStore(counting.dynamodb, migration.control_table)
    run_backfill(migration, counting, store, routes=["memberships"])

    target = scan_all(counting, "CoreTable")

    def name(user: str) -> str:
        key = {"PK": {"S": f"USER#{user}"}, "SK": {"S": "METADATA"}}
        return str(target[key_id(key)]["name"]["S"])

    assert name("user-0") == "Zoë Ø"
    assert name("user-1") == "person1"  # no Cognito name: the email's local part
    assert name("user-2") == "person2"  # not in the pool at all


def test_a_user_pool_that_does_not_exist_is_bad_configuration_before_anything_is_written(
    counting: CountingClients,
) -> None:
    data = seeding.generate(3, 6, seed=2)
    migration = parse_migration({**CORETABLE, "cognito_user_pool_id": "us-east-1_nope"})
    store = ready(counting, data.servers, data.memberships)
    with pytest.raises(ConfigError, match="user pool us-east-1_nope does not exist"):
        run_backfill(migration, counting, store, routes=["memberships"], restart=True)
    assert store.segments("memberships") == []  # nothing started, nothing cleared
