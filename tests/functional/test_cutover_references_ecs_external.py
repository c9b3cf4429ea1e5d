"""Reference discovery of ECS services with an EXTERNAL deployment controller: DescribeServices
gives no taskDefinition for one without a primary task set (the revisions are in its task
sets). It crashed plan and cutover --dry-run with a KeyError."""

from __future__ import annotations

from typing import Any

from dualwrite.aws.clients import Clients
from dualwrite.cutover.references import TASK_DEFINITION, ReferenceScanner
from tests.functional.test_cutover_references_aws import OLD, Swapped


class ExternalServiceEcs:
    """moto's ECS, plus one service with deploymentController EXTERNAL and no primary task
    set: AWS then returns no `taskDefinition` field for it (the task set fields are null)."""

    def __init__(self, real: Any) -> None:
        self.real = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def describe_services(self, **kw: Any) -> Any:
        response = self.real.describe_services(**kw)
        response["services"].append(
            {
                "serviceArn": "arn:aws:ecs:us-east-1:123456789012:service/c/ext",
                "serviceName": "ext",
                "status": "ACTIVE",
                "deploymentController": {"type": "EXTERNAL"},
                "taskSets": [],
            }
        )
        return response


def _service_on_old_revision(clients: Clients) -> None:
    ecs = clients.client("ecs")
    ecs.create_cluster(clusterName="c")
    for table in ("orders", "orders-v2"):
        ecs.register_task_definition(
            family="worker",
            containerDefinitions=[
                {
                    "name": "w",
                    "image": "x",
                    "memory": 128,
                    "environment": [{"name": "TABLE", "value": table}],
                }
            ],
        )
    ecs.create_service(cluster="c", serviceName="worker", taskDefinition="worker:1", desiredCount=0)


def test_an_external_deployment_service_does_not_crash_discovery(moto_clients: Clients) -> None:
    """DescribeServices of a service with deploymentController EXTERNAL (no primary task set
    yet) has no `taskDefinition`: `svc["taskDefinition"]` raises KeyError, which `discover`
    does not catch, so `plan` / `cutover --dry-run` die with a traceback (exit 1) instead of
    listing references (and the worker still on revision 1, naming orders, is never shown)."""
    _service_on_old_revision(moto_clients)
    found = ReferenceScanner(Swapped(moto_clients, "ecs", ExternalServiceEcs)).discover(OLD)
    assert [(r.kind, r.name) for r in found.references if r.kind == TASK_DEFINITION] == [
        (TASK_DEFINITION, "worker:1")
    ]


# --- 3. one unreadable function throws away every Lambda reference -----------------------
