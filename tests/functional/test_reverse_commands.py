"""What status, decommission and `reconcile --repair` do once a route replicates in reverse
(DESIGN.md section 8), on moto: the direction and the foreign writes per route, a
decommission refused while foreign writes are listed, and a repair that fixes the source
from the target without touching a foreign-written key."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from rich.console import Console

from dualwrite.cli.cmd_status import _print_status
from dualwrite.control import ShardCheckpoint
from dualwrite.cutover.decommission import run_decommission
from dualwrite.cutover.results import Status
from dualwrite.cutover.rollback import rollback
from dualwrite.cutover.switch import cutover
from dualwrite.reverse.direction import Flow, drained
from dualwrite.reverse.foreign import ForeignWrite
from dualwrite.status import gather
from reconciler.job import run_reconcile
from tests.reverse_cutover_world import FORCED, World, build


@pytest.fixture
def moto(aws_env: None) -> Iterator[None]:
    from moto import mock_aws

    with mock_aws(config={"lambda": {"use_docker": False}}):
        yield


def put(w: World, table: str, key: str, **attrs: str) -> None:
    item = {"id": {"S": key}, **{n: {"S": v} for n, v in attrs.items()}}
    w.clients.dynamodb.put_item(TableName=table, Item=item)


def get(w: World, table: str, key: str) -> dict[str, object] | None:
    found = w.clients.dynamodb.get_item(
        TableName=table, Key={"id": {"S": key}}, ConsistentRead=True
    )
    return found.get("Item")


def drain(w: World) -> None:
    state = w.store.direction("r")
    assert w.store.save_direction("r", drained(state), expected=state)


def foreign(w: World, key: str) -> ForeignWrite:
    write = ForeignWrite("r", {"id": {"S": key}}, w.now())
    w.store.record_foreign([write])
    return write


def route_status(w: World) -> dict[str, object]:
    (route,) = gather(w.ctx.migration, w.clients, w.store, now=w.now).to_json()["routes"]
    return dict(route)


def test_status_shows_the_direction_its_drain_and_the_foreign_writes(moto: None) -> None:
    w = build()
    before = route_status(w)
    assert (before["direction"], before["foreign_writes"], before["drain_pending"]) == (
        "forward",
        0,
        False,
    )
    cutover(w.ctx, FORCED)
    after = route_status(w)
    assert after["direction"] == "reverse" and after["drain_pending"] is True
    assert after["switched_at"] == w.store.direction("r").switched_at
    assert before["reverse_replication"] is None  # never switched: nothing to show
    assert after["reverse_replication"]["records"] == 0  # type: ignore[index]
    stream = w.stream("new-t")  # where the local runner keeps reverse's position
    w.store.save_shard(ShardCheckpoint(stream, "shard-1", "target:new-t", "9", records=12))
    progressed = route_status(w)["reverse_replication"]
    assert progressed["stream_arn"] == stream and progressed["records"] == 12  # type: ignore[index]
    drain(w)
    foreign(w, "f1")
    foreign(w, "f2")
    listed = route_status(w)
    assert listed["foreign_writes"] == 2 and listed["drain_pending"] is False
    assert sorted(k["key"]["id"]["S"] for k in listed["foreign_keys"]) == ["f1", "f2"]  # type: ignore[attr-defined, index]
    console = Console(record=True, width=200)
    _print_status(console, gather(w.ctx.migration, w.clients, w.store, now=w.now).to_json())
    text = console.export_text()
    (row,) = [line for line in text.splitlines() if line.strip().startswith("direction")]
    assert row.split() == ["direction", "reverse"]
    (row,) = [line for line in text.splitlines() if "reverse replication" in line]
    assert "12 records, 1/1 shards open" in row
    assert "foreign writes on r (old-t): 2 key(s)" in text
    assert "id=f1" in text and "id=f2" in text
    rollback(w.ctx)
    back = route_status(w)
    assert back["direction"] == "forward" and back["foreign_writes"] == 2


def test_decommission_is_refused_while_foreign_writes_are_listed(moto: None) -> None:
    w = build()
    cutover(w.ctx, FORCED)
    drain(w)
    put(w, "old-t", "echo")  # reverse replication's own write: no reason to refuse
    w.clock.sleep(timedelta(days=8).total_seconds())
    foreign(w, "intruder")

    refused = run_decommission(w.ctx, yes=True)

    assert refused.status is Status.REFUSED and refused.status.exit_code == 4
    assert refused.gate is not None
    (reason,) = refused.gate.reasons
    assert reason.startswith("r: 1 key(s) of old-t written after the cutover")
    assert "id=intruder" in reason
    assert refused.to_json()["status"] == "refused"
    assert "old-t" in w.clients.dynamodb.list_tables()["TableNames"]

    (listed,) = w.store.foreign_writes("r")
    w.store.resolve_foreign(listed, "carried to new-t by hand", w.now())  # `dualwrite foreign`
    assert w.reverse_uuid is not None
    assert w.mapping(w.reverse_uuid)["State"] == "Enabled"  # enabled by the cutover
    done = run_decommission(w.ctx, yes=True)
    assert done.status is Status.DONE and [r.table for r in done.removed] == ["old-t"]
    # nothing left to write in reverse: the replicator's mapping on the target stream is off
    assert w.mapping(w.reverse_uuid)["State"] == "Disabled"
    assert any(w.reverse_uuid in note and "disabled" in note for note in done.warnings)


def test_repair_while_reverse_fixes_the_source_from_the_target_but_not_a_foreign_key(
    moto: None,
) -> None:
    w = build()
    for key in ("same", "changed", "gone", "fresh"):
        put(w, "old-t", key, v="1")
        put(w, "new-t", key, v="1")
    cutover(w.ctx, FORCED)
    drain(w)
    # the application, on the new table: one update, one delete, one insert
    put(w, "new-t", "changed", v="2")
    w.clients.dynamodb.delete_item(TableName="new-t", Key={"id": {"S": "gone"}})
    put(w, "new-t", "born", v="3")
    # a writer nobody re-pointed, on the old table (listed as foreign)
    put(w, "old-t", "intruder", v="9")
    foreign(w, "intruder")

    result = run_reconcile(
        w.ctx.migration, w.clients, w.store, repair=True, publish_metrics=False, settle_s=0
    )

    (route,) = result.routes
    assert (route.missing, route.extra, route.mismatched) == (2, 1, 1)
    assert route.repaired == 3
    assert get(w, "old-t", "changed") == {"id": {"S": "changed"}, "v": {"S": "2"}}
    assert get(w, "old-t", "gone") is None
    assert get(w, "old-t", "born") == {"id": {"S": "born"}, "v": {"S": "3"}}
    assert get(w, "new-t", "gone") is None  # the target, the truth, was not touched
    assert get(w, "old-t", "intruder") == {"id": {"S": "intruder"}, "v": {"S": "9"}}
    assert any("intruder" in n and "foreign" in n for n in route.notes)
    assert result.parity is False and route.remaining.missing == 1  # what is left: the foreign key
    (own,) = w.store.own_writes("r", w.now() - 60, w.now() + 60, 900)
    assert len(own.fingerprints) == 3, "the repair's writes are journaled as its own"
    assert own.until == own.at, "and the span narrowed to the writes' end once they are made"

    (listed,) = w.store.foreign_writes("r")  # judged moot by an operator: repaired like any
    w.store.resolve_foreign(listed, "a test writer, moot", w.now())
    again = run_reconcile(
        w.ctx.migration, w.clients, w.store, repair=True, publish_metrics=False, settle_s=0
    )
    assert again.parity is True and again.routes[0].repaired == 1
    assert get(w, "old-t", "intruder") is None  # the target, the truth, has no such key


def test_a_resolved_foreign_write_stays_recorded_and_a_new_one_lists_the_key_again(
    moto: None,
) -> None:
    w = build()
    first = foreign(w, "k1")
    w.store.resolve_foreign(first, "moot", w.now() + 1)
    assert w.store.foreign_writes("r", unresolved_only=True) == []
    (kept,) = w.store.foreign_writes("r")
    assert (kept.resolution, kept.resolved_at, kept.at) == ("moot", w.now() + 1, first.at)
    w.store.mark_remapped(kept, w.now() + 2)  # forward, after a rollback, keeps the resolution
    (carried,) = w.store.foreign_writes("r")
    assert carried.resolved and carried.remapped_at == w.now() + 2
    w.store.record_foreign([ForeignWrite("r", {"id": {"S": "k1"}}, w.now() + 5)])
    (relisted,) = w.store.foreign_writes("r", unresolved_only=True)
    assert relisted.at == w.now() + 5 and relisted.remapped_at is None
    w.store.record_foreign([ForeignWrite("r", {"id": {"S": "k1"}}, w.now() + 9)])
    assert w.store.foreign_writes("r")[0].at == w.now() + 5  # listed: the first time is kept


def test_repair_while_forward_is_unchanged_and_fixes_the_target(moto: None) -> None:
    w = build()
    put(w, "old-t", "a", v="1")
    put(w, "new-t", "a", v="0")
    assert w.store.direction("r").direction is Flow.FORWARD

    result = run_reconcile(
        w.ctx.migration, w.clients, w.store, repair=True, publish_metrics=False, settle_s=0
    )

    assert result.parity and result.routes[0].repaired == 1
    assert get(w, "new-t", "a") == {"id": {"S": "a"}, "v": {"S": "1"}}


def test_a_rerun_reports_what_a_killed_decommission_deleted_and_status_says_so(
    moto: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A decommission killed right after its DeleteTable (the table's record left pending)
    is finished by the next run, which reports the table and its backup as its own (it
    said "already gone" with no backup: only the control table knew where it was); and
    status shows the source decommissioned, not its replication "not started"."""
    import dualwrite.cutover.decommission as decommissioning

    w = build()
    cutover(w.ctx, FORCED)
    drain(w)
    w.clock.sleep(timedelta(days=8).total_seconds())
    real = decommissioning.delete_table

    def killed(client: object, table: str, timeout: float = 600.0) -> None:
        real(client, table, timeout)
        raise KeyboardInterrupt  # the run dies before it completes the record

    monkeypatch.setattr(decommissioning, "delete_table", killed)
    with pytest.raises(KeyboardInterrupt):
        run_decommission(w.ctx, yes=True)
    monkeypatch.setattr(decommissioning, "delete_table", real)
    assert "old-t" not in w.clients.dynamodb.list_tables()["TableNames"]
    (backup,) = w.clients.dynamodb.list_backups(TableName="old-t")["BackupSummaries"]

    again = run_decommission(w.ctx, yes=True)

    assert again.status is Status.DONE
    assert again.to_json()["decommissioned"] == ["old-t"]
    assert again.to_json()["backups"] == {"old-t": backup["BackupArn"]}
    assert run_decommission(w.ctx, yes=True).to_json()["decommissioned"] == []  # then a no-op
    route = route_status(w)
    assert route["source_exists"] is False and route["source_decommissioned_at"]
    console = Console(record=True, width=200)
    _print_status(console, gather(w.ctx.migration, w.clients, w.store, now=w.now).to_json())
    text = console.export_text()
    assert "old-t (decommissioned 20" in text
    (replication,) = [line for line in text.splitlines() if line.startswith("  replication ")]
    assert replication.rstrip().endswith("the source is decommissioned")


def test_status_says_a_source_table_that_does_not_exist_is_missing(moto: None) -> None:
    """A typo in the migration file, or a table deleted by hand (not decommissioned): the
    text showed the name as if the table were there, and replication "not started"."""
    w = build()
    w.clients.dynamodb.delete_table(TableName="old-t")
    console = Console(record=True, width=200)
    _print_status(console, gather(w.ctx.migration, w.clients, w.store, now=w.now).to_json())
    text = console.export_text()
    (source,) = [line for line in text.splitlines() if line.startswith("  source ")]
    assert source.split() == ["source", "old-t", "(missing)"]
    (replication,) = [line for line in text.splitlines() if line.startswith("  replication ")]
    assert replication.rstrip().endswith("the source table does not exist")
