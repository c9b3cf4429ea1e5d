"""Reference discovery reads item by item: one function, alias, dashboard, state machine,
task definition or pipe it cannot read (AccessDenied under IAM scoped to the application's
resources, or deleted since it was listed) is skipped alone, named in `skipped`, and the
kind's other items still count (the whole kind was dropped, hiding, say, a writer left on
the old table). And a weighted alias (CodeDeploy's canary) that still sends a share of its
traffic to an old published version is a reference."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from dualwrite.aws.clients import Clients
from dualwrite.cutover.references import DASHBOARD, LAMBDA_FUNCTION, ReferenceScanner
from tests.cutover_world import make_function
from tests.functional.test_cutover_references_aws import OLD, Swapped


def function(clients: Clients, name: str, table: str) -> None:
    make_function(clients, name)
    clients.lambda_.update_function_configuration(
        FunctionName=name, Environment={"Variables": {"TABLE": table}}
    )


def test_a_weighted_alias_sending_traffic_to_an_old_version_is_listed(
    moto_clients: Clients,
) -> None:
    lam = moto_clients.lambda_
    function(moto_clients, "api", "orders")
    v1 = lam.publish_version(FunctionName="api")["Version"]
    lam.update_function_configuration(
        FunctionName="api", Environment={"Variables": {"TABLE": "orders-v2"}}
    )
    v2 = lam.publish_version(FunctionName="api")["Version"]
    lam.create_alias(
        FunctionName="api",
        Name="live",
        FunctionVersion=v2,
        RoutingConfig={"AdditionalVersionWeights": {v1: 0.1}},
    )
    (ref,) = ReferenceScanner(moto_clients, frozenset({"api"})).functions(OLD)
    assert (ref.kind, ref.name) == (LAMBDA_FUNCTION, "api:live")
    assert f"published version {v1} (10% of its traffic)" in ref.detail


@dataclass
class Denied:
    """A client whose `operation` is refused for the items `names` (by `field`)."""

    real: Any
    operation: str
    field: str
    names: frozenset[str]

    def __getattr__(self, name: str) -> Any:
        call = getattr(self.real, name)
        if name != self.operation:
            return call

        def denied(**kw: Any) -> Any:
            if kw[self.field] in self.names:
                raise ClientError(
                    {"Error": {"Code": "AccessDeniedException", "Message": "not allowed"}},
                    name,
                )
            return call(**kw)

        return denied


def denying(operation: str, field: str, *names: str) -> Callable[[Any], Denied]:
    return lambda real: Denied(real, operation, field, frozenset(names))


def test_one_unreadable_alias_does_not_hide_the_other_functions(moto_clients: Clients) -> None:
    function(moto_clients, "writer", "orders")
    function(moto_clients, "zz-platform", "other")
    v = moto_clients.lambda_.publish_version(FunctionName="zz-platform")["Version"]
    moto_clients.lambda_.create_alias(FunctionName="zz-platform", Name="live", FunctionVersion=v)
    clients = Swapped(
        moto_clients,
        "lambda",
        denying("get_function_configuration", "FunctionName", "zz-platform"),
    )
    found = ReferenceScanner(clients).discover(OLD)
    assert [(r.kind, r.name) for r in found.references] == [(LAMBDA_FUNCTION, "writer")]
    (skipped,) = found.skipped
    assert skipped.kind == LAMBDA_FUNCTION
    assert skipped.reason.startswith(f"GetFunctionConfiguration zz-platform:{v}: AccessDenied")


def test_a_function_whose_aliases_cannot_be_listed_is_skipped_alone(
    moto_clients: Clients,
) -> None:
    function(moto_clients, "aa-denied", "other")
    function(moto_clients, "writer", "orders")
    clients = Swapped(moto_clients, "lambda", denying("list_aliases", "FunctionName", "aa-denied"))
    found = ReferenceScanner(clients).discover(OLD)
    assert [(r.kind, r.name) for r in found.references] == [(LAMBDA_FUNCTION, "writer")]
    assert [s.reason.split(":")[0] for s in found.skipped] == ["ListAliases aa-denied"]


def test_one_unreadable_dashboard_does_not_hide_the_others(moto_clients: Clients) -> None:
    widget = {
        "type": "metric",
        "properties": {"metrics": [["AWS/DynamoDB", "X", "TableName", "orders"]]},
    }
    for name in ("a-secret", "ops"):
        moto_clients.cloudwatch.put_dashboard(
            DashboardName=name, DashboardBody=json.dumps({"widgets": [widget]})
        )
    clients = Swapped(
        moto_clients, "cloudwatch", denying("get_dashboard", "DashboardName", "a-secret")
    )
    found = ReferenceScanner(clients).discover(OLD)
    assert [(r.kind, r.name) for r in found.references] == [(DASHBOARD, "ops")]
    assert [(s.kind, s.reason.split(":")[0]) for s in found.skipped] == [
        (DASHBOARD, "GetDashboard a-secret")
    ]
