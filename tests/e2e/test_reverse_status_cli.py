"""`status` through the real `dualwrite` command on the embedded emulator once cutover and
rollback switch directions (DESIGN.md section 8): per route "direction" and
"foreign_writes" in --json, both in the text table."""

from __future__ import annotations

from pathlib import Path

import pytest

from dualwrite.aws.clients import Clients
from tests.conftest import Cli
from tests.e2e.test_cutover_safeguards_cli import migration, orders_world, ready

pytestmark = pytest.mark.e2e


def route(cli: Cli, config: Path) -> dict[str, object]:
    shown = cli.run(config, "status", "--json")
    assert shown.code == 0, shown.stderr
    (only,) = shown.json()["routes"]
    return dict(only)


def test_status_carries_the_direction_after_a_cutover_and_a_rollback(
    cli: Cli, emulator: str, emulator_clients: Clients, tmp_path: Path
) -> None:
    orders_world(emulator, emulator_clients, extras=False)
    config = migration(tmp_path, overlap_seconds=1)
    ready(cli, config)
    before = route(cli, config)
    assert (before["direction"], before["foreign_writes"]) == ("forward", 0)

    cut = cli.run(config, "cutover", "--json")
    assert cut.code == 0, cut.stderr
    reverse = cut.json()["reverse"]
    assert reverse["on"] is True and reverse["overlap_s"] == 1
    (switched,) = reverse["routes"]
    assert switched["route"] == "orders" and switched["direction"] == "reverse"
    after = route(cli, config)
    assert (after["direction"], after["foreign_writes"]) == ("reverse", 0)
    assert after["switched_at"] == switched["switched_at"] and after["drain_pending"] is True
    text = cli.run(config, "status")
    assert text.code == 0 and "direction" in text.stdout and "reverse" in text.stdout
    assert "foreign writes" in text.stdout

    back = cli.run(config, "rollback", "--json")
    assert back.code == 0, back.stderr
    assert back.json()["drain_pending"] is True and back.json()["unrepresentable"] == []
    rolled = route(cli, config)
    assert (rolled["direction"], rolled["foreign_writes"]) == ("forward", 0)
    assert float(rolled["switched_at"]) > float(switched["switched_at"])  # type: ignore[arg-type]
    words = cli.run(config, "rollback")
    assert words.code == 0 and "already rolled back" in words.stdout


def cut_over_past_the_overlap(cli: Cli, emulator: str, clients: Clients, tmp: Path) -> Path:
    """The orders world cut over, and its old direction drained, which `replicate
    --until-caught-up` does only once T+O is over: any write made next is after it."""
    orders_world(emulator, clients, extras=False)
    config = migration(tmp, overlap_seconds=1)
    ready(cli, config)
    assert cli.run(config, "cutover", "--json").code == 0
    assert cli.run(config, "replicate", "--until-caught-up", "--json").code == 0
    return config


