"""The reconcile part of infra/template.yaml, created on ministack as CloudFormation would
(see tests/ministack/stack.py): the four functions of ReconcileStateMachine from a zip of our
packages with the template's handlers, timeouts and environment, and the state machine from
infra/statemachine/reconcile.asl.yaml with its DefinitionSubstitutions replaced as text.

Not made: the EventBridge Scheduler schedule (it only starts executions with input {}; the
tests start them), roles, log groups, alarms."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from dualwrite.aws.clients import Clients
from tests.ministack.stack import (
    code_zip,
    create_functions,
    create_state_machine,
    name_functions,
    template_refs,
)
from tests.unit.test_infra_template import load_template

FUNCTIONS = (
    "ReconcilePlanFunction",
    "ReconcileSegmentFunction",
    "ReconcileCombineFunction",
    "ReconcileFinishFunction",
)


@dataclass(frozen=True)
class ReconcileStack:
    state_machine_arn: str
    functions: dict[str, str]  # logical id -> function name


def deploy_reconcile(
    clients: Clients,
    *,
    parameters: Mapping[str, str] | None = None,
    environment: Mapping[str, Mapping[str, str]] | None = None,
) -> ReconcileStack:
    template = load_template()
    refs = template_refs(template, parameters)
    name_functions(refs, FUNCTIONS)
    package = code_zip("reconciler")
    create_functions(clients, template, refs, dict.fromkeys(FUNCTIONS, package), environment)
    arn = create_state_machine(clients, template, "ReconcileStateMachine", refs, "reconcile")
    return ReconcileStack(arn, {k: refs[k] for k in FUNCTIONS})
