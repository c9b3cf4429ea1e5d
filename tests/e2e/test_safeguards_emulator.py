"""The cutover's safeguards against the embedded emulator, the moto server the CLI talks to:
told over HTTP (POST /moto-api/config) to answer invocations with their event, as the issue's
"Running it locally" says. The CLI wiring drives the same three calls."""

from __future__ import annotations

import requests

from dualwrite.aws.clients import Clients
from dualwrite.config import Cutover
from dualwrite.cutover.functions import TablePair
from dualwrite.cutover.references import SSM_PARAMETER, discover_references
from dualwrite.cutover.safeguards import after_switch, precheck, undo
from tests.cutover_world import (
    SWITCH,
    FakeClock,
    alarms_by_name,
    make_function,
    metric,
    put_alarm,
    value,
)

ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/"
PAIRS = [TablePair("orders", "orders-v2", ARN + "orders", ARN + "orders-v2")]


def test_safeguards_on_the_embedded_emulator(emulator: str, emulator_clients: Clients) -> None:
    told = requests.post(
        f"{emulator}/moto-api/config", json={"lambda": {"use_docker": False}}, timeout=10
    )
    assert told.status_code == 201
    clients = emulator_clients
    make_function(clients, "api")
    clients.client("ssm").put_parameter(Name="/app/table", Value="orders", Type="String")
    clients.client("ssm").put_parameter(Name="/app/logs", Value="orders-logs", Type="String")
    put_alarm(clients, "orders-throttles", "orders")
    put_alarm(clients, "api-errors", "elsewhere")
    found = discover_references(clients, PAIRS)
    assert found.skipped == ()
    # "orders-logs" names another table, not orders
    assert [(r.kind, r.name) for r in found.references] == [
        ("cloudwatch_alarm", "orders-throttles"),
        (SSM_PARAMETER, "/app/table"),
    ]

    config = Cutover.model_validate(
        {
            "smoke_tests": [
                {"function": "api", "event": {"statusCode": 200}, "expect": {"statusCode": 200}}
            ],
            "watch_seconds": 60,
            "watch_alarms": ["api-errors"],
        }
    )
    checked = precheck(config, clients, PAIRS, {"api"})
    assert checked.refusals == () and [p.name for p in checked.parameters] == ["/app/table"]
    metric(clients, "api", "Errors", -10, 2)  # before the switch
    clock = FakeClock()
    done = after_switch(
        config,
        clients,
        PAIRS,
        checked.parameters,
        {"api"},
        SWITCH,
        now=clock.now,
        sleep=clock.sleep,
    )
    assert done.failure is None, done.failure
    assert value(clients, "/app/table") == "orders-v2" and value(clients, "/app/logs") == (
        "orders-logs"
    )
    assert "orders-v2-throttles" in alarms_by_name(clients)

    back = undo(clients, done.parameters, done.clones)
    assert back.failed == ()
    assert value(clients, "/app/table") == "orders"
    assert "orders-v2-throttles" not in alarms_by_name(clients)

    failing = config.model_copy(
        update={"smoke_tests": [config.smoke_tests[0].model_copy(update={"event": {}})]}
    )
    bad = after_switch(
        failing,
        clients,
        PAIRS,
        checked.parameters,
        {"api"},
        SWITCH,
        now=clock.now,
        sleep=clock.sleep,
    )
    assert bad.failure == "smoke test of api failed: expect not met: statusCode: missing"
    undo(clients, bad.parameters, bad.clones)
    assert value(clients, "/app/table") == "orders"
