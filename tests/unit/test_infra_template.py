"""infra/template.yaml: cfn-lint clean, the SAM transform succeeds offline, and the transformed
template has the properties the design relies on (event source settings, tracing, runtime,
least-privilege IAM, tables, alarms, dashboard, the backfill state machine)."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from dualwrite.config import load_migration
from dualwrite.control import control_table_definition

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
TEMPLATE = INFRA / "template.yaml"
REGION = "us-east-1"
ACCOUNT = "123456789012"
STACK = "dualwrite"


def stream_arn(table: str) -> str:
    return f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{table}/stream/2024-05-01T00:00:00.000"


def table_arn(table: str) -> str:
    return f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{table}"


#: parameters without defaults (what `sam deploy --guided` asks for)
REQUIRED = {
    "ServersStreamArn": stream_arn("ServersTable"),
    "MembershipsStreamArn": stream_arn("UserMembershipTable"),
    "CoreStreamArn": stream_arn("CoreTable"),
    "AlarmEmail": "ops@example.com",
}

EXPECTED_HANDLERS = {
    "ReplicatorFunction": "stream_replicator.handler.lambda_handler",
    "BackfillPlanFunction": "backfill.worker.plan_handler",
    "BackfillWorkerFunction": "backfill.worker.lambda_handler",
    "BackfillCompleteFunction": "backfill.worker.complete_handler",
    "ReconcilerFunction": "reconciler.handler.lambda_handler",
    "ReconcilePlanFunction": "reconciler.segment_task.plan_handler",
    "ReconcileSegmentFunction": "reconciler.segment_task.segment_handler",
    "ReconcileCombineFunction": "reconciler.segment_task.combine_handler",
    "ReconcileFinishFunction": "reconciler.segment_task.finish_handler",
}

LAMBDA_SERVICE_ERRORS = {
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
}


# --- loading ---------------------------------------------------------------------------------
class _CfnLoader(yaml.SafeLoader):
    """SafeLoader plus CloudFormation's short tags (!Ref, !Sub, ...); a subclass, so the global
    SafeLoader (used by the migration file parser) is left alone."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = suffix if suffix in ("Ref", "Condition") else f"Fn::{suffix}"
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        assert isinstance(node, yaml.MappingNode)
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CfnLoader.add_multi_constructor("!", _intrinsic)


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=_CfnLoader)
    assert isinstance(data, dict)
    return data


def packaged(template: dict[str, Any]) -> dict[str, Any]:
    """What `sam package` hands to the transform: local code and definitions become S3 URIs."""
    out = copy.deepcopy(template)
    out["Globals"]["Function"]["CodeUri"] = "s3://artifacts/code.zip"
    for res in out["Resources"].values():
        props = res.get("Properties", {})
        if res["Type"] == "AWS::Serverless::Function" and "CodeUri" in props:
            props["CodeUri"] = "s3://artifacts/code.zip"
        if res["Type"] == "AWS::Serverless::LayerVersion":
            props["ContentUri"] = "s3://artifacts/layer.zip"
        if res["Type"] == "AWS::Serverless::StateMachine":
            props["DefinitionUri"] = {"Bucket": "artifacts", "Key": "backfill.asl.yaml"}
    return out


def sam_transform(template: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    from samtranslator.translator.managed_policy_translator import ManagedPolicyLoader
    from samtranslator.translator.transform import transform

    class OfflinePolicies(ManagedPolicyLoader):
        """Never calls IAM: the template names no managed policy by its short name."""

        def __init__(self) -> None:
            pass

        def load(self) -> dict[str, str]:
            return {}

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_DEFAULT_REGION", REGION)
        return transform(packaged(template), dict(params), OfflinePolicies())


# --- a small intrinsic-function resolver (enough for this template) ---------------------------
NO_VALUE = object()


class Resolver:
    def __init__(self, template: dict[str, Any], params: dict[str, Any]) -> None:
        self.template = template
        self.resources: dict[str, Any] = template["Resources"]
        self.values: dict[str, Any] = {
            name: spec["Default"]
            for name, spec in template.get("Parameters", {}).items()
            if "Default" in spec
        }
        self.values.update(params)
        self.values.update(
            {
                "AWS::Region": REGION,
                "AWS::AccountId": ACCOUNT,
                "AWS::Partition": "aws",
                "AWS::StackName": STACK,
                "AWS::URLSuffix": "amazonaws.com",
            }
        )

    def getatt(self, name: str, attr: str) -> str:
        rtype = self.resources[name]["Type"]
        if attr == "Arn":
            if rtype == "AWS::Lambda::Function":
                return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
            if rtype == "AWS::SQS::Queue":
                return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"
            if rtype == "AWS::Logs::LogGroup":
                return f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{name}:*"
        return f"{name}.{attr}"

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.values:
            return self.values[name]
        assert name in self.resources, f"Ref to unknown {name}"
        return name

    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.template["Conditions"][name]))

    def sub(self, text: str, local: dict[str, Any]) -> str:
        def one(match: re.Match[str]) -> str:
            key = match.group(1)
            if key.startswith("!"):
                return "${" + key[1:] + "}"
            if key in local:
                return str(self.resolve(local[key]))
            if "." in key and key.split(".", 1)[0] in self.resources:
                return self.getatt(*key.split(".", 1))
            return str(self.ref(key))

        return re.sub(r"\$\{([^}]+)\}", one, text)

    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            out = [self.resolve(n) for n in node]
            return [n for n in out if n is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, arg),) = node.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                return self.getatt(*arg)
            if key == "Fn::Sub":
                text, local = (arg, {}) if isinstance(arg, str) else arg
                return self.sub(text, local)
            if key == "Fn::If":
                return self.resolve(arg[1] if self.condition(arg[0]) else arg[2])
            if key == "Fn::Equals":
                return self.resolve(arg[0]) == self.resolve(arg[1])
            if key == "Fn::Not":
                return not self.resolve(arg[0])
            if key == "Fn::And":
                return all(self.resolve(a) for a in arg)
            if key == "Fn::Or":
                return any(self.resolve(a) for a in arg)
            if key == "Condition":
                return self.condition(arg)
            if key == "Fn::Join":
                return arg[0].join(str(x) for x in self.resolve(arg[1]))
        out = {k: self.resolve(v) for k, v in node.items()}
        return {k: v for k, v in out.items() if v is not NO_VALUE}


