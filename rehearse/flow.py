"""The README's "Deploy to AWS" order of operations, step by step, against the stack that
`sam deploy` created on the private ministack. STEPS is the order (the cutover, reverse
replication and rollback steps are in rehearse.reverse)."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import yaml

from rehearse import adapt, reverse
from rehearse.adapt import Adaptation
from rehearse.context import REGION, STACK, Rehearsal
from rehearse.probes import (
    REVERSE_MAPPING,
    TARGET,
    counting,
    failure_queue_depth,
    short,
    stack_mappings,
)
from rehearse.steps import Step, StepFailed
from rehearse.tools import ROOT
from rehearse.traffic import start_traffic, stop_traffic

STREAM_PARAMETERS = {"servers": "ServersStreamArn", "memberships": "MembershipsStreamArn"}
INFRA = ROOT / "infra"


def seed(r: Rehearsal) -> str:
    o = r.options
    r.dualwrite("seed", "--servers", str(o.servers), "--memberships", str(o.memberships))
    return f"{o.servers} servers, {o.memberships} memberships"


def plan(r: Rehearsal) -> str:
    routes = r.dualwrite_json("plan")["routes"]
    return ", ".join(f"{x['route']}: {x['estimate']['items']} items" for x in routes)


def prepare(r: Rehearsal) -> str:
    first = r.dualwrite_json("prepare")
    again = r.dualwrite_json("prepare")  # idempotent: a second run changes nothing
    if again["changed"]:
        raise StepFailed(f"a second prepare changed things: {short(again['actions'], 300)}")
    return f"{len(first['actions'])} actions (backups, streams, PITR, tables); a re-run: none"


def harden(r: Rehearsal) -> str:
    """The README's three `aws dynamodb` commands after prepare."""
    ddb = r.clients.dynamodb
    ddb.update_time_to_live(
        TableName=r.migration.control_table,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"},
    )
    ddb.update_continuous_backups(
        TableName="CoreTable",
        PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
    )
    ddb.update_table(TableName="CoreTable", DeletionProtectionEnabled=True)
    return "TTL on the control table; PITR and deletion protection on CoreTable"


def stream_arns(r: Rehearsal) -> str:
    """The sources' stream ARNs and CoreTable's (prepare turned that one on too: reverse
    replication reads it from the cutover on)."""
    ddb = r.clients.dynamodb
    for route in r.migration.routes:
        arn = ddb.describe_table(TableName=route.source)["Table"].get("LatestStreamArn")
        if not arn:
            raise StepFailed(f"{route.source} has no stream after prepare")
        r.stream_arns[route.name] = str(arn)
    core = ddb.describe_table(TableName=TARGET)["Table"]
    if not core.get("LatestStreamArn"):
        raise StepFailed(f"{TARGET} has no stream after prepare")
    view = core.get("StreamSpecification", {}).get("StreamViewType")
    if view != "NEW_AND_OLD_IMAGES":
        raise StepFailed(f"{TARGET}'s stream shows {view}, not NEW_AND_OLD_IMAGES")
    r.core_stream_arn = str(core["LatestStreamArn"])
    shown = {**r.stream_arns, TARGET: r.core_stream_arn}
    return ", ".join(f"{k}: ...{v[-23:]}" for k, v in shown.items())


def sam_build(r: Rehearsal) -> str:
    platform = r.host_platform()
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    done = r.run(
        [str(r.sam), "build", "--template-file", "template.yaml", "--build-dir",
         str(r.build_dir)],
        cwd=INFRA,
        LAMBDA_PLATFORM=platform,
        LAMBDA_PYTHON_VERSION=python,
    )  # fmt: skip
    if done.returncode != 0:
        raise StepFailed(f"sam build exited {done.returncode} (see {r.log})")
    r.adaptations.append(
        Adaptation(
            "the arm64 / CPython 3.12 layer",
            "ministack runs every function with its own interpreter, whatever Runtime and "
            "Architectures say, and cannot load arm64 wheels here",
            f"built with LAMBDA_PLATFORM={platform} LAMBDA_PYTHON_VERSION={python}",
        )
    )
    return f"layer and 9 functions for {platform}, CPython {python} ({done.seconds:.0f}s)"


