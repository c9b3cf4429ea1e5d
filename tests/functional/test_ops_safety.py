"""Operations where a review found data at risk or a command misleading: decommission killed
and re-run (its record written before DeleteTable), refused while a forward table has unread
changes or a new table is gone, and saying what it deleted when a later step fails; a second
unmappable foreign write carried over is quarantined too; quarantine and foreign listings
print keys and reasons as text; `quarantine --resolve` keeps to --route and to the first
resolution; the demo and seed with little data."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from dualwrite import seed as seeding
from dualwrite.aws import tables as aws_tables
from dualwrite.aws.clients import AwsSettings, Clients
from dualwrite.config import load_migration, parse_migration
from dualwrite.control import ControlStore, Phase, control_table_definition
from dualwrite.cutover import decommission as decommissioning
from dualwrite.cutover.decommission import run_decommission
from dualwrite.cutover.results import Status
from dualwrite.cutover.rollback import rollback
from dualwrite.cutover.switch import cutover
from dualwrite.errors import AwsError
from dualwrite.reverse.direction import drained
from dualwrite.reverse.foreign import ForeignWrite
from stream_replicator.batch import process_records
from stream_replicator.remap import carry_foreign
from tests.conftest import MIGRATIONS, ROOT
from tests.functional.test_cutover_facts import make_table
from tests.functional.test_replicator_reverse_lambda import Records
from tests.reverse_cutover_world import FORCED, World, build, migration
from tests.reverse_world import prepared

CORE = MIGRATIONS / "coretable.yaml"


# --- shared helpers ---------------------------------------------------------------------


@pytest.fixture
def moto_lambda(aws_env: None) -> Iterator[None]:
    from moto import mock_aws

    with mock_aws(config={"lambda": {"use_docker": False}}):
        yield


def cut_over_and_drained(w: World, *routes: str) -> None:
    """Cut over (forced: these worlds record no reconcile), forward drained, 8 days on."""
    cutover(w.ctx, FORCED)
    for name in routes or ("r",):
        state = w.store.direction(name)
        assert w.store.save_direction(name, drained(state), expected=state)
    w.clock.sleep(timedelta(days=8).total_seconds())


def kill_after_delete(monkeypatch: pytest.MonkeyPatch, w: World) -> None:
    """Run decommission, killed right after DeleteTable returned (before its record)."""
    real = decommissioning.delete_table

    def killed_after(client: object, table: str, timeout: float = 600.0) -> None:
        real(client, table, timeout)
        raise KeyboardInterrupt  # Ctrl-C, a closed laptop lid, an OOM kill

    with monkeypatch.context() as m:
        m.setattr(decommissioning, "delete_table", killed_after)
        with pytest.raises(KeyboardInterrupt):
            run_decommission(w.ctx, yes=True)


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """The real `dualwrite` entry point, in process (moto active), on coretable.yaml."""
    from dualwrite.cli.app import main

    capsys.readouterr()
    try:
        main(["--config", str(CORE), *args])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def core_store(clients: Clients) -> ControlStore:
    """coretable.yaml's sources and control table (what seed + prepare leave)."""
    seeding.ensure_tables(clients)
    m = load_migration(CORE)
    aws_tables.create_table(clients.dynamodb, control_table_definition(m.control_table))
    return ControlStore(clients.dynamodb, m.control_table)


@pytest.fixture
def quarantined(moto_clients: Clients) -> tuple[ControlStore, str, str]:
    store = core_store(moto_clients)
    s = store.quarantine("servers", "bad server", {"id": {"S": "s1"}}, source="backfill")
    m = store.quarantine(
        "memberships",
        "membership has no role",
        {"userId": {"S": "u1"}, "serverId": {"S": "s1"}},
        source="backfill",
    )
    return store, s, m


# --- 1. a second unmappable foreign write is never quarantined ---------------------------