def as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    assert str(value).lower() in ("true", "false"), value
    return str(value).lower() == "true"


def listify(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# --- fixtures ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


@pytest.fixture(scope="module")
def transformed(template: dict[str, Any]) -> dict[str, Any]:
    return sam_transform(template, REQUIRED)


@pytest.fixture(scope="module")
def resolved(transformed: dict[str, Any]) -> dict[str, Any]:
    """The transformed template's resources with parameter defaults filled in."""
    resolver = Resolver(transformed, REQUIRED)
    return {name: resolver.resolve(res) for name, res in transformed["Resources"].items()}


def of_type(resources: dict[str, Any], rtype: str) -> dict[str, Any]:
    return {name: res for name, res in resources.items() if res["Type"] == rtype}


# --- lint and transform ----------------------------------------------------------------------
def test_cfn_lint_is_clean() -> None:
    from cfnlint.api import lint_file

    matches = lint_file(TEMPLATE)
    assert [str(m) for m in matches] == []


def test_sam_transform_produces_the_whole_stack(transformed: dict[str, Any]) -> None:
    resources = transformed["Resources"]
    assert not [r for r in resources.values() if r["Type"].startswith("AWS::Serverless::")]
    functions = of_type(resources, "AWS::Lambda::Function")
    assert {name: res["Properties"]["Handler"] for name, res in functions.items()} == (
        EXPECTED_HANDLERS
    )
    assert len(of_type(resources, "AWS::Lambda::EventSourceMapping")) == 3
    assert "Rules" in transformed  # the transform keeps them (CoreStreamGiven)
    assert len(of_type(resources, "AWS::StepFunctions::StateMachine")) == 2
    assert len(of_type(resources, "AWS::Events::Rule")) == 1
    assert len(of_type(resources, "AWS::Scheduler::Schedule")) == 1
    assert len(of_type(resources, "AWS::CloudWatch::Dashboard")) == 1
    assert {"CoreTable", "ControlTable", "ReplicationFailureQueue", "AlarmTopic"} <= set(resources)


# --- functions -------------------------------------------------------------------------------
def test_every_function_is_python312_arm64_traced_with_the_migration_file(
    transformed: dict[str, Any], resolved: dict[str, Any]
) -> None:
    layers = of_type(resolved, "AWS::Lambda::LayerVersion")
    assert len(layers) == 1
    ((layer_id, layer),) = layers.items()
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.12"]
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    migration_file = transformed["Parameters"]["MigrationFile"]["Default"]
    assert (ROOT / migration_file).is_file()
    for name, fn in of_type(resolved, "AWS::Lambda::Function").items():
        props = fn["Properties"]
        assert props["Runtime"] == "python3.12", name
        assert props["Architectures"] == ["arm64"], name
        assert props["TracingConfig"] == {"Mode": "Active"}, name
        assert props["Layers"] == [layer_id], name
        env = props["Environment"]["Variables"]
        assert env["DUALWRITE_CONFIG"] == migration_file, name
        assert env["DUALWRITE_CONTROL_TABLE"] == "dualwrite-control", name
        assert env["POWERTOOLS_METRICS_NAMESPACE"] == "DualWrite", name
        # a `service` dimension would hide the metrics from the Route-only alarms
        assert "POWERTOOLS_SERVICE_NAME" not in env, name
        # `cutover` (discover: true) re-points functions whose variable equals a source table
        assert not {"ServersTable", "UserMembershipTable"} & set(map(str, env.values())), name
        assert props["LoggingConfig"]["LogGroup"] in resolved, name
        assert 0 < int(props["Timeout"]) <= 900, name


def test_the_schedule_starts_the_reconcile_state_machine(resolved: dict[str, Any]) -> None:
    (schedule,) = of_type(resolved, "AWS::Scheduler::Schedule").values()
    props = schedule["Properties"]
    assert props["ScheduleExpression"] == "rate(15 minutes)"
    assert props["State"] == "ENABLED"
    assert props["Name"] == f"{STACK}-reconcile"
    assert props["Target"]["Arn"] == "ReconcileStateMachine"
    assert props["Target"]["Input"] == "{}"
    assert props["Target"]["RetryPolicy"] == {"MaximumRetryAttempts": 0}
    (rule,) = of_type(resolved, "AWS::Events::Rule").values()
    assert rule["Properties"]["State"] == "DISABLED"  # one engine at a time


def test_reconciler_runs_on_a_schedule_one_slice_at_a_time(transformed: dict[str, Any]) -> None:
    params = {**REQUIRED, "ReconcileEngine": "Lambda"}
    resolver = Resolver(transformed, params)
    resolved = {name: resolver.resolve(res) for name, res in transformed["Resources"].items()}
    (schedule,) = of_type(resolved, "AWS::Scheduler::Schedule").values()
    assert schedule["Properties"]["State"] == "DISABLED"
    (rule,) = of_type(resolved, "AWS::Events::Rule").values()
    assert rule["Properties"]["ScheduleExpression"] == "rate(15 minutes)"
    assert rule["Properties"]["State"] == "ENABLED"
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"] == f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:ReconcilerFunction"
    reconciler = resolved["ReconcilerFunction"]["Properties"]
    assert int(reconciler["ReservedConcurrentExecutions"]) == 1
    (invoke_config,) = of_type(resolved, "AWS::Lambda::EventInvokeConfig").values()
    assert invoke_config["Properties"]["MaximumRetryAttempts"] == 0


def test_backfill_completion_knows_the_replicator(resolved: dict[str, Any]) -> None:
    env = resolved["BackfillCompleteFunction"]["Properties"]["Environment"]["Variables"]
    assert env["DUALWRITE_REPLICATOR_FUNCTION"] == "ReplicatorFunction"


# --- event source mappings -------------------------------------------------------------------
#: the one mapping of the target's stream (reverse replication after cutover)
REVERSE_MAPPING = "ReverseStreamMapping"


def test_event_source_mappings(transformed: dict[str, Any], resolved: dict[str, Any]) -> None:
    mappings = of_type(resolved, "AWS::Lambda::EventSourceMapping")
    seen = {}
    for name, esm in mappings.items():
        props = esm["Properties"]
        seen[name] = props["EventSourceArn"]
        assert props["FunctionName"] == "ReplicatorFunction", name
        assert props["StartingPosition"] == "TRIM_HORIZON", name
        assert as_bool(props["Enabled"]) is False, name
        assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"], name
        assert props["BisectBatchOnFunctionError"] is True, name
        assert props["BatchSize"] == 100, name
        assert 1 <= int(props["ParallelizationFactor"]) <= 10, name
        assert "FilterCriteria" not in props, name  # the switch to reverse sets it
        if name == REVERSE_MAPPING:
            # never skips a record: one held while forward drains waits, however long
            assert int(props["MaximumRetryAttempts"]) == -1
            assert int(props["MaximumRecordAgeInSeconds"]) == -1
        else:
            assert 0 <= int(props["MaximumRetryAttempts"]) <= 10000, name
            assert 60 <= int(props["MaximumRecordAgeInSeconds"]) <= 604800, name
        queue = props["DestinationConfig"]["OnFailure"]["Destination"]
        assert queue == f"arn:aws:sqs:{REGION}:{ACCOUNT}:ReplicationFailureQueue", name
    assert seen == {
        "ServersStreamMapping": REQUIRED["ServersStreamArn"],
        "MembershipsStreamMapping": REQUIRED["MembershipsStreamArn"],
        REVERSE_MAPPING: REQUIRED["CoreStreamArn"],
    }
    # the bounds are the parameters' own: -1 (forever) is not a value the stack accepts
    params = transformed["Parameters"]
    assert params["MaximumRetryAttempts"]["MinValue"] >= 0
    assert params["MaximumRecordAgeInSeconds"]["MinValue"] >= 60
    assert (
        params["ParallelizationFactor"]["MinValue"],
        params["ParallelizationFactor"]["MaxValue"],
    ) == (
        1,
        10,
    )
    raw = of_type(transformed["Resources"], "AWS::Lambda::EventSourceMapping")
    assert {str(m["Properties"]["ParallelizationFactor"]) for m in raw.values()} == {
        str({"Ref": "ParallelizationFactor"})
    }


def test_replication_can_be_left_on_in_later_deploys(transformed: dict[str, Any]) -> None:
    resolver = Resolver(
        transformed,
        {**REQUIRED, "ServersReplicationEnabled": "true", "ParallelizationFactor": 4},
    )
    servers = resolver.resolve(transformed["Resources"]["ServersStreamMapping"])["Properties"]
    memberships = resolver.resolve(transformed["Resources"]["MembershipsStreamMapping"])
    assert as_bool(servers["Enabled"]) is True
    assert int(servers["ParallelizationFactor"]) == 4
    assert as_bool(memberships["Properties"]["Enabled"]) is False


def test_reverse_mapping_keeps_the_switchs_filter_in_later_deploys(
    transformed: dict[str, Any],
) -> None:
    raw = transformed["Resources"][REVERSE_MAPPING]
    after = Resolver(transformed, {**REQUIRED, "ReverseReplicationFrom": "1767225600.5"})
    props = after.resolve(raw)["Properties"]
    assert as_bool(props["Enabled"]) is True
    (only,) = props["FilterCriteria"]["Filters"]
    pattern = json.loads(only["Pattern"])
    assert pattern == {
        "dynamodb": {"ApproximateCreationDateTime": [{"numeric": [">=", 1767225600.5]}]}
    }
    spec = transformed["Parameters"]["ReverseReplicationFrom"]
    assert spec["Default"] == ""
    assert re.fullmatch(spec["AllowedPattern"], "1767225600.5")
    assert not re.fullmatch(spec["AllowedPattern"], "1 ]}]}")  # the value lands in JSON


def test_the_target_stream_is_the_stacks_own_or_required(transformed: dict[str, Any]) -> None:
    own = Resolver(transformed, {**REQUIRED, "CoreStreamArn": "", "CreateTables": "true"})
    esm = own.resolve(transformed["Resources"][REVERSE_MAPPING])["Properties"]
    assert esm["EventSourceArn"] == "CoreTable.StreamArn"
    core = own.resolve(transformed["Resources"]["CoreTable"])["Properties"]
    assert core["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    replicator = roles_with({**REQUIRED, "CreateTables": "true"}, transformed)
    reads = {
        arn
        for st in statements(replicator["ReplicatorFunctionRole"])
        if "dynamodb:GetRecords" in listify(st["Action"])
        for arn in listify(st["Resource"])
    }
    assert "CoreTable.StreamArn" in reads
    # without the stack's own CoreTable a deploy must name its stream
    rule = transformed["Rules"]["CoreStreamGiven"]
    assert rule["RuleCondition"] == {"Fn::Equals": [{"Ref": "CreateTables"}, "false"]}
    (assertion,) = rule["Assertions"]
    assert assertion["Assert"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "CoreStreamArn"}, ""]}]}