def sam_deploy(r: Rehearsal) -> str:
    built = yaml.safe_load((r.build_dir / "template.yaml").read_text(encoding="utf-8"))
    adapted = adapt.adapt(built, r.build_dir)
    for name, text in adapted.definitions.items():
        (r.build_dir / name).write_text(text, encoding="utf-8")
    copy = r.build_dir / "template.rehearsal.json"
    copy.write_text(json.dumps(adapted.template, indent=1), encoding="utf-8")
    r.adaptations.extend(adapted.adaptations)
    r.parameters = {STREAM_PARAMETERS[route]: arn for route, arn in r.stream_arns.items()} | {
        "CoreStreamArn": r.core_stream_arn,
        "AlarmEmail": "ops@example.com",
    }
    # `sam deploy --guided`, answered: the parameters it asks for, nothing else changed
    done = r.run(
        [str(r.sam), "deploy", "--template-file", str(copy), "--stack-name", STACK,
         "--resolve-s3", "--capabilities", "CAPABILITY_IAM", "--no-confirm-changeset",
         "--no-fail-on-empty-changeset", "--region", REGION, "--parameter-overrides",
         *(f"{k}={v}" for k, v in r.parameters.items())],
        cwd=INFRA,
    )  # fmt: skip
    if done.returncode != 0:
        raise StepFailed(f"sam deploy exited {done.returncode} (see {r.log})")
    cfn = r.clients.client("cloudformation")
    stack = cfn.describe_stacks(StackName=STACK)["Stacks"][0]
    r.outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    resources = cfn.list_stack_resources(StackName=STACK)["StackResourceSummaries"]
    return (
        f"{stack['StackStatus']}: {len(resources)} resources in {done.seconds:.0f}s, "
        f"{len(adapted.adaptations)} adaptation(s) of the copy"
    )


def mappings_disabled(r: Rehearsal) -> str:
    built = yaml.safe_load((r.build_dir / "template.yaml").read_text(encoding="utf-8"))
    wanted = adapt.disabled_mappings(built, r.parameters)
    mappings = stack_mappings(r)
    lam = r.clients.lambda_
    found = {logical: str(mappings[logical]["State"]) for logical in wanted}
    for logical in wanted:
        m = mappings[logical]
        if m["State"] in ("Enabled", "Enabling"):
            lam.update_event_source_mapping(UUID=m["UUID"], Enabled=False)
            r.adaptations.append(adapt.mapping_workaround(logical))
    reverse = mappings.get(REVERSE_MAPPING)
    if reverse is None or reverse["EventSourceArn"] != r.core_stream_arn:
        raise StepFailed(f"no {REVERSE_MAPPING} on {TARGET}'s stream: {short(reverse, 300)}")
    if reverse.get("FilterCriteria") or reverse.get("MaximumRetryAttempts") != -1:
        raise StepFailed(f"{REVERSE_MAPPING} is not as the template makes it: {short(reverse)}")

    def all_disabled() -> bool:
        states = [lam.get_event_source_mapping(UUID=mappings[x]["UUID"])["State"] for x in wanted]
        return all(s == "Disabled" for s in states)

    r.wait_for(all_disabled, "the mappings to be disabled")
    shown = ", ".join(f"{k} (came up {v})" for k, v in found.items())
    return f"{shown}: Disabled, as the template creates them"


