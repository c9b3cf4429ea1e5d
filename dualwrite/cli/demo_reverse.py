"""The demo's observation window (DESIGN.md section 8): after the cutover the application
writes CoreTable only; reverse replication carries each of those writes to the old tables,
so the rollback that follows loses none of them. Each write is checked in the old tables
after the rollback, by reading them back.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from rich.table import Table

from dualwrite.cli.context import AppContext
from dualwrite.mapping.memberships import permissions_for
from dualwrite.seed import MEMBERSHIPS_TABLE, SERVERS_TABLE, SeedData
from dualwrite.wire import Item

TARGET = "CoreTable"


def _s(value: str) -> dict[str, str]:
    return {"S": value}


@dataclass(frozen=True)
class AppWrite:
    """One write of the application to CoreTable, and how to see it in the old tables."""

    what: str
    write: Callable[[Any], None]
    #: reads the old tables (a DynamoDB client) and says whether they hold the write
    held: Callable[[Any], bool]


def _get(ddb: Any, table: str, key: Item) -> Item | None:
    found: Item | None = ddb.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
    return found


def user_server_item(user: str, server: str, role: str) -> Item:
    perms, _known = permissions_for(role)
    return {
        "PK": _s(f"USER#{user}"),
        "SK": _s(f"SERVER#{server}"),
        "Type": _s("UserServer"),
        "role": _s(role),
        "permissions": {"L": [_s(p) for p in perms]},
    }


def _existing(ddb: Any, table: str, items: list[Item], keys: tuple[str, ...]) -> list[Item]:
    """The seeded items still in the table (live traffic deleted some), as they are now."""
    out = []
    for item in items:
        got = _get(ddb, table, {k: item[k] for k in keys})
        if got is not None:
            out.append(got)
        if len(out) >= 8:
            break
    return out


def plan_writes(ddb: Any, data: SeedData) -> list[AppWrite]:
    """Puts, an update and a delete of servers; a new user; an email change; a role change;
    a removed membership. Chosen among the items the old tables hold now."""
    servers = [i["id"]["S"] for i in _existing(ddb, SERVERS_TABLE, data.servers, ("id",))]
    members = _existing(ddb, MEMBERSHIPS_TABLE, data.memberships, ("userId", "serverId"))
    if len(servers) < 3 or len(members) < 3:
        return []
    email_user = members[0]["userId"]["S"]
    others = [m for m in members if m["userId"]["S"] != email_user]
    if len(others) < 2:  # every membership one user's: no role change and removal apart
        return []
    role_m, gone_m = others[0], others[1]
    new_role = "viewer" if role_m.get("role") != _s("viewer") else "moderator"

    def server(ddb: Any, sid: str) -> Item | None:
        return _get(ddb, SERVERS_TABLE, {"id": _s(sid)})

    def member(ddb: Any, m: Item) -> Item | None:
        return _get(ddb, MEMBERSHIPS_TABLE, {"userId": m["userId"], "serverId": m["serverId"]})

    def user_members(ddb: Any, user: str) -> list[Item]:
        got: list[Item] = ddb.query(
            TableName=MEMBERSHIPS_TABLE,
            KeyConditionExpression="userId = :u",
            ExpressionAttributeValues={":u": _s(user)},
            ConsistentRead=True,
        )["Items"]
        return got

    def new_server(ddb: Any) -> None:
        item = {"PK": _s("SERVER#srv-demo-new"), "SK": _s("METADATA"), "Type": _s("Server")}
        ddb.put_item(TableName=TARGET, Item=item | {"name": _s("made after the cutover")})

    def update_server(ddb: Any) -> None:
        ddb.update_item(
            TableName=TARGET,
            Key={"PK": _s(f"SERVER#{servers[0]}"), "SK": _s("METADATA")},
            UpdateExpression="SET #s = :s",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":s": _s("maintenance")},
        )

    def delete_server(ddb: Any) -> None:
        key = {"PK": _s(f"SERVER#{servers[1]}"), "SK": _s("METADATA")}
        ddb.delete_item(TableName=TARGET, Key=key)

    def new_user(ddb: Any) -> None:
        user = {"PK": _s("USER#user-demo-new"), "SK": _s("METADATA"), "Type": _s("User")}
        ddb.put_item(
            TableName=TARGET,
            Item=user | {"email": _s("newcomer@example.com"), "name": _s("newcomer")},
        )
        ddb.put_item(TableName=TARGET, Item=user_server_item("user-demo-new", servers[2], "admin"))

    def change_email(ddb: Any) -> None:
        ddb.update_item(
            TableName=TARGET,
            Key={"PK": _s(f"USER#{email_user}"), "SK": _s("METADATA")},
            UpdateExpression="SET email = :e, #n = :n",
            ExpressionAttributeNames={"#n": "name"},
            ExpressionAttributeValues={":e": _s("renamed@example.com"), ":n": _s("renamed")},
        )

    def change_role(ddb: Any) -> None:
        item = user_server_item(role_m["userId"]["S"], role_m["serverId"]["S"], new_role)
        ddb.put_item(TableName=TARGET, Item=item)

    def remove_membership(ddb: Any) -> None:
        key = {
            "PK": _s(f"USER#{gone_m['userId']['S']}"),
            "SK": _s(f"SERVER#{gone_m['serverId']['S']}"),
        }
        ddb.delete_item(TableName=TARGET, Key=key)

    def new_server_held(ddb: Any) -> bool:
        got = server(ddb, "srv-demo-new")
        return got is not None and got.get("name") == _s("made after the cutover")

    def updated_held(ddb: Any) -> bool:
        got = server(ddb, servers[0])
        return got is not None and got.get("status") == _s("maintenance")

    def new_user_held(ddb: Any) -> bool:
        got = member(ddb, {"userId": _s("user-demo-new"), "serverId": _s(servers[2])})
        return got is not None and (got.get("role"), got.get("email")) == (
            _s("admin"),
            _s("newcomer@example.com"),
        )

    def email_held(ddb: Any) -> bool:
        got = user_members(ddb, email_user)
        return bool(got) and all(m.get("email") == _s("renamed@example.com") for m in got)

    def role_held(ddb: Any) -> bool:
        got = member(ddb, role_m)
        return got is not None and got.get("role") == _s(new_role)

    return [
        AppWrite("a new server", new_server, new_server_held),
        AppWrite(f"server {servers[0]} updated", update_server, updated_held),
        AppWrite(
            f"server {servers[1]} deleted", delete_server, lambda d: server(d, servers[1]) is None
        ),
        AppWrite("a new user and their membership", new_user, new_user_held),
        AppWrite(f"user {email_user}'s email changed", change_email, email_held),
        AppWrite(f"user {role_m['userId']['S']}'s role changed", change_role, role_held),
        AppWrite(
            f"user {gone_m['userId']['S']} left server {gone_m['serverId']['S']}",
            remove_membership,
            lambda d: member(d, gone_m) is None,
        ),
    ]


def held_table(ddb: Any, writes: list[AppWrite]) -> tuple[Table, bool]:
    """Which of the writes the old tables hold; and whether all of them."""
    table = Table(
        title="written to CoreTable after the cutover; in the old tables after the rollback?",
        title_justify="left",
    )
    table.add_column("application write")
    table.add_column("in the old tables", justify="center")
    every = True
    for w in writes:
        ok = w.held(ddb)
        every = every and ok
        table.add_row(w.what, "[green]yes[/]" if ok else "[bold red]NO[/]")
    return table, every


def observation_window(
    app: AppContext,
    data: SeedData,
    phase: Callable[[AppContext, str], AbstractContextManager[None]],
) -> int:
    """Application writes to CoreTable, reverse replication, rollback, every write checked
    in the old tables, parity again (DESIGN.md section 8). Its exit code."""
    from dualwrite.cli.cmd_cutover import rollback_flow
    from dualwrite.cli.cmd_reconcile import print_reconcile
    from reconciler.job import run_reconcile
    from stream_replicator.runner import StreamRunner

    def replicate() -> str:
        run = StreamRunner(app.migration, app.clients, app.store).run(until_caught_up=True)
        # the target's stream also carries the backfill's and forward's writes, made before
        # the switch: say what became of them, so the count is not a mystery
        parts = [
            f"{n:,} {what}"
            for n, what in (
                (run.applied - run.reverse_replicated, "applied forward"),
                (run.reverse_replicated, "applied in reverse (echoes write nothing)"),
                (run.skipped, "settled with no write (the other direction's)"),
            )
            if n
        ]
        detail = f" ({', '.join(parts)})" if parts else ""
        caught_up = "yes" if run.caught_up else "NO"
        return f"{run.records:,} stream records{detail}, caught up: {caught_up}"

    ddb = app.clients.dynamodb
    with phase(app, "9. the application writes CoreTable; reverse replication follows"):
        writes = plan_writes(ddb, data)
        for w in writes:
            w.write(ddb)
            app.out.print(f"  CoreTable: {w.what}")
        app.out.print(f"replicated (the overlap drained first): {replicate()}")
    with phase(app, "10. rollback: functions first, then the reverse drain, then forward"):
        code = rollback_flow(app)
        app.out.print(f"replicated: {replicate()}")
    table, every = held_table(ddb, writes)
    app.out.print(table)
    parity = run_reconcile(app.migration, app.clients, app.store)
    print_reconcile(app, parity)
    if code != 0:
        return code
    if not writes:  # `demo --servers 2`: nothing to show, and nothing was lost
        app.out.print(
            "(too few servers or users left to plan the application's writes: run the demo "
            "with --servers 3 --memberships 6 or more to see them carried back)"
        )
        return 0 if parity.parity else 3
    return 0 if every and parity.parity else 3