def test_failure_queue_is_encrypted_tls_only_and_alarmed(resolved: dict[str, Any]) -> None:
    queue = resolved["ReplicationFailureQueue"]["Properties"]
    assert queue.get("SqsManagedSseEnabled") is True or queue.get("KmsMasterKeyId")
    (policy,) = of_type(resolved, "AWS::SQS::QueuePolicy").values()
    (deny,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    depth = [
        a
        for a in of_type(resolved, "AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("MetricName") == "ApproximateNumberOfMessagesVisible"
    ]
    assert len(depth) == 1
    dims = depth[0]["Properties"]["Dimensions"]
    assert dims == [{"Name": "QueueName", "Value": "ReplicationFailureQueue.QueueName"}]


# --- IAM -------------------------------------------------------------------------------------
TABLES = {
    "servers": table_arn("ServersTable"),
    "memberships": table_arn("UserMembershipTable"),
    "core": table_arn("CoreTable"),
    "control": table_arn("dualwrite-control"),
}
STREAMS = {
    REQUIRED["ServersStreamArn"],
    REQUIRED["MembershipsStreamArn"],
    REQUIRED["CoreStreamArn"],
    f"{TABLES['servers']}/stream/*",
    f"{TABLES['memberships']}/stream/*",
    f"{TABLES['core']}/stream/*",
}
CONTROL_RW = {"GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query"}
STREAM_READ = {"DescribeStream", "GetRecords", "GetShardIterator"}
#: reverse replication writes a source table after reading it (an echo writes nothing)
REVERSE_WRITE = {"BatchGetItem", "BatchWriteItem", "PutItem", "UpdateItem", "DeleteItem"}
ALL_TABLES = set(TABLES)

#: role -> resource -> DynamoDB actions (short names): the least privilege each function needs
EXPECTED_DYNAMODB: dict[str, dict[str, set[str]]] = {
    # forward: the source streams -> CoreTable; reverse (after cutover): CoreTable's stream
    # -> exactly the two source tables (the memberships inverse reads User items and
    # queries a user's memberships)
    "ReplicatorFunctionRole": {
        REQUIRED["ServersStreamArn"]: STREAM_READ,
        REQUIRED["MembershipsStreamArn"]: STREAM_READ,
        REQUIRED["CoreStreamArn"]: STREAM_READ,
        f"{TABLES['servers']}/stream/*": {"ListStreams"},
        f"{TABLES['memberships']}/stream/*": {"ListStreams"},
        f"{TABLES['core']}/stream/*": {"ListStreams"},
        TABLES["servers"]: {"DescribeTable"} | REVERSE_WRITE,
        TABLES["memberships"]: {"DescribeTable", "Query"} | REVERSE_WRITE,
        TABLES["core"]: {
            "DescribeTable",
            "BatchWriteItem",
            "PutItem",
            "DeleteItem",
            "BatchGetItem",
        },
        TABLES["control"]: {"DescribeTable"} | CONTROL_RW,
    },
    "BackfillPlanFunctionRole": {
        TABLES["servers"]: {"DescribeTable"},
        TABLES["memberships"]: {"DescribeTable"},
        TABLES["core"]: {"DescribeTable"},
        TABLES["control"]: {"DescribeTable"} | CONTROL_RW,
    },
    "BackfillWorkerFunctionRole": {
        # BatchGetItem: a re-run reads again the sources of what it put (settle_landed)
        TABLES["servers"]: {"DescribeTable", "Scan", "BatchGetItem"},
        TABLES["memberships"]: {"DescribeTable", "Scan", "Query", "BatchGetItem"},
        # DeleteItem: a refused batch is sent again one write at a time (a derived delete)
        TABLES["core"]: {"DescribeTable", "BatchWriteItem", "PutItem", "DeleteItem"},
        TABLES["control"]: {"DescribeTable"} | CONTROL_RW,
    },
    "BackfillCompleteFunctionRole": {
        TABLES["servers"]: {"DescribeTable"},
        TABLES["memberships"]: {"DescribeTable"},
        TABLES["core"]: {"DescribeTable"},
        TABLES["control"]: {"DescribeTable"} | CONTROL_RW,
    },
    "ReconcilerFunctionRole": {
        TABLES["servers"]: {"DescribeTable", "Scan", "Query", "GetItem", "BatchGetItem"},
        TABLES["memberships"]: {"DescribeTable", "Scan", "Query", "GetItem", "BatchGetItem"},
        TABLES["core"]: {"DescribeTable", "Scan", "Query", "GetItem", "BatchGetItem"},
        TABLES["control"]: {"DescribeTable"} | CONTROL_RW,
    },
    "ReconcilePlanFunctionRole": {
        TABLES["servers"]: {"DescribeTable"},
        TABLES["memberships"]: {"DescribeTable"},
        TABLES["core"]: {"DescribeTable"},
        TABLES["control"]: {"DescribeTable"} | CONTROL_RW,
    },
    # read-only on sources and target, like the scheduled reconciler
    "ReconcileSegmentFunctionRole": {
        TABLES["servers"]: {"DescribeTable", "Scan", "Query", "GetItem", "BatchGetItem"},
        TABLES["memberships"]: {"DescribeTable", "Scan", "Query", "GetItem", "BatchGetItem"},
        TABLES["core"]: {"DescribeTable", "Scan", "Query", "GetItem", "BatchGetItem"},
        TABLES["control"]: {"DescribeTable"} | CONTROL_RW,
    },
    "ReconcileCombineFunctionRole": {
        TABLES["servers"]: {"DescribeTable"},
        TABLES["memberships"]: {"DescribeTable"},
        TABLES["core"]: {"DescribeTable"},
        TABLES["control"]: {"DescribeTable"} | CONTROL_RW,
    },
    "ReconcileFinishFunctionRole": {
        TABLES["servers"]: {"DescribeTable"},
        TABLES["memberships"]: {"DescribeTable"},
        TABLES["core"]: {"DescribeTable"},
        TABLES["control"]: {"DescribeTable"} | CONTROL_RW,
    },
    "BackfillStateMachineRole": {},
    "ReconcileStateMachineRole": {},
    "ReconcileStateMachineScheduleRole": {},
}

#: actions that may (or must) name Resource "*": none of them touches data
STAR_ACTIONS = {
    "cloudwatch:PutMetricData",  # only with a namespace condition (checked below)
    "lambda:ListEventSourceMappings",
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
}
MANAGED = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
}


def statements(role: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for policy in role["Properties"].get("Policies", []):
        yield from listify(policy["PolicyDocument"]["Statement"])


def roles_with(params: dict[str, Any], transformed: dict[str, Any]) -> dict[str, Any]:
    resolver = Resolver(transformed, params)
    return {
        name: resolver.resolve(res)
        for name, res in of_type(transformed["Resources"], "AWS::IAM::Role").items()
    }


@pytest.mark.parametrize("cognito", ["", "us-east-1_AbCdEf123"])
def test_iam_is_least_privilege(transformed: dict[str, Any], cognito: str) -> None:
    roles = roles_with({**REQUIRED, "CognitoUserPoolId": cognito}, transformed)
    assert set(roles) == set(EXPECTED_DYNAMODB)
    for role_name, role in roles.items():
        assert set(role["Properties"].get("ManagedPolicyArns", [])) <= MANAGED, role_name
        granted: dict[str, set[str]] = {}
        for st in statements(role):
            assert st["Effect"] == "Allow", (role_name, st)
            assert "NotAction" not in st and "NotResource" not in st, (role_name, st)
            actions = listify(st["Action"])
            resources = listify(st["Resource"])
            for action in actions:
                service, _, verb = action.partition(":")
                assert "*" not in verb, (role_name, action)
                if "*" in resources:
                    assert action in STAR_ACTIONS, (role_name, action)
                if action == "cloudwatch:PutMetricData":
                    assert st["Condition"] == {
                        "StringEquals": {"cloudwatch:namespace": "DualWrite"}
                    }, role_name
                if service == "dynamodb":
                    assert "*" not in resources, (role_name, action)
                    for arn in resources:
                        granted.setdefault(arn, set()).add(verb)
                if service == "cognito-idp":
                    assert resources == [
                        f"arn:aws:cognito-idp:{REGION}:{ACCOUNT}:userpool/{cognito}"
                    ], role_name
        assert granted == EXPECTED_DYNAMODB[role_name], role_name
        for arn in granted:
            assert arn in TABLES.values() or arn in STREAMS, (role_name, arn)
    cognito_roles = {
        name
        for name, role in roles.items()
        if any(
            str(a).startswith("cognito-idp:")
            for st in statements(role)
            for a in listify(st["Action"])
        )
    }
    expected = {
        "ReplicatorFunctionRole",
        "BackfillWorkerFunctionRole",
        "ReconcilerFunctionRole",
        "ReconcileSegmentFunctionRole",
    }
    assert cognito_roles == (expected if cognito else set())


def test_only_the_replicators_mappings_can_be_enabled(transformed: dict[str, Any]) -> None:
    roles = roles_with(REQUIRED, transformed)
    lambda_grants = {
        (name, action): st
        for name, role in roles.items()
        for st in statements(role)
        for action in listify(st["Action"])
        if action.startswith("lambda:")
    }
    updates = {
        key: st for key, st in lambda_grants.items() if key[1] == "lambda:UpdateEventSourceMapping"
    }
    assert list(updates) == [("BackfillCompleteFunctionRole", "lambda:UpdateEventSourceMapping")]
    (update,) = updates.values()
    replicator = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:ReplicatorFunction"
    assert update["Condition"] == {"ArnLike": {"lambda:FunctionArn": replicator}}
    invoke = {
        name: st
        for (name, action), st in lambda_grants.items()
        if action == "lambda:InvokeFunction"
    }
    assert set(invoke) == {"BackfillStateMachineRole", "ReconcileStateMachineRole"}
    for role, prefix, steps in (
        ("BackfillStateMachineRole", "Backfill", ("Plan", "Worker", "Complete")),
        ("ReconcileStateMachineRole", "Reconcile", ("Plan", "Segment", "Combine", "Finish")),
    ):
        base = {f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{prefix}{s}Function" for s in steps}
        assert set(invoke[role]["Resource"]) == base | {f"{arn}:*" for arn in base}


def states_grants(role: dict[str, Any]) -> dict[str, list[str]]:
    return {
        action: listify(st["Resource"])
        for st in statements(role)
        for action in listify(st["Action"])
        if action.startswith("states:")
    }


@pytest.mark.parametrize("kind", ["backfill", "reconcile"])
def test_state_machine_may_run_only_its_own_children(
    transformed: dict[str, Any], kind: str
) -> None:
    logical = f"{kind.capitalize()}StateMachine"
    roles = roles_with(REQUIRED, transformed)
    states = states_grants(roles[f"{logical}Role"])
    own = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{STACK}-{kind}"
    assert states["states:StartExecution"] == [own]
    children = [f"arn:aws:states:{REGION}:{ACCOUNT}:execution:{STACK}-{kind}/*"]
    assert states["states:DescribeExecution"] == children
    assert states["states:StopExecution"] == children
    machine = Resolver(transformed, REQUIRED).resolve(transformed["Resources"][logical])
    assert machine["Properties"]["StateMachineName"] == f"{STACK}-{kind}"
    others = {
        name: states_grants(role)
        for name, role in roles.items()
        if states_grants(role)
        and name not in (f"{logical}Role", "BackfillStateMachineRole", "ReconcileStateMachineRole")
    }
    # the reconcile lock asks whether its holder (a top-level execution) still runs; the
    # scheduler may start the reconcile state machine and nothing else
    assert others == {
        "ReconcilePlanFunctionRole": {
            "states:DescribeExecution": [
                f"arn:aws:states:{REGION}:{ACCOUNT}:execution:{STACK}-reconcile:*"
            ]
        },
        "ReconcileStateMachineScheduleRole": {"states:StartExecution": ["ReconcileStateMachine"]},
    }


# --- tables ----------------------------------------------------------------------------------
def test_tables_match_the_migration_file_and_the_control_store(
    transformed: dict[str, Any],
) -> None:
    resolver = Resolver(transformed, {**REQUIRED, "CreateTables": "true"})
    assert resolver.condition("CreateTables")
    assert not Resolver(transformed, REQUIRED).condition("CreateTables")
    migration = load_migration(ROOT / "migrations" / "coretable.yaml")
    target = migration.targets["CoreTable"]

    core = resolver.resolve(transformed["Resources"]["CoreTable"])
    assert core["Condition"] == "CreateTables"
    assert core["DeletionPolicy"] == core["UpdateReplacePolicy"] == "Retain"
    props = core["Properties"]
    assert props["TableName"] == "CoreTable"
    assert props["BillingMode"] == "PAY_PER_REQUEST" == target.billing_mode
    assert props["SSESpecification"] == {"SSEEnabled": True}
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["DeletionProtectionEnabled"] is True
    attr_types = {a["AttributeName"]: a["AttributeType"] for a in props["AttributeDefinitions"]}
    assert [k["AttributeName"] for k in props["KeySchema"]] == list(target.key)
    assert [k["KeyType"] for k in props["KeySchema"]] == ["HASH", "RANGE"]
    (gsi,) = props["GlobalSecondaryIndexes"]
    (index,) = target.indexes
    assert gsi["IndexName"] == index.name == "GSI1"
    assert [k["AttributeName"] for k in gsi["KeySchema"]] == list(index.key) == ["SK", "PK"]
    assert gsi["Projection"] == {"ProjectionType": index.projection}
    assert attr_types == {**target.key, **index.key}

    control = resolver.resolve(transformed["Resources"]["ControlTable"])
    assert control["DeletionPolicy"] == "Retain"
    props = control["Properties"]
    reference = control_table_definition(migration.control_table)
    for key in ("TableName", "KeySchema", "AttributeDefinitions", "BillingMode"):
        assert props[key] == reference[key], key
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert props["SSESpecification"] == {"SSEEnabled": True}


def test_parameter_defaults_match_the_migration_file(template: dict[str, Any]) -> None:
    params = template["Parameters"]
    default = {name: spec.get("Default") for name, spec in params.items()}
    migration = load_migration(ROOT / default["MigrationFile"])
    assert default["ControlTableName"] == migration.control_table
    assert default["MetricsNamespace"] == migration.metrics_namespace
    servers, memberships = migration.route("servers"), migration.route("memberships")
    assert (default["ServersRoute"], default["ServersTableName"]) == ("servers", servers.source)
    assert (default["MembershipsRoute"], default["MembershipsTableName"]) == (
        "memberships",
        memberships.source,
    )
    assert default["CoreTableName"] == servers.target == memberships.target
    for name, value in REQUIRED.items():
        assert "Default" not in params[name]
        assert re.fullmatch(params[name]["AllowedPattern"], value), name


# --- alarms and dashboard --------------------------------------------------------------------
def alarm_metrics(alarm: dict[str, Any]) -> list[tuple[str, str, list[dict[str, str]]]]:
    props = alarm["Properties"]
    if "MetricName" in props:
        return [(props["Namespace"], props["MetricName"], props.get("Dimensions", []))]
    out = []
    for query in props["Metrics"]:
        if "MetricStat" in query:
            metric = query["MetricStat"]["Metric"]
            out.append((metric["Namespace"], metric["MetricName"], metric["Dimensions"]))
    return out


def test_alarms_cover_lag_failures_quarantine_queue_and_parity(resolved: dict[str, Any]) -> None:
    alarms = of_type(resolved, "AWS::CloudWatch::Alarm")
    topic = "AlarmTopic"
    by_metric: dict[str, list[dict[str, Any]]] = {}
    for alarm in alarms.values():
        assert alarm["Properties"]["AlarmActions"] == [topic]
        for metric in {m for _, m, _ in alarm_metrics(alarm)}:
            by_metric.setdefault(metric, []).append(alarm)

    (iterator,) = by_metric["IteratorAge"]
    assert alarm_metrics(iterator) == [
        ("AWS/Lambda", "IteratorAge", [{"Name": "FunctionName", "Value": "ReplicatorFunction"}])
    ]
    routes = [{"Name": "Route", "Value": "servers"}], [{"Name": "Route", "Value": "memberships"}]
    for metric in ("ReplicationFailures", "Quarantined"):
        (alarm,) = by_metric[metric]
        assert sorted(dims[0]["Value"] for _, _, dims in alarm_metrics(alarm)) == [
            "memberships",
            "servers",
        ]
        assert {ns for ns, _, _ in alarm_metrics(alarm)} == {"DualWrite"}
        (expression,) = [q for q in alarm["Properties"]["Metrics"] if q.get("ReturnData")]
        ids = {q["Id"] for q in alarm["Properties"]["Metrics"] if "MetricStat" in q}
        assert set(re.findall(r"[a-z]\w*", expression["Expression"])) - {"FILL"} == ids
        assert alarm["Properties"]["ComparisonOperator"] == "GreaterThanThreshold"
        assert float(alarm["Properties"]["Threshold"]) == 0
    parity = by_metric["ParityPercent"]
    assert sorted(str(alarm_metrics(a)[0][2]) for a in parity) == sorted(map(str, routes))
    for alarm in parity:
        assert alarm["Properties"]["ComparisonOperator"] == "LessThanThreshold"
        assert float(alarm["Properties"]["Threshold"]) == 100
    foreign = by_metric["ForeignWrites"]
    assert sorted(str(alarm_metrics(a)[0][2]) for a in foreign) == sorted(map(str, routes))
    for alarm in foreign:
        assert alarm_metrics(alarm)[0][0] == "DualWrite"
        assert alarm["Properties"]["ComparisonOperator"] == "GreaterThanThreshold"
        assert float(alarm["Properties"]["Threshold"]) == 0
        assert alarm["Properties"]["Statistic"] == "Sum"
    (queue,) = by_metric["ApproximateNumberOfMessagesVisible"]
    assert alarm_metrics(queue)[0][0] == "AWS/SQS"

    (sns,) = of_type(resolved, "AWS::SNS::Topic").values()
    assert sns["Properties"]["Subscription"] == [
        {"Protocol": "email", "Endpoint": REQUIRED["AlarmEmail"]}
    ]


def test_dashboard_shows_lag_throughput_backfill_and_parity_per_route(
    resolved: dict[str, Any],
) -> None:
    (dashboard,) = of_type(resolved, "AWS::CloudWatch::Dashboard").values()
    body = json.loads(dashboard["Properties"]["DashboardBody"])
    shown: set[tuple[str, str, str]] = set()
    alarms: set[str] = set()
    for widget in body["widgets"]:
        props = widget["properties"]
        for row in props.get("metrics", []):
            names = [x for x in row if isinstance(x, str)]
            shown.add((names[0], names[1], names[3]))
        alarms.update(props.get("alarms", []))
    for route in ("servers", "memberships"):
        for metric in (
            "ReplicationLagMs",
            "ReplicatedRecords",
            "ReplicationFailures",
            "Quarantined",
            "BackfillItems",
            "ParityPercent",
            "ParityMissing",
            "ParityExtra",
            "ParityMismatched",
            # both directions, and what reverse replication finds after cutover
            "ReverseReplicatedRecords",
            "ForeignWrites",
            "Unrepresentable",
        ):
            assert ("DualWrite", metric, route) in shown, (metric, route)
    assert ("AWS/Lambda", "IteratorAge", "ReplicatorFunction") in shown
    assert alarms == {f"{name}.Arn" for name in of_type(resolved, "AWS::CloudWatch::Alarm")}


# --- the backfill state machine ----------------------------------------------------------------
def asl_source(template: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    machine = template["Resources"]["BackfillStateMachine"]["Properties"]
    path = INFRA / machine["DefinitionUri"]
    return path.read_text(encoding="utf-8"), machine["DefinitionSubstitutions"]


FAKE_ARNS = {
    "BackfillPlanFunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:plan",
    "BackfillWorkerFunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:worker",
    "BackfillCompleteFunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:complete",
}


def definition(template: dict[str, Any], max_concurrency: int = 16) -> dict[str, Any]:
    """The ASL as CloudFormation delivers it: placeholders substituted, YAML turned JSON."""
    text, _ = asl_source(template)
    values = {**FAKE_ARNS, "Partition": "aws", "BackfillMaxConcurrency": str(max_concurrency)}
    text = re.sub(r"\$\{(\w+)\}", lambda m: values[m.group(1)], text)
    data = yaml.safe_load(text)
    result: dict[str, Any] = json.loads(json.dumps(data))
    return result


def test_definition_substitutions_match_the_placeholders(template: dict[str, Any]) -> None:
    text, substitutions = asl_source(template)
    placeholders = set(re.findall(r"\$\{(\w+)\}", text))
    assert placeholders == set(substitutions)
    functions = template["Resources"]
    for key, value in substitutions.items():
        if key.endswith("FunctionArn"):
            (logical, attr) = value["Fn::GetAtt"]
            assert attr == "Arn"
            assert logical == key.removesuffix("Arn")
            assert functions[logical]["Type"] == "AWS::Serverless::Function"
    handlers = {
        key: functions[key.removesuffix("Arn")]["Properties"]["Handler"]
        for key in substitutions
        if key.endswith("FunctionArn")
    }
    assert handlers == {
        "BackfillPlanFunctionArn": "backfill.worker.plan_handler",
        "BackfillWorkerFunctionArn": "backfill.worker.lambda_handler",
        "BackfillCompleteFunctionArn": "backfill.worker.complete_handler",
    }


def test_state_machine_definition_passes_cfn_lints_asl_schema(template: dict[str, Any]) -> None:
    """cfn-lint validates ASL (E3601) only in an inline Definition, which the SAM resource
    with a DefinitionUri does not have: lint the substituted definition inline instead."""
    from cfnlint.api import lint

    role = f"arn:aws:iam::{ACCOUNT}:role/backfill"
    machine = {"RoleArn": role, "Definition": definition(template)}
    raw = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Resources": {
            "Backfill": {"Type": "AWS::StepFunctions::StateMachine", "Properties": machine}
        },
    }
    assert [str(m) for m in lint(json.dumps(raw))] == []
    broken = copy.deepcopy(raw)
    broken["Resources"]["Backfill"]["Properties"]["Definition"]["States"]["CopySegments"][
        "MaxConcurrency"
    ] = "many"
    assert [m.rule.id for m in lint(json.dumps(broken))] == ["E3601"]


def check_states(machine: dict[str, Any], where: str) -> None:
    """Every transition lands on a state, every state is reachable, every path can end."""
    states = machine["States"]
    assert machine["StartAt"] in states, where
    edges: dict[str, set[str]] = {}
    for name, state in states.items():
        nxt: set[str] = set()
        if "Next" in state:
            assert not state.get("End"), (where, name)
            nxt.add(state["Next"])
        if state["Type"] == "Choice":
            nxt |= {c["Next"] for c in state["Choices"]}
            if "Default" in state:
                nxt.add(state["Default"])
        elif state["Type"] not in ("Succeed", "Fail"):
            assert ("Next" in state) != bool(state.get("End")), (where, name)
        nxt |= {c["Next"] for c in state.get("Catch", [])}
        assert nxt <= set(states), (where, name, nxt)
        edges[name] = nxt
        if state["Type"] == "Task":
            covered = set().union(*(set(r["ErrorEquals"]) for r in state.get("Retry", [])))
            assert covered >= LAMBDA_SERVICE_ERRORS, (where, name)
            assert state["Resource"] == "arn:aws:states:::lambda:invoke", (where, name)
        if state["Type"] == "Map":
            check_states(state["ItemProcessor"], f"{where}/{name}")
    reached, todo = set(), [machine["StartAt"]]
    while todo:
        name = todo.pop()
        if name not in reached:
            reached.add(name)
            todo.extend(edges[name])
    assert reached == set(states), where
    terminal = {n for n, s in states.items() if s.get("End") or s["Type"] in ("Succeed", "Fail")}
    assert terminal, where


def test_state_machine_is_valid_asl_with_a_distributed_map(template: dict[str, Any]) -> None:
    machine = definition(template)
    check_states(machine, "top")
    states = machine["States"]
    assert machine["StartAt"] == "PlanSegments"
    maps = [
        s
        for s in states.values()
        if s["Type"] == "Map" and s["ItemProcessor"]["ProcessorConfig"]["Mode"] == "DISTRIBUTED"
    ]
    assert len(maps) == 1
    (segments,) = maps
    assert segments["ItemProcessor"]["ProcessorConfig"] == {
        "Mode": "DISTRIBUTED",
        "ExecutionType": "STANDARD",
    }
    assert isinstance(segments["MaxConcurrency"], int)
    assert 1 <= segments["MaxConcurrency"] <= 1000
    assert definition(template, max_concurrency=3)["States"]["CopySegments"]["MaxConcurrency"] == 3
    assert segments.get("ToleratedFailurePercentage", 0) == 0
    # the worker loop: Task -> Choice on $.result.done -> back to the Task until done
    inner = segments["ItemProcessor"]["States"]
    worker = inner[segments["ItemProcessor"]["StartAt"]]
    assert worker["Parameters"]["FunctionName"] == FAKE_ARNS["BackfillWorkerFunctionArn"]
    choice = inner[worker["Next"]]
    assert choice["Type"] == "Choice"
    (done,) = choice["Choices"]
    assert done["Variable"] == "$.result.done" and done["BooleanEquals"] is True
    assert inner[done["Next"]]["Type"] == "Succeed"
    assert choice["Default"] == segments["ItemProcessor"]["StartAt"]
    # then one route's completion, or every route's ({} in: DESIGN.md section 9)
    which = states[segments["Next"]]
    assert which["Type"] == "Choice"
    (one,) = which["Choices"]
    assert one == {"Variable": "$.route", "IsPresent": True, "Next": "CompleteRoute"}
    complete = FAKE_ARNS["BackfillCompleteFunctionArn"]
    assert states["CompleteRoute"]["Parameters"]["FunctionName"] == complete
    every = states[which["Default"]]
    assert every["Type"] == "Map" and every["ItemsPath"] == "$.plan.routes"
    (each,) = every["ItemProcessor"]["States"].values()
    assert each["Parameters"]["FunctionName"] == complete


# A tiny interpreter for the ASL subset the definition uses, to run it against fake Lambdas.
def path_get(data: Any, path: str) -> Any:
    assert path.startswith("$"), path
    for part in [p for p in path[1:].split(".") if p]:
        data = data[part]
    return data


def path_set(data: dict[str, Any], path: str | None, value: Any) -> Any:
    if path is None:
        return data
    if path == "$":
        return value
    out = copy.deepcopy(data)
    node = out
    parts = path[2:].split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out


def template_fill(spec: Any, data: Any) -> Any:
    if isinstance(spec, dict):
        out = {}
        for key, value in spec.items():
            if key.endswith(".$"):
                out[key[:-2]] = path_get(data, value)
            else:
                out[key] = template_fill(value, data)
        return out
    return spec


def run_machine(machine: dict[str, Any], data: Any, invoke: Callable[[str, Any], Any]) -> Any:
    name = machine["StartAt"]
    while True:
        state = machine["States"][name]
        kind = state["Type"]
        if kind == "Succeed":
            return data
        if kind == "Task":
            params = template_fill(state["Parameters"], data)
            result: Any = {"Payload": invoke(params["FunctionName"], params["Payload"])}
            if "ResultSelector" in state:
                result = template_fill(state["ResultSelector"], result)
            data = path_set(data, state.get("ResultPath", "$"), result)
        elif kind == "Map":
            items = path_get(data, state.get("ItemsPath", "$"))
            results = [run_machine(state["ItemProcessor"], item, invoke) for item in items]
            data = path_set(data, state.get("ResultPath", "$"), results)
        elif kind == "Choice":
            nxt = state["Default"]
            for rule in state["Choices"]:
                if "IsPresent" in rule:
                    try:
                        path_get(data, rule["Variable"])
                        present = True
                    except KeyError:
                        present = False
                    matched = present is rule["IsPresent"]
                else:
                    matched = path_get(data, rule["Variable"]) is rule["BooleanEquals"]
                if matched:
                    nxt = rule["Next"]
                    break
            name = nxt
            continue
        else:
            raise AssertionError(f"state type {kind} not simulated")
        if "OutputPath" in state:
            data = path_get(data, state["OutputPath"])
        if state.get("End"):
            return data
        name = state["Next"]


@pytest.mark.parametrize(
    "given",
    [
        {"route": "servers", "total_segments": 3},
        {"route": "servers"},  # the plan picks the number of segments
        {"route": "servers", "total_segments": 8},  # checkpoints of 3 segments win
    ],
)
def test_state_machine_loops_each_segment_until_done_then_completes(
    template: dict[str, Any], given: dict[str, Any]
) -> None:
    machine = definition(template)
    calls: list[tuple[str, Any]] = []
    rounds = {0: 3, 1: 1, 2: 2}  # invocations each segment needs

    def invoke(function: str, payload: Any) -> Any:
        role = function.rsplit(":", 1)[-1]
        calls.append((role, payload))
        if role == "plan":
            assert payload == given
            return {
                "route": "servers",
                "total_segments": 3,
                "segments": [
                    {"route": "servers", "segment": s, "total_segments": 3} for s in range(3)
                ],
                "routes": [{"route": "servers", "total_segments": 3}],
            }
        if role == "worker":
            rounds[payload["segment"]] -= 1
            return {"done": rounds[payload["segment"]] == 0, "items_written": 10}
        assert role == "complete"
        return {"route": payload["route"], "phase": "backfilled", "enabled_mappings": ["u1"]}

    output = run_machine(machine, dict(given), invoke)

    assert output == {"route": "servers", "phase": "backfilled", "enabled_mappings": ["u1"]}
    workers = [p for role, p in calls if role == "worker"]
    assert sorted(p["segment"] for p in workers) == [0, 0, 0, 1, 2, 2]
    for p in workers:
        assert p == {"route": "servers", "segment": p["segment"], "total_segments": 3}
    assert calls[0][0] == "plan"
    assert calls[-1] == ("complete", {"route": "servers", "total_segments": 3})
    assert rounds == {0: 0, 1: 0, 2: 0}


def test_state_machine_backfills_every_route_for_an_empty_input(template: dict[str, Any]) -> None:
    """{} (DESIGN.md section 9): every route's segments in one Distributed Map, then each
    route completed with its own total; the output lists the completions."""
    machine = definition(template)
    calls: list[tuple[str, Any]] = []
    totals = {"servers": 2, "memberships": 3}

    def invoke(function: str, payload: Any) -> Any:
        role = function.rsplit(":", 1)[-1]
        calls.append((role, payload))
        if role == "plan":
            assert payload == {}
            return {
                "route": None,
                "total_segments": None,
                "segments": [
                    {"route": r, "segment": s, "total_segments": n}
                    for r, n in totals.items()
                    for s in range(n)
                ],
                "routes": [{"route": r, "total_segments": n} for r, n in totals.items()],
            }
        if role == "worker":
            return {"done": True, "items_written": 1}
        assert role == "complete"
        return {"route": payload["route"], "phase": "backfilled"}

    output = run_machine(machine, {}, invoke)

    assert output == [
        {"route": "servers", "phase": "backfilled"},
        {"route": "memberships", "phase": "backfilled"},
    ]
    assert [p for role, p in calls if role == "complete"] == [
        {"route": "servers", "total_segments": 2},
        {"route": "memberships", "total_segments": 3},
    ]
    assert len([p for role, p in calls if role == "worker"]) == 5
