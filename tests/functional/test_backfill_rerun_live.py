"""A backfill re-run after replication went live (put-if-absent) under a delete racing it:
the application deletes an item after the re-run's Scan read it, the replicator applies the
delete, then the re-run finds the target empty there. It used to put the stale copy back
for good; it now reads the source again after its puts and takes such items back.
After backfill + replicate --until-caught-up, target == mapping(source) exactly."""

from __future__ import annotations

from typing import Any

from backfill.job import run_backfill
from dualwrite import prepare as preparing
from dualwrite import seed as seeding
from dualwrite.aws.clients import AwsSettings, Clients
from dualwrite.backoff import Backoff
from dualwrite.config import load_migration
from dualwrite.control import ControlStore
from reconciler.job import run_reconcile
from stream_replicator.runner import StreamRunner
from stream_replicator.runner_settings import RunnerSettings
from tests.conftest import MIGRATIONS
from tests.functional.test_backfill_support import CountingClients
from tests.functional.test_replicator_runner import assert_target_is_mapping_of_source


def _world(moto_clients: Clients, servers: int = 6, memberships: int = 12) -> Any:
    migration = load_migration(MIGRATIONS / "coretable.yaml")
    seeding.ensure_tables(moto_clients)
    preparing.apply(
        migration,
        moto_clients,
        preparing.analyze(migration, moto_clients, backup=False),
        backup=False,
    )
    data = seeding.generate(servers, memberships, 5)
    seeding.write_items(moto_clients, seeding.SERVERS_TABLE, data.servers)
    seeding.write_items(moto_clients, seeding.MEMBERSHIPS_TABLE, data.memberships)
    store = ControlStore(moto_clients.dynamodb, migration.control_table)
    return migration, store


def _replicate(migration: Any, clients: Clients, store: ControlStore) -> Any:
    runner = StreamRunner(
        migration,
        clients,
        store,
        RunnerSettings(
            poll_interval=0.01,
            retry_backoff=Backoff(sleep=lambda _s: None, rand=lambda: 0.0),
            publish_metrics=False,
        ),
    )
    return runner.run(until_caught_up=True)


def _backfill(migration: Any, clients: Clients, store: ControlStore, **kw: Any) -> Any:
    return run_backfill(
        migration,
        clients,
        store,
        enable_event_sources=False,
        backoff=Backoff(sleep=lambda _s: None),
        warn=lambda _m: None,
        **kw,
    )


# --- 1. a backfill re-run (put-if-absent) resurrects an item deleted after its read -----------
def test_a_rerun_backfill_does_not_resurrect_a_server_deleted_after_its_scan_page(
    moto_clients: Clients,
) -> None:
    """Route BACKFILLED, replication live. The operator re-runs `backfill` (put-if-absent
    mode, DESIGN section 2 step 4). Its Scan reads server S; the application deletes S; the
    replicator applies the delete (the target no longer has S); then the backfill's
    put-if-absent finds S absent and writes it back. The stream's REMOVE was already applied,
    so nothing ever removes it again: a resurrected item, reconcile reports it extra."""
    migration, store = _world(moto_clients)
    _backfill(migration, moto_clients, store, segments=1, workers=1)
    assert _replicate(migration, moto_clients, store).caught_up
    assert_target_is_mapping_of_source(moto_clients, migration)

    counting = CountingClients(AwsSettings(region="us-east-1"))
    victim: list[dict[str, Any]] = []

    def scan_then_delete(real: Any, kwargs: dict[str, Any]) -> Any:
        page = real.scan(**kwargs)
        if kwargs["TableName"] == "ServersTable" and not victim and page.get("Items"):
            key = {"id": page["Items"][0]["id"]}
            victim.append(key)
            moto_clients.dynamodb.delete_item(TableName="ServersTable", Key=key)
            assert _replicate(migration, moto_clients, store).caught_up
            core = moto_clients.dynamodb.get_item(
                TableName="CoreTable",
                Key={"PK": {"S": f"SERVER#{key['id']['S']}"}, "SK": {"S": "METADATA"}},
            )
            assert "Item" not in core  # the replicator applied the delete
        return page

    counting.hooks["scan"] = scan_then_delete
    _backfill(migration, counting, store, routes=["servers"], segments=1, workers=1, restart=True)
    assert victim
    assert _replicate(migration, moto_clients, store).caught_up

    result = run_reconcile(migration, moto_clients, store, publish_metrics=False, settle_s=0)
    servers = next(r for r in result.routes if r.route == "servers")
    assert servers.extra == 0, f"deleted server {victim[0]} resurrected by the re-run backfill"
    assert_target_is_mapping_of_source(moto_clients, migration)


def test_a_rerun_backfill_does_not_resurrect_a_user_deleted_after_its_scan_page(
    moto_clients: Clients,
) -> None:
    """The same race on the memberships route: a user's only membership is deleted after the
    re-run's Scan read it; the replicator deletes both the UserServer item and the derived
    User item; the put-if-absent writes then put both back (a User with no membership)."""
    migration, store = _world(moto_clients)
    ddb = moto_clients.dynamodb
    ddb.put_item(
        TableName="UserMembershipTable",
        Item={
            "userId": {"S": "zz-lonely"},
            "serverId": {"S": "srv-000001"},
            "role": {"S": "admin"},
            "email": {"S": "lonely@example.com"},
        },
    )
    _backfill(migration, moto_clients, store, segments=1, workers=1)
    assert _replicate(migration, moto_clients, store).caught_up
    assert_target_is_mapping_of_source(moto_clients, migration)

    counting = CountingClients(AwsSettings(region="us-east-1"))
    done: list[bool] = []

    def scan_then_delete(real: Any, kwargs: dict[str, Any]) -> Any:
        page = real.scan(**kwargs)
        if kwargs["TableName"] == "UserMembershipTable" and not done:
            assert any(i["userId"]["S"] == "zz-lonely" for i in page["Items"])
            done.append(True)
            ddb.delete_item(
                TableName="UserMembershipTable",
                Key={"userId": {"S": "zz-lonely"}, "serverId": {"S": "srv-000001"}},
            )
            assert _replicate(migration, moto_clients, store).caught_up
            user = ddb.get_item(
                TableName="CoreTable",
                Key={"PK": {"S": "USER#zz-lonely"}, "SK": {"S": "METADATA"}},
            )
            assert "Item" not in user  # the replicator deleted the User item
        return page

    counting.hooks["scan"] = scan_then_delete
    _backfill(
        migration, counting, store, routes=["memberships"], segments=1, workers=1, restart=True
    )
    assert done
    assert _replicate(migration, moto_clients, store).caught_up
    user = ddb.get_item(
        TableName="CoreTable", Key={"PK": {"S": "USER#zz-lonely"}, "SK": {"S": "METADATA"}}
    )
    assert "Item" not in user, "User item of a user with no membership resurrected"
