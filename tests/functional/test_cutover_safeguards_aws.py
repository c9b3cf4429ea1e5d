"""The three calls the cutover flow makes around the switch, on Docker-less moto: precheck,
after_switch (parameters, clones, smoke tests, watch) and undo."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from dualwrite.aws.clients import AwsSettings, Clients
from dualwrite.config import Cutover, SmokeTest
from dualwrite.cutover.alarms import AlarmClone
from dualwrite.cutover.functions import TablePair
from dualwrite.cutover.safeguards import AfterSwitch, Journaling, after_switch, precheck, undo
from dualwrite.cutover.ssm import ParameterChange
from dualwrite.errors import ConfigError
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

ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/"
PAIRS = [TablePair("orders", "orders-v2", ARN + "orders", ARN + "orders-v2")]
HEALTH = SmokeTest(function="api", event={"statusCode": 200}, expect={"statusCode": 200})


@pytest.fixture
def world(aws_env: None) -> Iterator[Clients]:
    from moto import mock_aws

    with mock_aws(config={"lambda": {"use_docker": False}}):
        clients = Clients(AwsSettings(region="us-east-1"))
        make_function(clients, "api")
        make_function(clients, "batch")
        ssm = clients.client("ssm")
        ssm.put_parameter(Name="/app/table", Value="orders", Type="String")
        ssm.put_parameter(Name="/app/log-group", Value="orders-logs", Type="String")
        put_alarm(clients, "orders-throttles", "orders")
        put_alarm(clients, "api-errors", "elsewhere")
        yield clients


def cutover(**kw: object) -> Cutover:
    return Cutover.model_validate({"smoke_tests": [HEALTH.model_dump()], **kw})


def test_precheck_refuses_bad_configuration_and_firing_alarms(world: Clients) -> None:
    with pytest.raises(ConfigError, match=r"smoke_tests\[0\].function: function api is not"):
        precheck(cutover(), world, PAIRS, {"batch"})
    bad = cutover(smoke_tests=[{"function": "ghost", "event": {}}])
    with pytest.raises(ConfigError, match="function ghost does not exist"):
        precheck(bad, world, PAIRS, {"api"})
    with pytest.raises(ConfigError, match=r"^cutover.watch_alarms\[0\]: alarm nope does not"):
        precheck(cutover(watch_alarms=["nope"]), world, PAIRS, {"api"})
    calm = precheck(cutover(watch_alarms=["api-errors"]), world, PAIRS, {"api"})
    assert calm.refusals == ()
    assert calm.parameters == (ParameterChange("/app/table", "orders", "orders-v2"),)
    set_state(world, "api-errors", "ALARM")
    firing = precheck(cutover(watch_alarms=["api-errors"]), world, PAIRS, {"api"})
    assert firing.refusals == (
        "alarm api-errors: already in ALARM (watched by cutover.watch_alarms)",
    )
    assert value(world, "/app/table") == "orders"  # a precheck changes nothing


def run(world: Clients, config: Cutover, clock: FakeClock, heard: list[object]) -> AfterSwitch:
    plan = precheck(config, world, PAIRS, {"api"})
    return after_switch(
        config,
        world,
        PAIRS,
        plan.parameters,
        {"api"},
        SWITCH,
        now=clock.now,
        sleep=clock.sleep,
        journal=Journaling(parameter=heard.append, clone=heard.append, smoke=heard.append),
    )


def test_a_healthy_switch_then_undo(world: Clients) -> None:
    metric(world, "api", "Errors", -20, 4)  # before the switch: no rollback for these
    heard: list[object] = []
    config = cutover(watch_seconds=60, watch_alarms=["api-errors"])
    done = run(world, config, FakeClock(), heard)
    assert done.failure is None
    assert value(world, "/app/table") == "orders-v2"
    assert value(world, "/app/log-group") == "orders-logs"
    assert "orders-v2-throttles" in alarms_by_name(world)
    assert done.watch is not None and done.watch.checks == 3
    change = ParameterChange("/app/table", "orders", "orders-v2")
    clone = AlarmClone("orders-throttles", "orders-v2-throttles", True)
    assert heard[:2] == [change, clone] and len(heard) == 3
    json_out = done.to_json()
    assert json_out["parameters"] == [change.to_json()]
    assert json_out["smoke_tests"][0]["passed"] is True

    back = undo(world, [change], [clone])
    assert (back.parameters, back.clones, back.failed) == ((change,), (clone,), ())
    assert value(world, "/app/table") == "orders"
    assert "orders-v2-throttles" not in alarms_by_name(world)
    assert undo(world, [change], [clone]).to_json()["parameters"] == []


def test_a_failing_smoke_test_skips_the_watch(world: Clients) -> None:
    config = cutover(
        smoke_tests=[
            {"function": "api", "event": {"statusCode": 502}, "expect": {"statusCode": 200}}
        ],
        watch_seconds=600,
    )
    clock = FakeClock()
    done = run(world, config, clock, [])
    assert done.failure == (
        "smoke test of api failed: expect not met: statusCode: expected 200, got 502"
    )
    assert done.watch is None and clock.slept == []


def test_new_errors_during_the_watch_fail_it(world: Clients) -> None:
    clock = FakeClock()
    clock.at(30, lambda: metric(world, "api", "Errors", 25))
    done = run(world, cutover(watch_seconds=120), clock, [])
    assert done.failure == ("watch: api: Errors 1 after the switch, 0 in the same span before")
    assert clock.t - SWITCH == timedelta(seconds=30)


def test_a_step_that_fails_becomes_the_failure_with_nothing_left_half_done(
    world: Clients,
) -> None:
    ssm = world.client("ssm")
    ssm.put_parameter(Name="/app/table-arn", Value=ARN + "orders", Type="String")
    config = cutover(watch_seconds=60)
    plan = precheck(config, world, PAIRS, {"api"})
    assert [p.name for p in plan.parameters] == ["/app/table", "/app/table-arn"]
    ssm.delete_parameter(Name="/app/table-arn")  # gone between the dry run and the switch
    clock = FakeClock()
    done = after_switch(
        config, world, PAIRS, plan.parameters, {"api"}, SWITCH, now=clock.now, sleep=clock.sleep
    )
    assert done.failure is not None
    assert done.failure.startswith(
        "re-pointing SSM parameters failed: re-pointing parameter /app/table-arn failed"
    )
    assert done.parameters == () and done.clones == () and done.smoke == ()
    assert value(world, "/app/table") == "orders"  # put back by the all-or-nothing apply
    assert "orders-v2-throttles" not in alarms_by_name(world)
    assert done.to_json()["failure"] == done.failure
