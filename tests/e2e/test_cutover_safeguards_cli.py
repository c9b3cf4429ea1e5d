"""The cutover's safeguards (DESIGN.md section 10) through the real `dualwrite` command on the
embedded emulator, told to answer Lambda invocations with their event (so a smoke test's
`expect` is met or not by the event it sends): references listed for each kind, refused on
a firing alarm, rolled back after a failing smoke test, after an alarm and after new errors
during the watch; a healthy cutover re-points exactly the right SSM parameters and clones the
alarms, and rollback puts both back."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from dualwrite.aws.clients import Clients
from dualwrite.control import ControlStore
from tests.conftest import Cli
from tests.cutover_world import alarms_by_name, make_function, put_alarm, set_state, value
from tests.functional.test_cutover_references_aws import build_world

pytestmark = pytest.mark.e2e

ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/"
CONTROL = "orders-control"
HEALTHY = {"function": "api", "event": {"statusCode": 200}, "expect": {"statusCode": 200}}


def migration(tmp: Path, **cutover: Any) -> Path:
    data = {
        "control_table": CONTROL,
        "routes": [
            {"name": "orders", "source": "orders", "target": "orders-v2", "mapping": "identity"}
        ],
        "cutover": {"functions": ["api"], **cutover},
    }
    path = tmp / f"orders-{len(list(tmp.iterdir()))}.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def orders_world(emulator: str, clients: Clients, *, extras: bool = True) -> None:
    told = requests.post(
        f"{emulator}/moto-api/config", json={"lambda": {"use_docker": False}}, timeout=10
    )
    assert told.status_code == 201
    clients.dynamodb.create_table(
        TableName="orders",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    for i in range(5):
        clients.dynamodb.put_item(TableName="orders", Item={"id": {"S": f"o{i}"}})
    make_function(clients, "api")
    clients.lambda_.update_function_configuration(
        FunctionName="api", Environment={"Variables": {"TABLE": "orders", "LOGS": "orders-logs"}}
    )
    if not extras:
        return
    ssm = clients.client("ssm")
    ssm.put_parameter(Name="/app/table", Value="orders", Type="String")
    ssm.put_parameter(Name="/app/table-arn", Value=ARN + "orders", Type="String")
    ssm.put_parameter(Name="/app/logs", Value="orders-logs", Type="String")  # merely contains
    ssm.put_parameter(Name="/app/tables", Value="orders,users", Type="StringList")
    put_alarm(clients, "orders-throttles", "orders")
    put_alarm(clients, "api-errors", "elsewhere")


def ready(cli: Cli, config: Path) -> None:
    """prepare, backfill, reconcile: the gate passes."""
    for step in (["prepare", "--no-backup"], ["backfill"], ["reconcile"]):
        done = cli.run(config, *step, "--json")
        assert done.code == 0, (step, done.stderr)


def env(clients: Clients) -> dict[str, str]:
    config = clients.lambda_.get_function_configuration(FunctionName="api")
    return dict(config["Environment"]["Variables"])


def parameters(clients: Clients) -> dict[str, str]:
    return {n: value(clients, n) for n in ("/app/table", "/app/table-arn", "/app/logs")}


ORIGINAL = {"/app/table": "orders", "/app/table-arn": ARN + "orders", "/app/logs": "orders-logs"}
CUT = {"/app/table": "orders-v2", "/app/table-arn": ARN + "orders-v2", "/app/logs": "orders-logs"}


def assert_untouched(clients: Clients) -> None:
    assert env(clients) == {"TABLE": "orders", "LOGS": "orders-logs"}
    assert parameters(clients) == ORIGINAL
    assert "orders-v2-throttles" not in alarms_by_name(clients)


def journal(clients: Clients) -> list[dict[str, Any]]:
    return [r.data for r in ControlStore(clients.dynamodb, CONTROL).query("CUTOVER")]


@pytest.fixture
def world(emulator: str, emulator_clients: Clients) -> Clients:
    orders_world(emulator, emulator_clients)
    return emulator_clients


def test_references_of_each_kind_in_plan_and_dry_run(
    cli: Cli, emulator: str, emulator_clients: Clients, tmp_path: Path
) -> None:
    world = emulator_clients
    orders_world(emulator, world, extras=False)
    build_world(world)  # one of each kind on "orders", and look-alikes that name no old table
    config = migration(tmp_path)
    planned = cli.run(config, "plan", "--json")
    assert planned.code == 0, planned.stderr
    refs = planned.json()["references"]
    assert all(set(r) == {"kind", "name", "detail"} for r in refs)
    assert sorted({r["kind"] for r in refs}) == sorted(
        {
            "cloudwatch_alarm",
            "cloudwatch_dashboard",
            "ssm_parameter",
            "step_functions_state_machine",
            "ecs_task_definition",
            "eventbridge_pipe",
        }
    )
    names = {(r["kind"], r["name"]) for r in refs}
    assert ("ssm_parameter", "/app/table") in names and ("ssm_parameter", "/app/logs") not in names
    assert ("cloudwatch_alarm", "archive-throttles") not in names  # orders-archive: another table
    assert ("eventbridge_pipe", "orders-feed") in names and (
        "eventbridge_pipe",
        "unrelated",
    ) not in names
    assert planned.json()["references_skipped"] == []
    assert "estimate" in planned.json()["routes"][0]  # the plan's other keys stay

    dry = cli.run(config, "cutover", "--dry-run", "--json")
    assert dry.code == 0, dry.stderr
    assert dry.json()["references"] == refs
    assert [p["name"] for p in dry.json()["parameters"]] == ["/app/table", "/filler/last"]
    human = cli.run(config, "plan")
    assert "Other places that name an old table" in human.stdout
    assert "orders-feed" in human.stdout and "ecs_task_definition" in human.stdout
    dry_human = cli.run(config, "cutover", "--dry-run")
    assert "Other places that name an old table" in dry_human.stdout
    assert "SSM parameters cutover would re-point" in dry_human.stdout
    assert value(world, "/app/table") == "orders"


def test_bad_safeguards_are_bad_configuration_and_a_firing_alarm_refuses(
    cli: Cli, world: Clients, tmp_path: Path
) -> None:
    ghost = migration(tmp_path, smoke_tests=[{"function": "ghost", "event": {}}])
    bad = cli.run(ghost, "cutover", "--dry-run")
    assert bad.code == 2 and "cutover.smoke_tests[0].function: function ghost does not exist" in (
        bad.stderr
    )
    missing = cli.run(migration(tmp_path, watch_alarms=["nope"]), "cutover", "--json")
    assert missing.code == 2 and "cutover.watch_alarms[0]: alarm nope does not exist" in (
        missing.stderr
    )

    config = migration(tmp_path, smoke_tests=[HEALTHY], watch_alarms=["api-errors"])
    ready(cli, config)
    set_state(world, "api-errors", "ALARM")
    refused = cli.run(config, "cutover", "--json")
    assert refused.code == 4, refused.stderr
    data = refused.json()
    assert data["status"] == "refused" and data["refused"] is True
    assert data["gate"]["reasons"] == [
        "alarm api-errors: already in ALARM (watched by cutover.watch_alarms)"
    ]
    assert_untouched(world)
    assert journal(world) == []


def test_a_failing_smoke_test_rolls_everything_back(
    cli: Cli, world: Clients, tmp_path: Path
) -> None:
    failing = {**HEALTHY, "event": {"statusCode": 502}}
    config = migration(tmp_path, smoke_tests=[failing], watch_seconds=60)
    ready(cli, config)
    result = cli.run(config, "cutover", "--json")
    assert result.code == 4, result.stderr
    data = result.json()
    assert data["status"] == "rolled_back" and data["rolled_back"] is True
    reason = "smoke test of api failed: expect not met: statusCode: expected 200, got 502"
    assert data["reason"] == reason and reason in result.stderr
    assert data["watch"] is None  # no watch after a failed smoke test
    assert [p["name"] for p in data["parameters"]] == ["/app/table", "/app/table-arn"]
    assert data["undone"]["parameters"] == data["parameters"][::-1]  # newest first
    assert [c["name"] for c in data["undone"]["alarm_clones"]] == ["orders-v2-throttles"]
    assert_untouched(world)
    cut, back = journal(world)
    assert (cut["action"], cut["error"], cut["rolled_back_by"]) == (
        "cutover",
        reason,
        back["at_iso"] + "#rollback",
    )
    assert [p["name"] for p in cut["parameters"]] == ["/app/table", "/app/table-arn"]
    assert [c["name"] for c in cut["alarm_clones"]] == ["orders-v2-throttles"]
    assert back["action"] == "rollback" and back["parameters"] == cut["parameters"][::-1]

    human = cli.run(config, "cutover")  # the same, for people
    assert human.code == 4
    assert f"cutover rolled back: {reason}" in human.stderr
    assert "smoke test api: FAILED" in human.stderr
    assert "Smoke tests" in human.stdout and "FAILED" in human.stdout
    assert "put back: 1 function(s), 2 SSM parameter(s), 1 alarm clone(s) deleted" in (human.stderr)
    assert_untouched(world)


def test_a_healthy_cutover_then_rollback(cli: Cli, world: Clients, tmp_path: Path) -> None:
    config = migration(
        tmp_path, smoke_tests=[HEALTHY], watch_seconds=2, watch_alarms=["api-errors"]
    )
    ready(cli, config)
    done = cli.run(config, "cutover", "--json")
    assert done.code == 0, done.stderr
    data = done.json()
    assert data["status"] == "done" and data["cut_over"] is True
    assert env(world) == {"TABLE": "orders-v2", "LOGS": "orders-logs"}
    assert parameters(world) == CUT
    assert value(world, "/app/tables") == "orders,users"  # a StringList is never re-pointed
    clone = alarms_by_name(world)["orders-v2-throttles"]
    assert clone["Dimensions"] == [{"Name": "TableName", "Value": "orders-v2"}]
    assert alarms_by_name(world)["orders-throttles"]["Dimensions"][0]["Value"] == "orders"
    assert data["smoke_tests"][0]["passed"] is True
    assert data["watch"]["ok"] is True and data["watch"]["checks"] >= 2
    assert [c["source"] for c in data["alarm_clones"]] == ["orders-throttles"]
    assert "watching" in done.stderr

    rolled = cli.run(config, "rollback", "--json")
    assert rolled.code == 0, rolled.stderr
    back = rolled.json()
    assert back["status"] == "done" and back["rolled_back"] is True
    assert sorted(p["name"] for p in back["parameters"]) == ["/app/table", "/app/table-arn"]
    assert [c["name"] for c in back["alarm_clones"]] == ["orders-v2-throttles"]
    assert back["not_put_back"] == []
    assert_untouched(world)
    again = cli.run(config, "rollback", "--json")
    assert again.code == 0 and again.json()["already_rolled_back"] is True

    human = cli.run(config, "cutover")  # the same, for people
    assert human.code == 0, human.stderr
    for shown in ("SSM parameters re-pointed", "cloned as orders-v2-throttles", "Smoke tests"):
        assert shown in human.stdout
    assert "watch: no new errors or throttles" in human.stdout
    assert "smoke test api: passed" in human.stderr and "watching" in human.stderr
    human_back = cli.run(config, "rollback")
    assert human_back.code == 0, human_back.stderr
    assert "2 SSM parameter(s) restored, 1 alarm clone(s) deleted" in human_back.stdout
    assert_untouched(world)


def watched_run(cli: Cli, config: Path, breach: Any) -> dict[str, Any]:
    """Run cutover, and once it says it is watching (after the switch), cause a breach."""
    proc = cli.start(config, "cutover", "--json")
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:  # blocks until the line is written: no sleep
        seen.append(line)
        if line.startswith("watching"):
            breach()
            break
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 4, "".join(seen) + err
    data: dict[str, Any] = json.loads(out)
    return data


def test_an_alarm_during_the_watch_rolls_back(cli: Cli, world: Clients, tmp_path: Path) -> None:
    config = migration(
        tmp_path, smoke_tests=[HEALTHY], watch_seconds=120, watch_alarms=["api-errors"]
    )
    ready(cli, config)
    data = watched_run(cli, config, lambda: set_state(world, "api-errors", "ALARM"))
    assert data["status"] == "rolled_back"
    assert data["reason"] == "watch: api-errors: in ALARM"
    assert data["watch"]["watched_seconds"] < 120  # stopped at the breach
    assert_untouched(world)


def test_new_errors_during_the_watch_roll_back(cli: Cli, world: Clients, tmp_path: Path) -> None:
    config = migration(tmp_path, smoke_tests=[HEALTHY], watch_seconds=120)
    ready(cli, config)

    def errors() -> None:
        world.cloudwatch.put_metric_data(
            Namespace="AWS/Lambda",
            MetricData=[
                {
                    "MetricName": "Errors",
                    "Dimensions": [{"Name": "FunctionName", "Value": "api"}],
                    "Timestamp": datetime.now(UTC),
                    "Value": 3,
                    "Unit": "Count",
                }
            ],
        )

    data = watched_run(cli, config, errors)
    assert data["status"] == "rolled_back"
    assert data["reason"] == "watch: api: Errors 3 after the switch, 0 in the same span before"
    assert_untouched(world)
