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
