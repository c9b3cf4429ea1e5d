"""SSM re-pointing and restore, alarm clones and their deletion, on in-process moto."""

from __future__ import annotations

from typing import Any

import pytest

from dualwrite.aws.clients import Clients
from dualwrite.cutover.alarms import CLONE_TAG, AlarmClone, AlarmClones
from dualwrite.cutover.functions import ApplyError, Renames, TablePair
from dualwrite.cutover.ssm import ParameterChange, SsmParameters
from tests.cutover_world import alarms_by_name, put_alarm, value

ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/"
PAIRS = [
    TablePair("orders", "orders-v2", ARN + "orders", ARN + "orders-v2"),
    TablePair("users", "people", ARN + "users", ARN + "people"),
]
RENAMES = Renames.of(PAIRS)


def seed_parameters(clients: Clients) -> None:
    ssm = clients.client("ssm")
    ssm.put_parameter(Name="/app/orders", Value="orders", Type="String", Description="d")
    ssm.put_parameter(Name="/app/users-arn", Value=ARN + "users", Type="String")
    ssm.put_parameter(Name="/app/logs", Value="orders-logs", Type="String")
    ssm.put_parameter(Name="/app/list", Value="orders,users", Type="StringList")
    ssm.put_parameter(Name="/app/secret", Value="orders", Type="SecureString")


def test_exact_string_parameters_are_repointed_and_restored(moto_clients: Clients) -> None:
    seed_parameters(moto_clients)
    ssm = SsmParameters(moto_clients.client("ssm"))
    plan = ssm.plan(RENAMES)
    assert plan == [
        ParameterChange("/app/orders", "orders", "orders-v2"),
        ParameterChange("/app/users-arn", ARN + "users", ARN + "people"),
    ]
    journaled: list[ParameterChange] = []
    assert ssm.apply(plan, on_applied=journaled.append) == plan
    assert journaled == plan
    assert value(moto_clients, "/app/orders") == "orders-v2"
    assert value(moto_clients, "/app/users-arn") == ARN + "people"
    untouched = {"/app/logs": "orders-logs", "/app/list": "orders,users"}
    assert {n: value(moto_clients, n) for n in untouched} == untouched
    described = moto_clients.client("ssm").describe_parameters()["Parameters"]
    kept = {p["Name"]: (p["Type"], p.get("Description")) for p in described}
    assert kept["/app/orders"] == ("String", "d")
    assert ssm.plan(RENAMES) == []  # nothing left to re-point

    back = ssm.restore(journaled)
    assert list(back.restored) == list(reversed(plan)) and back.notes == () and back.failed == ()
    assert value(moto_clients, "/app/orders") == "orders"
    assert value(moto_clients, "/app/users-arn") == ARN + "users"
    assert ssm.restore(journaled).restored == ()  # again: nothing to do


def test_a_parameter_changed_since_the_plan_is_skipped(moto_clients: Clients) -> None:
    seed_parameters(moto_clients)
    ssm = SsmParameters(moto_clients.client("ssm"))
    plan = ssm.plan(RENAMES)
    moto_clients.client("ssm").put_parameter(Name="/app/orders", Value="hand-made", Overwrite=True)
    assert ssm.apply(plan) == plan[1:]
    assert value(moto_clients, "/app/orders") == "hand-made"


def test_a_failure_puts_back_what_was_changed(moto_clients: Clients) -> None:
    seed_parameters(moto_clients)
    ssm = SsmParameters(moto_clients.client("ssm"))
    plan = ssm.plan(RENAMES)
    moto_clients.client("ssm").delete_parameter(Name="/app/users-arn")
    with pytest.raises(ApplyError) as info:
        ssm.apply(plan)
    assert info.value.put_back == ["/app/orders"] and info.value.stuck == []
    assert "re-pointing parameter /app/users-arn failed" in str(info.value)
    assert value(moto_clients, "/app/orders") == "orders"


