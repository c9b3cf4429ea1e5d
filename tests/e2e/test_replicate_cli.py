"""`dualwrite replicate` through the real command against the embedded emulator's streams."""

from __future__ import annotations

import json
import signal
import time

from dualwrite.aws import tables
from dualwrite.aws.clients import Clients
from dualwrite.config import load_migration
from dualwrite.control import ControlStore, Phase
from tests.conftest import MIGRATIONS, Cli
from tests.functional.test_replicator_runner import (
    assert_target_is_mapping_of_source,
    live_changes,
)

CORE = MIGRATIONS / "coretable.yaml"
KEYS = {"records", "applied", "failed", "quarantined", "lag_ms"}


def setup(cli: Cli, clients: Clients) -> ControlStore:
    """Empty sources, prepare (streams on), then the seed, so all of it is in the streams."""
    assert cli.run(CORE, "seed", "--servers", "0", "--memberships", "0").code == 0
    prepared = cli.run(CORE, "prepare", "--no-backup", "--json")
    assert prepared.code == 0, prepared.stderr
    seeded = cli.run(CORE, "seed", "--servers", "15", "--memberships", "40", "--json")
    assert seeded.code == 0, seeded.stderr
    return ControlStore(clients.dynamodb, load_migration(CORE).control_table)


def test_replicate_until_caught_up_holds_then_replicates_everything(
    cli: Cli, emulator_clients: Clients
) -> None:
    store = setup(cli, emulator_clients)
    store.set_phase("servers", Phase.BACKFILLED)  # the backfill command is not ours to run

    held = cli.run(CORE, "replicate", "--until-caught-up", "--json")

    assert held.code == 0, held.stderr
    first = held.json()
    assert set(first) >= KEYS
    assert first["held_routes"] == ["memberships"]
    assert first["records"] == first["applied"] == 15 and first["failed"] == 0
    assert "memberships" in held.stderr and "not backfilled" in held.stderr

    store.set_phase("memberships", Phase.BACKFILLED)
    live_changes(emulator_clients)
    done = cli.run(CORE, "replicate", "--until-caught-up", "--json")

    assert done.code == 0, done.stderr
    second = done.json()
    assert second["held_routes"] == [] and second["failed"] == 0
    assert second["records"] == second["applied"] + second["quarantined"] > 40
    assert isinstance(second["lag_ms"], int)
    assert_target_is_mapping_of_source(emulator_clients, load_migration(CORE))

    human = cli.run(CORE, "replicate", "--duration", "0.5")
    assert human.code == 0, human.stderr
    assert "0 records" in human.stdout  # everything was checkpointed


def test_ctrl_c_stops_cleanly_after_checkpointing(cli: Cli, emulator_clients: Clients) -> None:
    store = setup(cli, emulator_clients)
    for route in ("servers", "memberships"):
        store.set_phase(route, Phase.BACKFILLED)
    streams = []
    for table in ("ServersTable", "UserMembershipTable"):
        desc = tables.describe(emulator_clients.dynamodb, table)
        assert desc is not None
        streams.append(desc["LatestStreamArn"])

    def caught_up() -> bool:
        shards = [s for arn in streams for s in store.shards(arn)]
        return len(shards) == 2 and all(s.caught_up_at for s in shards)

    proc = cli.start(CORE, "replicate", "--json", "--batch-size", "10")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if caught_up():
            break
        time.sleep(0.2)  # polling a condition, not waiting for luck
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)

    assert proc.returncode == 0, err
    summary = json.loads(out)
    assert set(summary) >= KEYS
    assert summary["records"] == 55 and summary["failed"] == 0
    assert "stopping" in err
    (shard,) = store.shards(streams[1])
    assert shard.records == 40 and shard.sequence_number


def test_ctrl_c_before_caught_up_exits_130(cli: Cli, emulator_clients: Clients) -> None:
    """`replicate --until-caught-up && dualwrite cutover` must not go on after a Ctrl-C that
    stopped it before it caught up."""
    store = setup(cli, emulator_clients)
    for route in ("servers", "memberships"):
        store.set_phase(route, Phase.BACKFILLED)
    desc = tables.describe(emulator_clients.dynamodb, "UserMembershipTable")
    assert desc is not None

    def started() -> bool:  # one batch of 40 checkpointed, far from the end
        return any(s.records for s in store.shards(desc["LatestStreamArn"]))

    proc = cli.start(CORE, "replicate", "--until-caught-up", "--json", "--batch-size", "1")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None and not started():
        time.sleep(0.05)  # polling a condition
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)

    summary = json.loads(out)
    assert summary["caught_up"] is False, summary
    assert proc.returncode == 130, err
    assert "before catching up" in err


def test_until_caught_up_whose_duration_ran_out_first_exits_1(
    cli: Cli, emulator_clients: Clients
) -> None:
    """Its own JSON said caught_up: false with every record unread, and it exited 0, so
    `replicate --until-caught-up --duration S && dualwrite cutover` went on."""
    store = setup(cli, emulator_clients)
    for route in ("servers", "memberships"):
        store.set_phase(route, Phase.BACKFILLED)
    run = cli.run(CORE, "replicate", "--until-caught-up", "--duration", "0", "--json")
    assert run.code == 1, run.stderr
    assert run.json()["caught_up"] is False
    assert "--duration 0s ran out before catching up" in run.stderr
