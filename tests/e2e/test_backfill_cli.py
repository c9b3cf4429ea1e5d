"""`dualwrite backfill` through the real command on the embedded emulator."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from dualwrite import seed as seeding
from dualwrite.aws.clients import Clients
from dualwrite.config import load_migration
from dualwrite.control import ControlStore, Phase
from tests.conftest import MIGRATIONS, Cli
from tests.functional.test_backfill_support import (
    assert_exact,
    expected_target,
    prepare,
    scan_all,
    seed,
)

pytestmark = pytest.mark.e2e
CONFIG = MIGRATIONS / "coretable.yaml"


def test_a_backfill_killed_with_sigkill_resumes_from_its_checkpoint_exactly(
    cli: Cli, emulator_clients: Clients
) -> None:
    migration = load_migration(CONFIG)
    data = seeding.generate(6, 1800, seed=7)
    seed(emulator_clients, data.servers, data.memberships)
    prepare(emulator_clients, migration)
    store = ControlStore(emulator_clients.dynamodb, migration.control_table)

    # one segment of two pages (Limit 1,000), slowed by a write budget so it is still
    # running when its first page is checkpointed
    proc = cli.start(
        CONFIG, "backfill", "--route", "memberships", "--segments", "1", "--max-wcu", "300",
        "--json",
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        checkpoint = None
        while proc.poll() is None and time.monotonic() < deadline:
            checkpoint = store.segment("memberships", 0, 1)
            if checkpoint and checkpoint.last_key is not None:
                break
            time.sleep(0.05)  # polling interval, not synchronisation
        assert proc.poll() is None, "the backfill ended before it was seen mid-run"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert checkpoint is not None and not checkpoint.done
    assert checkpoint.items_read == 1000
    assert store.phase("memberships").phase == Phase.BACKFILLING

    result = cli.run(CONFIG, "backfill", "--json")

    assert result.code == 0, result.stderr
    out = {r["route"]: r for r in result.json()["routes"]}
    assert set(result.json()) >= {"routes", "duration_s"}
    assert set(out["memberships"]) >= {
        "route",
        "items_read",
        "items_written",
        "quarantined",
        "segments",
        "segments_resumed",
    }
    assert out["memberships"]["segments_resumed"] == 1
    # the killed run lost nothing and this one redid at most the page it was on
    assert out["memberships"]["items_read"] == len(data.memberships) - 1000
    assert out["servers"]["segments_resumed"] == 0
    assert out["servers"]["items_read"] == len(data.servers)
    assert all(r["phase"] == Phase.BACKFILLED for r in out.values())
    assert_exact(
        scan_all(emulator_clients, "CoreTable"), expected_target(emulator_clients, migration)
    )


def test_bad_usage_and_a_missing_prepare_exit_2_with_one_line(
    cli: Cli, emulator_clients: Clients
) -> None:
    data = seeding.generate(10, 20, seed=2)
    seed(emulator_clients, data.servers, data.memberships)

    unprepared = cli.run(CONFIG, "backfill", "--json")
    assert unprepared.code == 2
    # --json: exactly one JSON object on stdout, the error's (DESIGN.md section 4)
    assert json.loads(unprepared.stdout)["exit_code"] == 2
    (line,) = unprepared.stderr.strip().splitlines()
    assert "dualwrite-control" in line and "prepare" in line

    prepare(emulator_clients, load_migration(CONFIG))
    unknown = cli.run(CONFIG, "backfill", "--route", "nope")
    assert unknown.code == 2
    (line,) = unknown.stderr.strip().splitlines()
    assert "no route named 'nope'" in line

    human = cli.run(CONFIG, "backfill", "--segments", "2", "--workers", "2")
    assert human.code == 0, human.stderr
    assert "servers" in human.stdout and "backfilled" in human.stdout
    assert "no Lambda event source mappings" in human.stdout


def test_a_rerun_of_a_complete_route_with_other_segments_finds_it_complete(
    cli: Cli, emulator_clients: Clients
) -> None:
    """DESIGN.md section 4: `segments_resumed` counts segments "found already complete".
    After `backfill --segments 1` completed, `backfill --segments 2` is no bad usage: each
    route is found complete (its checkpointed count kept), nothing read again, exit 0."""
    assert cli.run(CONFIG, "seed", "--servers", "20", "--memberships", "60").code == 0
    assert cli.run(CONFIG, "prepare", "--no-backup").code == 0
    first = cli.run(CONFIG, "backfill", "--segments", "1", "--json")
    assert first.code == 0, first.stderr
    again = cli.run(CONFIG, "backfill", "--segments", "2", "--json")
    assert again.code == 0, (again.code, again.stderr)
    for r in again.json()["routes"]:
        assert r["items_read"] == 0 and r["items_written"] == 0
        assert r["segments_resumed"] == r["segments"] == 1