def test_restore_notes_drift_and_missing_parameters(moto_clients: Clients) -> None:
    seed_parameters(moto_clients)
    ssm = SsmParameters(moto_clients.client("ssm"))
    done = ssm.apply(ssm.plan(RENAMES))
    moto_clients.client("ssm").put_parameter(Name="/app/orders", Value="edited", Overwrite=True)
    moto_clients.client("ssm").delete_parameter(Name="/app/users-arn")
    back = ssm.restore(done)
    assert [c.name for c in back.restored] == ["/app/orders"]
    assert back.notes == (
        "parameter /app/users-arn no longer exists: not restored",
        "parameter /app/orders changed since the cutover and goes back to its journaled value too",
    )
    assert value(moto_clients, "/app/orders") == "orders"


# --- alarms -------------------------------------------------------------------------------


def tags(clients: Clients, alarm: dict[str, Any]) -> dict[str, str]:
    found = clients.cloudwatch.list_tags_for_resource(ResourceARN=alarm["AlarmArn"])["Tags"]
    return {t["Key"]: t["Value"] for t in found}


def test_alarms_on_old_tables_are_cloned_once_and_deleted_on_rollback(
    moto_clients: Clients,
) -> None:
    put_alarm(moto_clients, "orders-throttles", "orders")
    put_alarm(moto_clients, "read pressure", "users")
    put_alarm(moto_clients, "unrelated", "elsewhere")
    alarms = AlarmClones(moto_clients.cloudwatch)
    result = alarms.clone(PAIRS)
    assert result.clones == (
        AlarmClone("orders-throttles", "orders-v2-throttles", created=True),
        AlarmClone("read pressure", "read pressure [people]", created=True),
    )
    now = alarms_by_name(moto_clients)
    clone = now["orders-v2-throttles"]
    assert clone["Dimensions"] == [{"Name": "TableName", "Value": "orders-v2"}]
    assert (clone["Threshold"], clone["EvaluationPeriods"], clone["AlarmActions"]) == (
        5.0,
        2,
        ["arn:aws:sns:us-east-1:123456789012:pager"],
    )
    assert tags(moto_clients, clone) == {CLONE_TAG: "orders-throttles"}
    assert set(now) == {
        "orders-throttles",
        "read pressure",
        "unrelated",
        "orders-v2-throttles",
        "read pressure [people]",
    }

    again = alarms.clone(PAIRS)  # a cutover run again: same clones, updated in place
    assert [c.name for c in again.clones] == [c.name for c in result.clones]
    assert not any(c.created for c in again.clones)
    assert len(alarms_by_name(moto_clients)) == 5

    deleted = alarms.delete(result.clones)
    assert deleted.clones == result.clones
    assert set(alarms_by_name(moto_clients)) == {"orders-throttles", "read pressure", "unrelated"}
    assert alarms.delete(result.clones).clones == ()  # already gone


def test_an_operators_alarm_is_never_overwritten_or_deleted(moto_clients: Clients) -> None:
    put_alarm(moto_clients, "orders-throttles", "orders")
    put_alarm(moto_clients, "orders-v2-throttles", "orders-v2", threshold=99)
    alarms = AlarmClones(moto_clients.cloudwatch)
    result = alarms.clone(PAIRS)
    assert result.clones == ()
    assert result.notes == (
        "alarm orders-v2-throttles exists and is not a dualwrite clone: "
        "orders-throttles not cloned",
    )
    assert alarms_by_name(moto_clients)["orders-v2-throttles"]["Threshold"] == 99.0
    mine = AlarmClone("orders-throttles", "orders-v2-throttles", created=True)
    deleted = alarms.delete([mine])
    assert deleted.clones == ()
    assert deleted.notes == ("alarm orders-v2-throttles is not a dualwrite clone: not deleted",)
    assert "orders-v2-throttles" in alarms_by_name(moto_clients)
