"""seed, plan, prepare and bad input through the real `dualwrite` command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dualwrite.aws.clients import Clients
from dualwrite.emulator import free_port
from tests.conftest import MIGRATIONS, ROOT, Cli

CORE = MIGRATIONS / "coretable.yaml"


def one_line_error(stderr: str) -> str:
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def test_seed_plan_prepare_then_nothing_to_change(cli: Cli, emulator_clients: Clients) -> None:
    seeded = cli.run(CORE, "seed", "--servers", "40", "--memberships", "120", "--json")
    assert seeded.code == 0, seeded.stderr
    assert seeded.json()["servers"] == 40 and seeded.json()["memberships"] == 120
    ddb = emulator_clients.dynamodb
    assert ddb.scan(TableName="ServersTable", Select="COUNT")["Count"] == 40

    plan = cli.run(CORE, "plan", "--json")
    assert plan.code == 0, plan.stderr
    assert plan.json()["changes"] > 0
    assert "CoreTable" not in ddb.list_tables()["TableNames"]  # plan changes nothing

    first = cli.run(CORE, "prepare")
    assert first.code == 0, first.stderr
    assert "CoreTable" in first.stdout
    tables = ddb.list_tables()["TableNames"]
    assert {"CoreTable", "dualwrite-control"} <= set(tables)

    second = cli.run(CORE, "prepare", "--json")
    assert second.code == 0
    assert second.json()["changed"] is False and second.json()["actions"] == []
    human = cli.run(CORE, "prepare")
    assert "nothing to change" in human.stdout
    assert cli.run(CORE, "plan", "--json").json()["changes"] == 0


def test_prepare_after_prepare_no_backup_takes_the_backup(
    cli: Cli, emulator_clients: Clients
) -> None:
    """DESIGN.md section 4: prepare takes "an on-demand backup of each source" and is
    idempotent. After `prepare --no-backup` a plain `prepare` takes (and says) the backup
    of each source, though nothing else changes; a third run takes no second one."""
    assert cli.run(CORE, "seed", "--servers", "20", "--memberships", "60").code == 0
    assert cli.run(CORE, "prepare", "--no-backup").code == 0
    ddb = emulator_clients.dynamodb
    assert ddb.list_backups()["BackupSummaries"] == []
    again = cli.run(CORE, "prepare", "--json")
    assert again.code == 0, again.stderr
    done = {(a["table"], a["action"]) for a in again.json()["actions"]}
    assert done == {
        ("ServersTable", "on-demand backup"),
        ("UserMembershipTable", "on-demand backup"),
    }
    backups = ddb.list_backups()["BackupSummaries"]
    assert sorted(b["TableName"] for b in backups) == ["ServersTable", "UserMembershipTable"]
    third = cli.run(CORE, "prepare")
    assert third.code == 0 and "nothing to change" in third.stdout
    assert len(ddb.list_backups()["BackupSummaries"]) == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("routes: [\n", "not valid YAML"),
        ("routes: []\n", "routes:"),
        (
            "routes:\n  - {name: a, source: Abc, target: Xyz, mapping: identity, speed: 3}\n",
            "routes[0].speed: unknown key",
        ),
        (
            "control_table: xyz\nroutes:\n"
            "  - {name: a, source: Abc, target: Xyz, mapping: teleport}\n",
            "unknown mapping 'teleport'",
        ),
    ],
)
def test_bad_migration_files_exit_2_with_one_line(
    cli: Cli, tmp_path: Path, text: str, expected: str
) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(text)
    result = cli.run(path, "plan")
    assert result.code == 2
    assert expected in one_line_error(result.stderr)


def test_missing_file_and_missing_tables_exit_2(cli: Cli, tmp_path: Path) -> None:
    result = cli.run(tmp_path / "absent.yaml", "prepare")
    assert result.code == 2 and "not found" in one_line_error(result.stderr)
    result = cli.run(CORE, "prepare")
    assert result.code == 2
    assert "source table ServersTable does not exist" in one_line_error(result.stderr)


def test_wrong_stream_view_exits_2_before_writing(cli: Cli, emulator_clients: Clients) -> None:
    assert cli.run(CORE, "seed", "--servers", "3", "--memberships", "3").code == 0
    emulator_clients.dynamodb.update_table(
        TableName="ServersTable",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
    )
    result = cli.run(CORE, "prepare")
    assert result.code == 2
    assert "NEW_IMAGE" in one_line_error(result.stderr)
    assert "CoreTable" not in emulator_clients.dynamodb.list_tables()["TableNames"]


def test_unreachable_endpoint_exits_1_with_one_line() -> None:
    dead = Cli(f"http://127.0.0.1:{free_port()}")
    result = dead.run(CORE, "plan")
    assert result.code == 1
    assert "cannot reach" in one_line_error(result.stderr)


def test_bad_usage_exits_2() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "dualwrite", "seed", "--servers", "x", "--memberships", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_local_prints_its_endpoint_and_serves() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "dualwrite", "local", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}" in first
        check = Cli(f"http://127.0.0.1:{port}").run(
            CORE, "seed", "--servers", "2", "--memberships", "2", "--json"
        )
        assert check.code == 0 and check.json()["servers"] == 2
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_unreadable_file_bad_endpoint_and_bad_port_exit_2_with_one_line(
    cli: Cli, tmp_path: Path
) -> None:
    binary = tmp_path / "m.yaml"
    binary.write_bytes(b"\xff\xfe control_table")
    result = cli.run(binary, "plan")
    assert result.code == 2 and "not UTF-8" in one_line_error(result.stderr)
    result = Cli("not-a-url").run(CORE, "plan")
    assert result.code == 2 and "--endpoint-url 'not-a-url'" in one_line_error(result.stderr)
    result = cli.run(None, "local", "--port", "99999")
    assert result.code == 2 and "Traceback" not in result.stderr and "--port" in result.stderr


def test_seed_refuses_a_migration_file_whose_tables_it_does_not_fill(
    cli: Cli, emulator_clients: Clients
) -> None:
    """seed fills ServersTable and UserMembershipTable: with another migration's file it
    would overwrite tables that file knows nothing of."""
    result = cli.run(
        MIGRATIONS / "stripe-rename.yaml", "seed", "--servers", "2", "--memberships", "2"
    )
    assert result.code == 2 and "migrates neither" in one_line_error(result.stderr)
    assert "ServersTable" not in emulator_clients.dynamodb.list_tables()["TableNames"]


def test_a_custom_mapping_module_is_imported_from_where_dualwrite_runs(
    cli: Cli, tmp_path: Path
) -> None:
    """`mapping: my_mappings.copy:Copy` names a module in the directory dualwrite runs from.
    `python -P` runs dualwrite the way the installed script does (nothing prepended to
    sys.path): it said "cannot import my_mappings" (exit 2)."""
    assert cli.run(None, "seed", "--servers", "3", "--memberships", "0").code == 0
    (tmp_path / "my_mappings").mkdir()
    (tmp_path / "my_mappings" / "copy.py").write_text(
        "from dualwrite.mapping.identity import IdentityMapping\n\n\n"
        "class Copy(IdentityMapping):\n    pass\n"
    )
    config = tmp_path / "dualwrite.yaml"
    config.write_text(
        "control_table: custom-control\nroutes:\n"
        "  - {name: copy, source: ServersTable, target: ServersCopy,"
        " mapping: 'my_mappings.copy:Copy'}\n"
    )
    proc = subprocess.run(
        [sys.executable, "-P", "-m", "dualwrite", "--endpoint-url", cli.endpoint, "preview"],
        cwd=tmp_path,
        env=cli.env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "my_mappings.copy:Copy" in proc.stdout