def backfill(r: Rehearsal) -> str:
    """One execution per route, as the README starts them, while live traffic runs."""
    sfn = r.clients.client("stepfunctions")
    machine = r.outputs["BackfillStateMachineArn"]
    start_traffic(r)
    started = {
        route: sfn.start_execution(
            stateMachineArn=machine,
            name=f"{route}-{int(time.time())}",
            input=json.dumps({"route": route, "total_segments": r.options.total_segments}),
        )["executionArn"]
        for route in r.options.routes
    }
    enabled = {}
    for route, arn in started.items():

        def ended(arn: str = arn) -> dict[str, Any] | None:
            desc = sfn.describe_execution(executionArn=arn)
            return None if desc["status"] == "RUNNING" else dict(desc)

        desc = r.wait_for(ended, f"the {route} backfill execution")
        if desc["status"] != "SUCCEEDED":
            raise StepFailed(f"{route}: execution {desc['status']}: {desc.get('error', '')}")
        output = json.loads(desc["output"])
        if output.get("phase") != "backfilled" or not output.get("enabled_mappings"):
            raise StepFailed(f"{route}: the last step did not enable a mapping: {output}")
        enabled[route] = output["enabled_mappings"]
    r.writes_before_backfill_end = r.traffic.ops
    r.writes_at_backfill_end = dict(r.writes)
    return (
        "; ".join(
            f"{route}: SUCCEEDED, last step enabled {len(m)} mapping(s)"
            for route, m in enabled.items()
        )
        + f"; {r.traffic.ops} live writes during it"
    )


def replication(r: Rehearsal) -> str:
    """The deployed replicator, through the mappings the backfill enabled, applies what the
    traffic writes after the backfills ended (nothing else can apply those)."""
    mappings = stack_mappings(r)
    routed = {
        logical: m
        for logical, m in mappings.items()
        if any(m["EventSourceArn"] == r.stream_arns[x] for x in r.options.routes)
    }
    if not all(m["State"] in ("Enabled", "Enabling") for m in routed.values()):
        raise StepFailed(f"mappings not enabled: {[m['State'] for m in routed.values()]}")
    time.sleep(r.options.after_backfill_s)  # paces the traffic, not a synchronisation
    stop_traffic(r)
    after = {
        route.name: r.writes.get(route.source, 0) - r.writes_at_backfill_end.get(route.source, 0)
        for route in r.migration.routes
        if route.name in r.options.routes
    }
    if not all(after.values()):
        raise StepFailed(f"a route had no live write after its backfill ended: {after}")
    routes = [a for x in r.options.routes for a in ("--route", x)]

    def at_parity() -> bool:
        done = r.dualwrite("reconcile", *routes, "--json", ok=(0, 3))
        return done.returncode == 0

    polls = r.wait_for(counting(at_parity), "the replicator to apply the live writes")
    skipped = failure_queue_depth(r)
    if skipped:
        raise StepFailed(f"{skipped} batch(es) of stream records skipped to the failure queue")
    return (
        f"{', '.join(f'{k}: {n}' for k, n in after.items())} live writes after the "
        "backfills, applied by the replicator "
        f"(parity after {polls} check(s)); failure queue empty"
    )


def reconcile_state_machine(r: Rehearsal) -> str:
    sfn = r.clients.client("stepfunctions")
    arn = sfn.start_execution(stateMachineArn=r.outputs["ReconcileStateMachineArn"], input="{}")[
        "executionArn"
    ]

    def ended() -> dict[str, Any] | None:
        desc = sfn.describe_execution(executionArn=arn)
        return None if desc["status"] == "RUNNING" else dict(desc)

    desc = r.wait_for(ended, "the reconcile execution")
    if desc["status"] != "SUCCEEDED":
        raise StepFailed(f"reconcile execution {desc['status']}: {desc.get('error', '')}")
    output = json.loads(desc["output"])
    if output.get("skip"):
        raise StepFailed(f"the reconcile execution found the lock held: {output}")
    routes = output.get("routes") or []
    if output.get("parity") is not True or not routes:
        raise StepFailed(f"the reconcile execution found no parity: {short(output, 300)}")
    shown = ", ".join(f"{x['route']} {x['parity_percent']}%" for x in routes)
    return f"SUCCEEDED (input {{}}, the schedule's): {shown}"


