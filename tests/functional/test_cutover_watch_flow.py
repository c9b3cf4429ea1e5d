"""The whole cutover sequence (switch.cutover) with the watch on a fake clock, on Docker-less
moto: errors before the switch do not roll back, new errors and an alarm during the watch
do, and every change (function, SSM parameter, alarm clone) is put back and journaled."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from dualwrite.aws import tables
from dualwrite.aws.clients import AwsSettings, Clients
from dualwrite.config import parse_migration
from dualwrite.control import control_table_definition
from dualwrite.cutover.context import CutoverContext
from dualwrite.cutover.journal import Journal
from dualwrite.cutover.results import Status
from dualwrite.cutover.switch import CutoverRequest, cutover
from dualwrite.cutover.switch_guards import Observer
from dualwrite.cutover.watch import WatchProgress
from tests.cutover_world import (
    SWITCH,
    FakeClock,
    alarms_by_name,
    make_function,
    metric,
    put_alarm,
    set_state,
    value,
)
from tests.functional.test_cutover_facts import make_table
from tests.functional.test_cutover_functions import env_of

FORCED = CutoverRequest(force=True, reason="test: no reconcile here")
HEALTH = {"function": "api", "event": {"statusCode": 200}, "expect": {"statusCode": 200}}


@pytest.fixture
def clients(aws_env: None) -> Iterator[Clients]:
    from moto import mock_aws

    with mock_aws(config={"lambda": {"use_docker": False}}):
        c = Clients(AwsSettings(region="us-east-1"))
        make_table(c, "old-t")
        make_table(c, "new-t")
        tables.create_table(c.dynamodb, control_table_definition("ctl"))
        make_function(c, "api")
        c.lambda_.update_function_configuration(
            FunctionName="api", Environment={"Variables": {"TABLE": "old-t"}}
        )
        c.client("ssm").put_parameter(Name="/app/table", Value="old-t", Type="String")
        c.client("ssm").put_parameter(Name="/app/logs", Value="old-t-logs", Type="String")
        put_alarm(c, "old-t-throttles", "old-t")
        put_alarm(c, "api-errors", "elsewhere")
        yield c


def context(clients: Clients, clock: FakeClock, watch_seconds: int = 120) -> CutoverContext:
    migration = parse_migration(
        {
            "control_table": "ctl",
            "routes": [{"name": "r", "source": "old-t", "target": "new-t", "mapping": "identity"}],
            "cutover": {
                "functions": ["api"],
                "smoke_tests": [HEALTH],
                "watch_seconds": watch_seconds,
                "watch_alarms": ["api-errors"],
            },
        }
    )
    return CutoverContext.open(
        migration, clients, clock=lambda: clock.now().timestamp(), sleep=clock.sleep
    )


def untouched(clients: Clients) -> bool:
    return (
        env_of(clients, "api") == {"TABLE": "old-t"}
        and value(clients, "/app/table") == "old-t"
        and "new-t-throttles" not in alarms_by_name(clients)
    )


def test_errors_before_the_switch_do_not_roll_back(clients: Clients) -> None:
    metric(clients, "api", "Errors", -20, 4)  # inside the span before: the baseline
    clock = FakeClock()
    heard: list[WatchProgress] = []
    result = cutover(context(clients, clock), FORCED, observer=Observer(progress=heard.append))
    assert result.status is Status.DONE, result.to_json()
    data = result.to_json()
    errors = next(c for c in data["watch"]["counts"] if c["metric"] == "Errors")
    assert (errors["before"], errors["after"]) == (4, 0)
    assert heard[-1].elapsed == 120 and heard[-1].remaining == 0
    assert env_of(clients, "api") == {"TABLE": "new-t"}
    assert value(clients, "/app/table") == "new-t" and value(clients, "/app/logs") == "old-t-logs"
    assert "new-t-throttles" in alarms_by_name(clients)


def test_new_errors_during_the_watch_roll_everything_back(clients: Clients) -> None:
    metric(clients, "api", "Errors", -20, 4)
    clock = FakeClock()
    clock.at(30, lambda: metric(clients, "api", "Errors", 25, 5))
    ctx = context(clients, clock)
    result = cutover(ctx, FORCED)
    assert result.status is Status.ROLLED_BACK and result.status.exit_code == 4
    assert result.to_json()["reason"] == (
        "watch: api: Errors 5 after the switch, 4 in the same span before"
    )
    assert untouched(clients)
    assert clock.t - SWITCH < timedelta(seconds=120)  # stopped at the breach
    assert ctx.store is not None
    cut, back = Journal(ctx.store).entries()
    assert cut.error == result.to_json()["reason"] and cut.rolled_back_by == back.sk
    assert [p.name for p in back.parameters] == ["/app/table"]
    assert [c.name for c in back.alarm_clones] == ["new-t-throttles"]


def test_an_alarm_during_the_watch_rolls_back(clients: Clients) -> None:
    clock = FakeClock()
    clock.at(40, lambda: set_state(clients, "api-errors", "ALARM"))
    result = cutover(context(clients, clock), FORCED)
    assert result.status is Status.ROLLED_BACK
    assert result.to_json()["reason"] == "watch: api-errors: in ALARM"
    assert result.safeguards is not None and result.safeguards.watch is not None
    assert result.safeguards.watch.watched_seconds < 120
    assert untouched(clients)
