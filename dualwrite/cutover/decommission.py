"""Delete the old tables once the gate allows it: back up every one first, then delete.

Every backup is taken and waited for before any table is deleted, so a failed backup
deletes nothing. Deletion protection is respected: the gate refuses without --yes; with
--yes it is turned off explicitly, table by table, and the result says so. What was done is
recorded in the control table (pk "DECOMMISSION", sk the table), which is also how a second
run knows the tables are already gone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dualwrite.aws import tables
from dualwrite.aws.errors import aws_call
from dualwrite.control import ControlStore, iso
from dualwrite.errors import NotFoundError

PK = "DECOMMISSION"


@dataclass(frozen=True)
class Removed:
    table: str
    backup_arn: str
    deletion_protection_disabled: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "backup_arn": self.backup_arn,
            "deletion_protection_disabled": self.deletion_protection_disabled,
        }


def record_of(store: ControlStore, table: str) -> dict[str, Any] | None:
    rec = store.get(PK, table)
    return rec.data if rec else None


def disable_deletion_protection(client: Any, table: str) -> None:
    with aws_call(f"UpdateTable {table} (deletion protection off)"):
        client.update_table(TableName=table, DeletionProtectionEnabled=False)
    tables.wait_active(client, table)


def delete_table(client: Any, table: str, timeout: float = 600.0) -> None:
    try:
        with aws_call(f"DeleteTable {table}"):
            client.delete_table(TableName=table)
    except NotFoundError:
        return
    tables.wait_until(
        lambda: tables.describe(client, table) is None,
        f"table {table} to be deleted",
        timeout=timeout,
    )


def decommission(
    client: Any,
    store: ControlStore,
    doomed: list[tuple[str, bool]],
    *,
    cutover_sk: str,
    say: Callable[[str], None] = lambda _m: None,
) -> list[Removed]:
    """Back up, then delete, each (table, deletion protection on) the gate allowed."""
    backups: dict[str, str] = {}
    for table, _protected in doomed:
        say(f"backing up {table} (on-demand backup, waiting until AVAILABLE)")
        label = f"dualwrite-decommission-{table}-{int(store.now())}"[:255]
        backups[table] = tables.backup(client, table, label)
    removed: list[Removed] = []
    for table, protected in doomed:
        if protected:
            say(f"turning deletion protection off on {table} (--yes)")
            disable_deletion_protection(client, table)
        say(f"deleting {table}")
        delete_table(client, table)
        store.put(
            PK,
            table,
            {
                "table": table,
                "backup_arn": backups[table],
                "deleted_at": iso(store.now()),
                "deletion_protection_disabled": protected,
                "cutover": cutover_sk,
            },
        )
        removed.append(Removed(table, backups[table], protected))
    return removed