def test_foreign_lists_a_stray_write_and_resolving_it_unblocks_nothing_else(
    cli: Cli, emulator: str, emulator_clients: Clients, tmp_path: Path
) -> None:
    config = cut_over_past_the_overlap(cli, emulator, emulator_clients, tmp_path)
    stray = {"id": {"S": "stray-1"}, "note": {"S": "a writer nobody re-pointed"}}
    emulator_clients.dynamodb.put_item(TableName="orders", Item=stray)
    assert cli.run(config, "replicate", "--until-caught-up", "--json").code == 0
    assert route(cli, config)["foreign_writes"] == 1

    listed = cli.run(config, "foreign", "--json")
    assert listed.code == 0, listed.stderr
    assert listed.json()["unresolved"] == 1
    (orders,) = listed.json()["routes"]
    assert [w["key"] for w in orders["writes"]] == [{"id": {"S": "stray-1"}}]
    text = cli.run(config, "foreign")
    assert text.code == 0 and "orders id=stray-1" in text.stdout and "unresolved" in text.stdout

    # the only drift, and one a repair never deletes: `reconcile` (exit 3) names `dualwrite
    # foreign` and its --carry/--resolve instead of a repair; `reconcile --repair` (exit 3
    # again) says no repair fixes what is left, advises no re-run, notes nothing repaired
    check = cli.run(config, "reconcile")
    first = cli.run(config, "reconcile", "--repair")
    second = cli.run(config, "reconcile", "--repair", "--json")
    assert (check.code, first.code, second.code) == (3, 3, 3)  # a re-run indeed cannot help
    for said in (check.stdout, first.stdout):
        assert "run `dualwrite reconcile --repair`" not in said, said[-600:]
        assert "foreign writes to orders (id=stray-1)" in said and "foreign --carry" in said
    assert "was repaired from" not in first.stderr, first.stderr
    (advised,) = second.json()["routes"]
    assert advised["repair_helps"] is False and advised["repaired"] == 0
    assert any("dualwrite foreign" in line for line in advised["advice"])
    assert not any("was repaired from" in n for n in advised.get("notes") or [])

    refused = cli.run(config, "decommission", "--yes", "--json")
    assert refused.code == 4 and "id=stray-1" in refused.stdout

    no_reason = cli.run(config, "foreign", "--resolve", "id=stray-1")
    assert no_reason.code == 2 and "--reason" in no_reason.stderr
    unknown = cli.run(config, "foreign", "--resolve", "id=nobody", "--reason", "x")
    assert unknown.code == 2 and "id=nobody" in unknown.stderr
    done = cli.run(config, "foreign", "--resolve", "id=stray-1", "--reason", "copied by hand")
    assert done.code == 0, done.stderr
    assert "resolved 1 foreign write(s); 0 unresolved left" in done.stdout
    assert route(cli, config)["foreign_writes"] == 0
    everything = cli.run(config, "foreign", "--all", "--json").json()
    (write,) = everything["routes"][0]["writes"]
    assert write["resolution"] == "copied by hand" and write["resolved_at"] is not None
    # the observation window still refuses decommission, but no longer for the foreign write
    still = cli.run(config, "decommission", "--yes", "--json")
    assert still.code == 4 and "stray-1" not in still.stdout

    again = {"id": {"S": "stray-1"}, "note": {"S": "the stray writer again"}}
    emulator_clients.dynamodb.put_item(TableName="orders", Item=again)
    assert cli.run(config, "replicate", "--until-caught-up", "--json").code == 0
    assert route(cli, config)["foreign_writes"] == 1  # listed again, from its own time


def test_foreign_carry_applies_the_old_tables_item_to_the_new_one_and_resolves_it(
    cli: Cli, emulator: str, emulator_clients: Clients, tmp_path: Path
) -> None:
    ddb = emulator_clients.dynamodb
    config = cut_over_past_the_overlap(cli, emulator, emulator_clients, tmp_path)
    stray = {"id": {"S": "stray-2"}, "note": {"S": "kept: the stray writer was right"}}
    ddb.put_item(TableName="orders", Item=stray)
    ddb.delete_item(TableName="orders", Key={"id": {"S": "o1"}})  # a stray delete, too
    assert cli.run(config, "replicate", "--until-caught-up", "--json").code == 0
    assert route(cli, config)["foreign_writes"] == 2

    carried = cli.run(config, "foreign", "--carry-all", "--json")
    assert carried.code == 0, carried.stderr
    out = carried.json()
    assert sorted(w["key"]["id"]["S"] for w in out["carried"]) == ["o1", "stray-2"]
    assert (out["quarantined"], out["failed"], out["unresolved"]) == ([], 0, 0)
    new = ddb.get_item(TableName="orders-v2", Key={"id": {"S": "stray-2"}}, ConsistentRead=True)
    assert new.get("Item") == stray
    gone = ddb.get_item(TableName="orders-v2", Key={"id": {"S": "o1"}}, ConsistentRead=True)
    assert "Item" not in gone
    # reverse replication finds the carried writes in the new table's stream: echoes
    again = cli.run(config, "replicate", "--until-caught-up", "--json")
    assert again.code == 0 and again.json()["foreign_writes"] == 0
    assert route(cli, config)["foreign_writes"] == 0
    (write, *_) = [
        w
        for w in cli.run(config, "foreign", "--all", "--json").json()["routes"][0]["writes"]
        if w["key"] == {"id": {"S": "stray-2"}}
    ]
    assert write["resolution"] == "carried to orders-v2 (dualwrite foreign --carry)"
    assert write["remapped_at"] is not None
    assert cli.run(config, "reconcile", "--json").json()["parity"] is True