def test_carry_of_a_second_unmappable_foreign_write_is_quarantined_too(
    moto_clients: Clients,
) -> None:
    """Two `foreign --carry` runs (or two post-rollback re-maps), each of one unmappable key:
    each key must get its own quarantine entry. The synthetic records are numbered from 1
    every call (SequenceNumber "1", eventID "remap-1"), so the second one finds the first
    one's QUARANTINE#SEEN marker and writes no entry, yet reports "quarantined"."""
    seeding.ensure_tables(moto_clients)
    w = prepared(moto_clients, load_migration(CORE))
    for sid in ("s1", "s2"):  # "PK" would overwrite the target's key: quarantined
        moto_clients.dynamodb.put_item(
            TableName="ServersTable", Item={"id": {"S": sid}, "PK": {"S": "bad"}}
        )
    rep = w.replicator()
    ctx = rep.context(w.migration.route("servers"))

    first, second = (ForeignWrite("servers", {"id": {"S": k}}, 1.0) for k in ("s1", "s2"))
    (one,) = carry_foreign(rep, ctx, [first], lambda: True)  # `foreign --carry id=s1`
    (two,) = carry_foreign(rep, ctx, [second], lambda: True)  # later: `--carry id=s2`
    assert one[1] is True and two[1] is True  # both reported quarantined ...

    keys = sorted(e.record["dynamodb"]["Keys"]["id"]["S"] for e in w.store.quarantined())
    assert keys == ["s1", "s2"]  # ... but only s1 has an entry


# --- 2. decommission killed after a delete, then re-run ----------------------------------


