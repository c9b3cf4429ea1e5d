"""The backfill part of infra/template.yaml, created on ministack the way CloudFormation
would: functions from a zip of our packages with the template's handlers, timeouts and
environment; the replicator's event source mappings (disabled, as the template makes them);
the state machine from infra/statemachine/backfill.asl.yaml, its DefinitionSubstitutions
replaced as text before the YAML is parsed, as CloudFormation does.

Not made: the dependencies layer (our runtime dependencies are installed beside ministack,
whose workers run with its interpreter whatever Runtime says), roles and policies (ministack
does not enforce IAM), log groups, alarms and the dashboard."""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dualwrite.aws import tables
from dualwrite.aws.clients import Clients
from dualwrite.config import Migration
from tests.unit.test_infra_template import INFRA, load_template

ROOT = INFRA.parent
ACCOUNT = "000000000000"
REGION = "us-east-1"
STACK = "dualwrite"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/{STACK}-lambda"
#: as infra/Makefile packages them: the core without its CLI, the function's component
COMPONENTS = {
    "ReplicatorFunction": "stream_replicator",
    "BackfillPlanFunction": "backfill",
    "BackfillWorkerFunction": "backfill",
    "BackfillCompleteFunction": "backfill",
}
MAPPINGS = {"servers": "ServersStreamMapping", "memberships": "MembershipsStreamMapping"}
STREAM_PARAMETERS = {"servers": "ServersStreamArn", "memberships": "MembershipsStreamArn"}
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_:.]+)\}")
#: a DefinitionSubstitutions key (the ASL's comments mention "${...}" itself)
_ASL_PLACEHOLDER = re.compile(r"\$\{([A-Za-z][A-Za-z0-9_]*)\}")


def code_zip(component: str) -> bytes:
    """dualwrite/ (without cli/ and __main__), the component package and migrations/*.yaml."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for package in ("dualwrite", component):
            for path in sorted((ROOT / package).rglob("*.py")):
                rel = path.relative_to(ROOT)
                if (
                    rel.parts[:2] == ("dualwrite", "cli")
                    or rel.as_posix() == "dualwrite/__main__.py"
                ):
                    continue
                zf.write(path, rel.as_posix())
        for path in sorted((ROOT / "migrations").glob("*.yaml")):
            zf.write(path, path.relative_to(ROOT).as_posix())
    return buffer.getvalue()


def resolve(value: Any, refs: Mapping[str, str]) -> Any:
    """The template's intrinsics this part uses: Ref, Sub and GetAtt."""
    if isinstance(value, dict) and len(value) == 1:
        ((name, arg),) = value.items()
        if name == "Ref":
            return refs[arg]
        if name == "Fn::Sub":
            return _PLACEHOLDER.sub(lambda m: refs[m.group(1)], arg)
        if name == "Fn::GetAtt":
            return refs[".".join(arg)]
    if isinstance(value, dict):
        return {k: resolve(v, refs) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, refs) for v in value]
    return value


def state_machine_definition(path: Path, substitutions: Mapping[str, str]) -> str:
    """The ASL as CloudFormation hands it to Step Functions: placeholders replaced in the
    text, then parsed (sent as JSON)."""
    text = _ASL_PLACEHOLDER.sub(
        lambda m: substitutions.get(m.group(1), m.group(0)), path.read_text(encoding="utf-8")
    )
    left = _ASL_PLACEHOLDER.findall(text)
    assert not left, f"unsubstituted placeholders in {path.name}: {left}"
    return json.dumps(yaml.safe_load(text))


@dataclass(frozen=True)
class BackfillStack:
    state_machine_arn: str
    functions: dict[str, str]  # logical id -> function name
    mappings: dict[str, str]  # route -> event source mapping UUID