def status(r: Rehearsal) -> str:
    doc = r.dualwrite_json("status")
    wrong = []
    for route in doc["routes"]:
        last = route.get("last_reconcile") or {}
        if route["phase"] != "backfilled" or last.get("parity") is not True:
            wrong.append(f"{route['route']}: phase {route['phase']}, last reconcile {last}")
    if doc["quarantined"] or wrong:
        raise StepFailed(f"quarantined {doc['quarantined']}; {'; '.join(wrong)}")
    return (
        ", ".join(f"{x['route']}: {x['phase']}, last reconcile parity" for x in doc["routes"])
        + " (the state machine's result)"
    )


def reconcile(r: Rehearsal) -> str:
    doc = r.dualwrite_json("reconcile", ok=(0, 3))
    if not doc["parity"]:
        raise StepFailed(f"drift: {short(doc['routes'], 300)}")
    r.parity = doc
    return ", ".join(
        f"{x['route']}: {x['parity_percent']}% of {x['expected_target_items']}"
        for x in doc["routes"]
    )


def cutover_dry_run(r: Rehearsal) -> str:
    doc = r.dualwrite_json("cutover", "--dry-run")
    gate = doc.get("gate") or {}
    if not gate.get("ok"):
        raise StepFailed(f"the gate would refuse: {short(gate, 400)}")
    return f"the gate passes: {len(gate.get('checks', []))} checks"


STEPS: list[Step[Rehearsal]] = [
    Step("1. prepare", "dualwrite seed", "tables", seed),
    Step("1. prepare", "dualwrite plan", "tables", plan),
    Step("1. prepare", "dualwrite prepare", "tables", prepare),
    Step("1. prepare", "aws dynamodb update-* (harden)", "tables", harden),
    Step("1. prepare", "aws dynamodb describe-table (3 stream ARNs)", "tables", stream_arns),
    Step("2. deploy", "sam build (host architecture)", "build", sam_build),
    Step("2. deploy", "sam deploy", "ministack CloudFormation", sam_deploy),
    Step("2. deploy", "mappings created disabled", "deployed stack", mappings_disabled),
    Step("3. backfill", "start-execution per route + live traffic", "deployed stack", backfill),
    Step("3. backfill", "replication through the mappings", "deployed stack", replication),
    Step("5. reconcile", "reconcile state machine", "deployed stack", reconcile_state_machine),
    Step("4. watch", "dualwrite status", "deployed stack", status),
    Step("5. reconcile", "dualwrite reconcile", "deployed stack", reconcile),
    Step("6. cut over", "dualwrite cutover --dry-run", "deployed stack", cutover_dry_run),
    Step("6. cut over", "dualwrite cutover", "deployed stack", reverse.cutover),
    Step(
        "6. cut over",
        "aws lambda get-event-source-mapping (reverse)",
        "deployed stack",
        reverse.reverse_mapping,
    ),
    Step("6. cut over", "application writes to CoreTable", "tables", reverse.writes_to_core),
    Step(
        "6. cut over",
        "reverse replication through the reverse mapping",
        "deployed stack",
        reverse.reverse_replication,
    ),
    Step(
        "6. cut over", "a write to an old table (foreign)", "deployed stack", reverse.foreign_write
    ),
    Step("6. cut over", "dualwrite status (reverse)", "deployed stack", reverse.status_reverse),
    Step("6. cut over", "dualwrite rollback", "deployed stack", reverse.rollback),
    Step("6. cut over", "application writes to the old tables", "tables", reverse.writes_to_old),
    Step(
        "6. cut over",
        "forward replication after the rollback",
        "deployed stack",
        reverse.forward_replication,
    ),
    Step("5. reconcile", "dualwrite reconcile (after rollback)", "deployed stack", reconcile),
]

#: the reduced rehearsal (tests/rehearsal): deploy, one route's backfill, live writes
#: replicated through the deployed mappings
REDUCED: list[Step[Rehearsal]] = [
    s
    for s in STEPS
    if s.run
    in (seed, prepare, stream_arns, sam_build, sam_deploy, mappings_disabled, backfill, replication)
]