def test_rollback_after_a_killed_and_rerun_decommission_still_refuses(
    moto_lambda: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a clean decommission rollback refuses (its DECOMMISSION records say the old
    tables are gone). Killed between DeleteTable and the record, the re-run says "already
    gone" and never writes it: rollback then points the functions at the deleted table."""
    w = build(replicator=False)
    cut_over_and_drained(w)
    w.caught_up("old-t")
    kill_after_delete(monkeypatch, w)
    assert run_decommission(w.ctx, yes=True).status is Status.DONE  # "already gone"

    back = rollback(w.ctx)

    env = w.clients.lambda_.get_function_configuration(FunctionName="api")["Environment"]
    assert env["Variables"]["TABLE"] == "new-t", "re-pointed at the deleted old-t"
    assert back.status is Status.REFUSED


def test_decommission_killed_after_a_delete_still_records_it_on_the_rerun(
    moto_lambda: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same kill. The replicator skips a decommissioned route's target-stream records only
    when the DECOMMISSION record exists; without it every later write to the new table fails
    the replicator's batch with a ConfigError, for good."""
    w = build()
    cut_over_and_drained(w)
    kill_after_delete(monkeypatch, w)
    assert run_decommission(w.ctx, yes=True).status is Status.DONE

    item = {"id": {"S": "after"}}  # the application keeps writing the new table
    record = Records().record("new-t", "INSERT", {"id": item["id"]}, item, w.now())
    done = process_records(w.replicator(), [record])  # raised ConfigError before
    assert done.failures == []


def test_decommission_rerun_after_a_kill_still_disables_reverse_replication(
    moto_lambda: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed after the delete, before stop_reverse: the re-run returns early ("already
    gone") and never disables reverse replication's event source mapping (nor repeats the
    warnings about mappings on the deleted table's stream)."""
    w = build()
    cut_over_and_drained(w)
    assert w.reverse_uuid is not None and w.mapping(w.reverse_uuid)["State"] == "Enabled"

    def killed(*_a: object, **_k: object) -> tuple[str, ...]:
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(decommissioning, "stop_reverse", killed)
        with pytest.raises(KeyboardInterrupt):
            run_decommission(w.ctx, yes=True)
    assert "old-t" not in w.clients.dynamodb.list_tables()["TableNames"]

    assert run_decommission(w.ctx, yes=True).status is Status.DONE
    assert w.mapping(w.reverse_uuid)["State"] == "Disabled"


# --- 3. decommission's gate misses unapplied changes and a missing new table ----------------


def test_decommission_refuses_while_forward_replication_has_unread_changes(
    moto_lambda: None,
) -> None:
    """cutover.reverse: false. A change made to the old table before the switch that the
    replicator never read is not in the new table; the gate only looks for writes *after*
    the cutover, so the old table (the change's only live copy) is deleted."""
    w = build(migration(reverse=False), replicator=False)
    w.clients.dynamodb.put_item(TableName="old-t", Item={"id": {"S": "late"}, "v": {"S": "1"}})
    w.clock.sleep(5)
    cutover(w.ctx, FORCED)
    w.clock.sleep(timedelta(days=8).total_seconds())
    assert w.item("new-t", "late") is None  # never replicated

    result = run_decommission(w.ctx, yes=True)

    assert result.status is Status.REFUSED, result.to_json()
    assert "old-t" in w.clients.dynamodb.list_tables()["TableNames"]


def test_decommission_refuses_when_the_new_table_is_gone(moto_lambda: None) -> None:
    """The new table was deleted (by mistake, a stack teardown): the old table is the only
    copy of the data, and decommission deletes it anyway."""
    w = build(replicator=False)
    w.clients.dynamodb.put_item(TableName="old-t", Item={"id": {"S": "precious"}})
    cut_over_and_drained(w)
    w.caught_up("old-t")
    w.clients.dynamodb.delete_table(TableName="new-t")

    result = run_decommission(w.ctx, yes=True)

    assert result.status is Status.REFUSED, result.to_json()
    assert "old-t" in w.clients.dynamodb.list_tables()["TableNames"]


# --- 4. decommission --json when a later step fails -----------------------------------------


def test_decommission_json_reports_what_it_deleted_when_a_later_delete_fails(
    moto_lambda: None,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two old tables; old-t is backed up and deleted, old-u's delete fails. With --json
    stdout must still be one JSON object (DESIGN section 4) saying old-t is gone and where
    its backup is; stdout was empty (and the text output does not say it either)."""
    from dualwrite.cli.app import main

    doc = {
        "control_table": "ctl",
        "routes": [
            {"name": "r", "source": "old-t", "target": "new-t", "mapping": "identity"},
            {"name": "r2", "source": "old-u", "target": "new-u", "mapping": "identity"},
        ],
        "cutover": {"functions": ["api"], "watch_seconds": 0},
    }
    c = Clients(AwsSettings(region="us-east-1"))
    make_table(c, "old-u")
    make_table(c, "new-u")
    w = build(parse_migration(doc), replicator=False)
    cut_over_and_drained(w, "r", "r2")
    config = tmp_path / "m.yaml"
    config.write_text(yaml.safe_dump(doc))
    real = decommissioning.delete_table

    def flaky(client: object, table: str, timeout: float = 600.0) -> None:
        if table == "old-u":
            raise AwsError("DeleteTable old-u: ThrottlingException")
        real(client, table, timeout)

    monkeypatch.setattr(decommissioning, "delete_table", flaky)
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        now = w.clock.now().isoformat()
        main(["--config", str(config), "decommission", "--yes", "--json", "--now", now])
    out = capsys.readouterr()
    assert stop.value.code == 1, out.err
    assert "old-t" not in c.dynamodb.list_tables()["TableNames"]  # it was deleted
    result = json.loads(out.out)  # JSONDecodeError before: stdout was empty
    assert "old-t" in result["decommissioned"]


# --- 5. rich markup in operator text and key values ---------------------------------------


def test_quarantine_listing_survives_a_resolution_reason_with_brackets(
    quarantined: tuple[ControlStore, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    _, servers_id, _ = quarantined
    reason = "restored from backup [/] ticket OPS-12"
    code, _, err = run_cli(capsys, "quarantine", "--resolve", servers_id, "--reason", reason)
    assert code == 0, err
    code, out, err = run_cli(capsys, "quarantine", "--all")
    assert code == 0, err  # before: exit 1, "error: unexpected MarkupError: closing tag '[/]'"
    assert reason in out


def test_quarantine_listing_prints_a_key_with_brackets_as_it_is(
    moto_clients: Clients, capsys: pytest.CaptureFixture[str]
) -> None:
    store = core_store(moto_clients)
    store.quarantine("servers", "bad server", {"id": {"S": "srv-[eu]-1"}}, source="backfill")
    code, out, err = run_cli(capsys, "quarantine")
    assert code == 0, err
    assert "id=srv-[eu]-1" in out  # before: "key:    id=srv--1"


def test_foreign_listing_prints_a_key_with_brackets_so_it_can_be_resolved(
    moto_clients: Clients, capsys: pytest.CaptureFixture[str]
) -> None:
    store = core_store(moto_clients)
    store.record_foreign([ForeignWrite("servers", {"id": {"S": "srv-[eu]-1"}}, store.now())])
    code, out, err = run_cli(capsys, "foreign")
    assert code == 0, err
    assert "id=srv-[eu]-1" in out  # before: "servers id=srv--1", a key --resolve rejects


# --- 6. `quarantine --resolve` and --route ---------------------------------------------------


def test_quarantine_resolve_all_of_a_route_reports_that_routes_unresolved_count(
    quarantined: tuple[ControlStore, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(
        capsys, "quarantine", "--route", "servers", "--resolve-all", "--reason", "x", "--json"
    )
    assert code == 0, err
    resolved = json.loads(out)
    code, out, err = run_cli(capsys, "quarantine", "--route", "servers", "--json")
    listed = json.loads(out)
    assert listed["unresolved"] == 0
    assert resolved["unresolved"] == listed["unresolved"]  # before: 1 (memberships' entry)


def test_quarantine_resolve_with_route_refuses_an_entry_of_another_route(
    quarantined: tuple[ControlStore, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    store, servers_id, _ = quarantined
    code, out, err = run_cli(
        capsys, "quarantine", "--route", "memberships", "--resolve", servers_id, "--reason", "x"
    )
    assert code == 2, (code, out, err)  # before: 0, "resolved 1 entry; 1 left"
    entry = store.quarantine_entry(servers_id)
    assert entry is not None and not entry.resolved


def test_quarantine_resolve_of_a_resolved_entry_keeps_its_first_resolution(
    quarantined: tuple[ControlStore, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    store, servers_id, _ = quarantined
    code, _, err = run_cli(capsys, "quarantine", "--resolve", servers_id, "--reason", "by Ann")
    assert code == 0, err
    first = store.quarantine_entry(servers_id)
    run_cli(capsys, "quarantine", "--resolve", servers_id, "--reason", "oops")
    again = store.quarantine_entry(servers_id)
    assert again is not None and first is not None
    assert (again.resolution, again.resolved_at) == (first.resolution, first.resolved_at)


# --- 7. demo and seed on small data --------------------------------------------------------


def test_demo_traffic_keeps_going_once_every_user_left() -> None:
    """The demo's live traffic on small data (`dualwrite demo --servers 3 --memberships 5`):
    once every user has lost their last membership the "join" branch calls rng.choice([])
    and the demo dies "error: unexpected IndexError: Cannot choose from an empty sequence"."""
    from dualwrite.traffic import TrafficPlan

    plan = TrafficPlan(seeding.generate(3, 5, 1), seed=2)  # the demo's seed + 1
    for _ in range(5000):
        plan.next_ops()


@pytest.mark.e2e
def test_demo_with_two_servers_does_not_report_lost_writes() -> None:
    """`dualwrite demo --servers 2 --memberships 30` reaches 100% parity, cuts over and rolls
    back; its observation window plans no application write with fewer than 3 servers, and
    an empty list of writes is judged "rollback lost writes (exit 3)"."""
    proc = subprocess.run(
        [sys.executable, "-m", "dualwrite", "demo", "--servers", "2", "--memberships", "30"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert "rollback lost writes" not in proc.stdout
    assert proc.returncode == 0, proc.stdout[-400:]


def test_demo_observation_window_plans_its_writes_when_one_user_holds_them_all(
    moto_clients: Clients,
) -> None:
    """plan_writes with every membership of one user: StopIteration from next(...)."""
    from dualwrite.cli.demo_reverse import plan_writes

    data = seeding.generate(3, 5, 1)
    seeding.ensure_tables(moto_clients)
    seeding.write_items(moto_clients, seeding.SERVERS_TABLE, data.servers)
    seeding.write_items(moto_clients, seeding.MEMBERSHIPS_TABLE, data.memberships)
    assert len(data.memberships) >= 3
    plan_writes(moto_clients.dynamodb, data)  # raised StopIteration


def test_seed_makes_as_many_memberships_as_asked_when_they_fit() -> None:
    """`seed --servers 2 --memberships 10`: 10 distinct (user, server) pairs exist (5 users
    x 2 servers), but the generator fixes the users at M // 3 and makes only 6."""
    assert len(seeding.generate(2, 10, 1).memberships) == 10


def test_seed_refuses_tables_a_migration_is_copying(
    moto_clients: Clients, capsys: pytest.CaptureFixture[str]
) -> None:
    """After a backfill, `seed` put its generated items back over the live ones (a server's
    update reverted, a deleted one re-created), and replication carried them on."""
    from tests.functional.test_reconcile_support import build_core

    _migration, store, data = build_core(moto_clients, servers=3, memberships=3)
    store.set_phase("servers", Phase.BACKFILLED)
    sid = data.servers[0]["id"]
    moto_clients.dynamodb.delete_item(TableName="ServersTable", Key={"id": sid})
    code, out, err = run_cli(capsys, "seed", "--servers", "3", "--memberships", "3")
    assert code == 2, (out, err)
    assert "seed would overwrite ServersTable, UserMembershipTable" in err
    assert "Item" not in moto_clients.dynamodb.get_item(TableName="ServersTable", Key={"id": sid})
