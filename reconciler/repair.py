"""Repairs: one conditional write per confirmed difference. Adapter.

Each write succeeds only if the target still holds what was read (conditions.still_holds),
and, for a directly mapped item, only if its source item is still as read too.
A failed condition means someone (the live replicator) changed the item since: the item is
re-read and judged again, never overwritten in this run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from dualwrite.aws.errors import aws_call
from dualwrite.conditions import UnsafeRepair, still_holds
from dualwrite.errors import AwsError, ConditionFailedError
from dualwrite.wire import key_id, key_text
from reconciler.compare import Difference
from reconciler.confirm import reread
from reconciler.reads import Sides


@dataclass
class RepairReport:
    repaired: list[Difference] = field(default_factory=list)
    #: the condition failed and a re-read found the item right: a concurrent writer fixed it
    settled: list[Difference] = field(default_factory=list)
    #: still different after the run (condition failed and still wrong, or not repairable)
    remaining: list[Difference] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: target key id -> why the target table refuses the repair's write (for good)
    refused: dict[str, str] = field(default_factory=dict)
    #: target key ids of differences no repair can make (the notes say why)
    held: set[str] = field(default_factory=set)


def write_repair(sides: Sides, difference: Difference) -> None:
    """Put the expected item (or delete the extra one) if the target still holds what was read.

    For a directly mapped item the write is a transaction with a ConditionCheck that the
    source item is also still as read (absent, or equal in every attribute): a change to
    the source after the read is the replicator's to apply, not ours to pre-empt.
    Raises ConditionFailedError when either side moved, UnsafeRepair when the condition
    cannot be expressed.
    """
    route = sides.route
    d = difference
    condition = still_holds(d.actual, route.target_names, d.expected)
    write: dict[str, Any]
    if d.expected is not None:
        write = {"TableName": route.target, "Item": d.expected, **condition.kwargs()}
    else:
        write = {"TableName": route.target, "Key": d.target_key, **condition.kwargs()}
    op = "Put" if d.expected is not None else "Delete"
    if d.source_key is None or d.group is not None:
        # derived items depend on a whole group of source items: no single item to check
        with aws_call(f"{op}Item {route.target} (repair)"):
            if d.expected is not None:
                sides.ddb.put_item(**write)
            else:
                sides.ddb.delete_item(**write)
        _count(sides, f"{op}Item")
        return
    source_condition = still_holds(d.source_item, route.source_names)
    check = {"TableName": route.source, "Key": d.source_key, **source_condition.kwargs()}
    transact(sides, [{"ConditionCheck": check}, {op: write}], route.target)


def transact(sides: Sides, items: list[dict[str, Any]], table: str) -> None:
    """One repair transaction (written to `table`). Raises ConditionFailedError when it is
    cancelled: a condition failed, or a concurrent transaction touched one of its items."""
    try:
        with aws_call(f"TransactWriteItems {table} (repair)"):
            sides.ddb.transact_write_items(TransactItems=items)
    except AwsError as exc:
        if exc.code == "TransactionCanceledException":
            raise ConditionFailedError(str(exc), exc.code, exc.operation) from exc
        raise
    finally:
        _count(sides, "TransactWriteItems")


def _count(sides: Sides, operation: str) -> None:
    if sides.counter is not None:
        sides.counter.add(operation)


def repair(sides: Sides, differences: Sequence[Difference]) -> RepairReport:
    report = RepairReport()
    raced: list[Difference] = []
    for d in differences:
        try:
            write_repair(sides, d)
        except ConditionFailedError:
            raced.append(d)
            continue
        except UnsafeRepair as exc:
            report.remaining.append(d)
            report.notes.append(str(exc))
            report.held.add(key_id(d.target_key))
            continue
        except AwsError as exc:
            if exc.code != "ValidationException":
                raise
            # refused for good (a key over a limit, an empty string an index keys on): the
            # other repairs go on; this one stays a difference, and says why
            report.remaining.append(d)
            report.notes.append(f"{key_text(d.target_key)}: the target table refuses it: {exc}")
            report.refused[key_id(d.target_key)] = f"the target table refuses it: {exc}"
            continue
        report.repaired.append(d)
    if raced:
        for r, d in zip(reread(sides, [d.as_candidate() for d in raced]), raced, strict=True):
            if r.kind is None:
                report.settled.append(d)
            else:
                report.remaining.append(r.difference())
    return report