def deploy(
    clients: Clients,
    migration: Migration,
    *,
    parameters: Mapping[str, str] | None = None,
    environment: Mapping[str, Mapping[str, str]] | None = None,
) -> BackfillStack:
    """Create the backfill part of the stack (run after `prepare`: streams on).

    environment: extra variables per function logical id, on top of the template's."""
    template = load_template()
    resources = template["Resources"]
    refs = template_refs(template, parameters)
    for route in migration.routes:
        desc = tables.describe(clients.dynamodb, route.source)
        assert desc is not None and desc.get("LatestStreamArn"), f"{route.source}: no stream"
        refs[STREAM_PARAMETERS[route.name]] = desc["LatestStreamArn"]
    name_functions(refs, COMPONENTS)
    sqs = clients.client("sqs")
    queue = sqs.create_queue(QueueName=f"{STACK}-replication-failures")["QueueUrl"]
    refs["ReplicationFailureQueue.Arn"] = sqs.get_queue_attributes(
        QueueUrl=queue, AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]

    zips = {component: code_zip(component) for component in set(COMPONENTS.values())}
    lam = create_functions(
        clients, template, refs, {k: zips[c] for k, c in COMPONENTS.items()}, environment
    )
    mappings: dict[str, str] = {}
    for route, logical in MAPPINGS.items():
        props = resolve(resources[logical]["Properties"], refs)
        esm = lam.create_event_source_mapping(
            FunctionName=props["FunctionName"],
            EventSourceArn=props["EventSourceArn"],
            StartingPosition=props["StartingPosition"],
            Enabled=props["Enabled"] == "true",
            BatchSize=int(props["BatchSize"]),
            MaximumBatchingWindowInSeconds=int(props["MaximumBatchingWindowInSeconds"]),
            ParallelizationFactor=int(props["ParallelizationFactor"]),
            FunctionResponseTypes=props["FunctionResponseTypes"],
            BisectBatchOnFunctionError=props["BisectBatchOnFunctionError"],
            MaximumRetryAttempts=int(props["MaximumRetryAttempts"]),
            MaximumRecordAgeInSeconds=int(props["MaximumRecordAgeInSeconds"]),
            DestinationConfig=props["DestinationConfig"],
        )
        mappings[route] = esm["UUID"]

    arn = create_state_machine(clients, template, "BackfillStateMachine", refs, "backfill")
    return BackfillStack(arn, {k: refs[k] for k in COMPONENTS}, mappings)


def template_refs(
    template: Mapping[str, Any], parameters: Mapping[str, str] | None
) -> dict[str, str]:
    """What Ref and Sub resolve to: the parameters' defaults (or the given values) and the
    pseudo parameters; deployers add their resources' names."""
    refs: dict[str, str] = {
        name: str(p["Default"]) for name, p in template["Parameters"].items() if "Default" in p
    }
    refs.update({"AWS::Partition": "aws", "AWS::Region": REGION, "AWS::AccountId": ACCOUNT})
    refs["AWS::StackName"] = STACK
    refs.update(parameters or {})
    return refs


def name_functions(refs: dict[str, str], logicals: Iterable[str]) -> None:
    for logical in logicals:
        name = f"{STACK}-{logical}"
        refs[logical] = name
        refs[f"{logical}.Arn"] = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"


def create_functions(
    clients: Clients,
    template: Mapping[str, Any],
    refs: Mapping[str, str],
    code: Mapping[str, bytes],
    environment: Mapping[str, Mapping[str, str]] | None,
) -> Any:
    """Each function (logical id -> its zip) with the template's handler, timeout, memory and
    environment (Globals, then its own, then the test's extra variables). Returns the client."""
    lam = clients.lambda_
    resources = template["Resources"]
    globals_ = template["Globals"]["Function"]
    for logical, package in code.items():
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
    return lam


def create_state_machine(
    clients: Clients, template: Mapping[str, Any], logical: str, refs: Mapping[str, str], role: str
) -> str:
    """The state machine from its ASL file, DefinitionSubstitutions replaced as text (as
    CloudFormation does); returns its ARN."""
    machine = template["Resources"][logical]["Properties"]
    substitutions = {
        k: str(resolve(v, refs)) for k, v in machine["DefinitionSubstitutions"].items()
    }
    created = clients.client("stepfunctions").create_state_machine(
        name=resolve(machine["Name"], refs),
        type=machine["Type"],
        definition=state_machine_definition(INFRA / machine["DefinitionUri"], substitutions),
        roleArn=f"arn:aws:iam::{ACCOUNT}:role/{STACK}-{role}",
    )
    return str(created["stateMachineArn"])
