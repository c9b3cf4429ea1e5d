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
    ACCOUNT,
    REGION,
    ROLE,
    STACK,
    code_zip,
    resolve,
    state_machine_definition,
)
from tests.unit.test_infra_template import INFRA, load_template

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
    resources = template["Resources"]
    refs: dict[str, str] = {
        name: str(p["Default"]) for name, p in template["Parameters"].items() if "Default" in p
    }
    refs.update({"AWS::Partition": "aws", "AWS::Region": REGION, "AWS::AccountId": ACCOUNT})
    refs["AWS::StackName"] = STACK
    refs.update(parameters or {})
    for logical in FUNCTIONS:
        name = f"{STACK}-{logical}"
        refs[logical] = name
        refs[f"{logical}.Arn"] = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
    lam = clients.lambda_
    globals_ = template["Globals"]["Function"]
    package = code_zip("reconciler")
    for logical in FUNCTIONS:
        props = resources[logical]["Properties"]
        variables = {
            **resolve(globals_["Environment"]["Variables"], refs),
            **resolve(props.get("Environment", {}).get("Variables", {}), refs),
            **(environment or {}).get(logical, {}),
        }
        lam.create_function(
            FunctionName=refs[logical],
            Runtime=globals_["Runtime"],
            Handler=props["Handler"],
            Role=ROLE,
            Code={"ZipFile": package},
            Timeout=int(props.get("Timeout", globals_["Timeout"])),
            MemorySize=int(props.get("MemorySize", globals_["MemorySize"])),
            Environment={"Variables": variables},
        )
    machine = resources["ReconcileStateMachine"]["Properties"]
    substitutions = {
        k: str(resolve(v, refs)) for k, v in machine["DefinitionSubstitutions"].items()
    }
    created = clients.client("stepfunctions").create_state_machine(
        name=resolve(machine["Name"], refs),
        type=machine["Type"],
        definition=state_machine_definition(INFRA / machine["DefinitionUri"], substitutions),
        roleArn=f"arn:aws:iam::{ACCOUNT}:role/{STACK}-reconcile",
    )
    return ReconcileStack(created["stateMachineArn"], {k: refs[k] for k in FUNCTIONS})
