"""Cutover checked the way the plans ask (DESIGN.md section 10), where a review found it
wrong: a function whose environment cannot be decrypted; a later cutover's failed check
putting back an earlier one; published versions behind aliases and functions outside the
cutover that name an old table (listed under references); a rollback with a function
deleted since; two old tables' alarms cloned for one new table; a re-run finishing a
killed cutover's checks through the CLI; a dry run without SSM or Pipes access; smoke
tests by ARN; partial automatic rollbacks; retried updates; names printed as markup."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import yaml
from botocore.exceptions import ClientError

from dualwrite.aws.clients import AwsSettings, Clients
from dualwrite.config import parse_migration
from dualwrite.cutover import smoke
from dualwrite.cutover.context import CutoverContext
from dualwrite.cutover.results import Status
from dualwrite.cutover.rollback import rollback
from dualwrite.cutover.switch import CutoverRequest, cutover
from tests.cutover_world import FakeClock, make_function
from tests.functional.test_cutover_functions import env_of
from tests.functional.test_cutover_kills import Kill, killed, world

FORCED = CutoverRequest(force=True, reason="test: no reconcile here")


@pytest.fixture
def moto(aws_env: None) -> Iterator[None]:
    from moto import mock_aws

    with mock_aws(config={"lambda": {"use_docker": False}}):
        yield


def migration_doc(fns: list[str], smoke_on: list[str], **extra: Any) -> dict[str, Any]:
    """The migration of tests.functional.test_cutover_kills.world, as a YAML document."""
    return {
        "control_table": "ctl",
        "routes": [{"name": "r", "source": "old-t", "target": "new-t", "mapping": "identity"}],
        "cutover": {
            "functions": fns,
            "smoke_tests": [
                {"function": s, "event": {"a": 1}, "expect": {"a": 1}} for s in smoke_on
            ],
            "watch_seconds": 0,
            **extra,
        },
    }


def run_cli(capsys: pytest.CaptureFixture[str], config: Path, *args: str) -> tuple[int, str, str]:
    from dualwrite.cli.app import main

    capsys.readouterr()
    try:
        main(["--config", str(config), *args])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def raise_once(client: Any, event: str, code: str) -> list[int]:
    """The first call of `event` fails with `code` (as AWS answers it), the next ones pass."""
    calls: list[int] = []

    def fail(**_kw: Any) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise ClientError({"Error": {"Code": code, "Message": f"injected {code}"}}, event)

    client.meta.events.register(f"before-call.{event}", fail)
    return calls


def deny(client: Any, event: str) -> None:
    def fail(**_kw: Any) -> None:
        raise ClientError(
            {"Error": {"Code": "AccessDeniedException", "Message": "not allowed"}}, event
        )

    client.meta.events.register(f"before-call.{event}", fail)


# --- 1. `cutover` re-run after a kill between the switch and its checks (CLI) --------------


def test_cli_cutover_rerun_after_a_kill_resumes_checks_and_exits_0(
    moto: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A cutover killed after the switch, before its checks: the core resumes the checks on
    a re-run (status done), but cmd_cutover.show_cutover asserts `result.gate is not None`
    and the resumed result carries no gate: the CLI dies with 'unexpected AssertionError',
    exit 1, after printing {"status": "done"} under --json."""
    _, ctx = world()
    with mock.patch("dualwrite.cutover.switch.guard_switch", side_effect=Kill):
        killed(lambda: cutover(ctx, FORCED))
    config = tmp_path / "dualwrite.yaml"
    config.write_text(yaml.safe_dump(migration_doc(["api"], ["api"])))

    code, out, err = run_cli(capsys, config, "cutover", "--force", "--reason", "x", "--json")

    assert "AssertionError" not in err
    assert json.loads(out)["status"] == "done"
    assert code == 0, err


# --- 2. rollback's report after a retried update ----------------------------------------


def test_rollback_reports_each_restored_function_once_after_a_retried_update(
    moto: None,
) -> None:
    """`_restore` (repoint.py) appends to `restored` (and `notes`) each time its transform
    runs; LambdaFunctions.set_environment re-runs the transform on every retry
    (ResourceConflictException: an update in progress). So a rollback whose update was
    retried once lists the function twice under `restored` and says '2 updated'."""
    c, ctx = world()
    assert cutover(ctx, FORCED).status is Status.DONE
    raise_once(c.lambda_, "lambda.UpdateFunctionConfiguration", "ResourceConflictException")

    result = rollback(ctx)

    assert result.status is Status.DONE
    assert env_of(c, "api") == {"TABLE": "old-t"}
    assert result.to_json()["restored"] == [{"function": "api", "variables": ["TABLE"]}]


# --- 3. a dry run without ssm:DescribeParameters ----------------------------------------


def test_dry_run_without_ssm_permission_reports_instead_of_failing(moto: None) -> None:
    """references.py: 'A kind the caller may not read is reported in Discovery.skipped, not
    fatal: discovery only informs the plan'. But cutover --dry-run runs precheck first
    (safeguards.precheck -> SsmParameters.plan, no error handling) and dies with
    AwsError 'DescribeParameters: AccessDeniedException' (exit 1) before listing anything."""
    c, ctx = world()
    deny(c.client("ssm"), "ssm.DescribeParameters")

    result = cutover(ctx, CutoverRequest(dry_run=True))

    assert result.status is Status.DONE and result.dry_run
    assert "ssm_parameter" in [s.kind for s in result.references_skipped]
    assert env_of(c, "api") == {"TABLE": "old-t"}


# --- 4. a later cutover's failed check rolls back an earlier, healthy cutover ------------


def after_a_first_cutover_a_straggler() -> tuple[Clients, CutoverContext]:
    """`api` cut over and checked; then a straggler `worker` still naming the old table, and
    the context of a second cutover that re-points both, smoke-testing `worker`."""
    c, ctx = world()
    assert cutover(ctx, FORCED).status is Status.DONE
    assert env_of(c, "api") == {"TABLE": "new-t"}
    make_function(c, "worker")
    c.lambda_.update_function_configuration(
        FunctionName="worker", Environment={"Variables": {"TABLE": "old-t"}}
    )
    m = parse_migration(migration_doc(["api", "worker"], ["worker"]))
    clock = FakeClock()
    ctx2 = CutoverContext.open(m, c, clock=lambda: clock.now().timestamp(), sleep=clock.sleep)
    return c, ctx2


def test_a_second_cutovers_failed_smoke_test_leaves_the_first_cutover_in_place(
    moto: None,
) -> None:
    """A first cutover re-pointed `api` and passed its checks. Later a straggler `worker`
    still naming the old table is cut over by a second run; its smoke test fails. The
    automatic rollback (switch.check_switch -> rollback.put_back -> run_rollback) undoes
    EVERY active cutover, so the healthy `api` is sent back to the old table too."""
    c, ctx2 = after_a_first_cutover_a_straggler()
    bad = smoke.SmokeResult("worker", False, "boom")
    with mock.patch.object(smoke.SmokeRunner, "run", return_value=[bad]):
        second = cutover(ctx2, FORCED)

    assert second.status is Status.ROLLED_BACK
    assert env_of(c, "worker") == {"TABLE": "old-t"}
    assert env_of(c, "api") == {"TABLE": "new-t"}  # the first cutover was not this one's


def test_a_partial_put_back_killed_once_its_entry_is_closed_owes_no_switch_back(
    moto: None,
) -> None:
    """The put-back of a failing later cutover closes its rollback entry, then journaled
    the "no switch" marker in a second save. Killed between the two, the journal held a
    closed rollback without a switch: rollback.owed_switch_back then named it, and the next
    cutover or rollback switched replication back to forward under the first cutover,
    which is still in effect (its new-table writes no longer reached the old tables)."""
    from dualwrite.cutover import journal as journal_mod
    from dualwrite.cutover.journal import ROLLBACK
    from dualwrite.cutover.rollback import owed_switch_back

    c, ctx2 = after_a_first_cutover_a_straggler()
    bad = smoke.SmokeResult("worker", False, "boom")
    real_save = journal_mod.Journal.save
    closed: list[bool] = []

    def save(self: Any, entry: Any) -> Any:
        if closed:  # the process dies at the next save after the rollback is closed
            raise Kill
        out = real_save(self, entry)
        if entry.action == ROLLBACK and entry.status == journal_mod.APPLIED:
            closed.append(True)
        return out

    with (
        mock.patch.object(smoke.SmokeRunner, "run", return_value=[bad]),
        mock.patch.object(journal_mod.Journal, "save", save),
        contextlib.suppress(Kill),
    ):  # killed after the close, or not at all
        cutover(ctx2, FORCED)

    assert closed, "the put-back never closed its rollback entry"
    assert ctx2.store is not None
    entries = journal_mod.Journal(ctx2.store).entries()
    assert owed_switch_back(entries) is None
    assert env_of(c, "worker") == {"TABLE": "old-t"}
    assert env_of(c, "api") == {"TABLE": "new-t"}


# --- 5. rollback after a re-pointed function was deleted --------------------------------


def test_rollback_completes_when_a_re_pointed_function_was_deleted_since(moto: None) -> None:
    """During the observation window a re-pointed function is deleted. rollback
    (repoint.run_rollback) counts its NotFound as a failure: status failed, the cutover is
    never marked rolled back and the switch back to forward never happens, on every re-run
    (the function will never come back). SSM parameters that are gone are a note
    ("no longer exists: not restored"), a deleted function should be the same."""
    c, ctx = world(fns=("api", "worker"), smoke_on=("api",))
    assert cutover(ctx, FORCED).status is Status.DONE
    c.lambda_.delete_function(FunctionName="worker")

    first = rollback(ctx)
    again = rollback(ctx)

    assert env_of(c, "api") == {"TABLE": "old-t"}
    assert (first.status, again.status) != (Status.FAILED, Status.FAILED), again.to_json()
    assert first.status is Status.DONE, first.to_json()


# --- 6. a smoke test that names its function by ARN -------------------------------------


def test_a_smoke_test_naming_a_re_pointed_function_by_arn_is_accepted(moto: None) -> None:
    """Lambda takes a function's name or ARN everywhere (Invoke too), and cutover.functions
    accepts an ARN. smoke.smoke_test_problems compares the test's `function` with the
    re-pointed functions' *names* only, so a smoke test on the ARN of the very function
    being re-pointed is refused: ConfigError 'function arn:...:function:api is not
    re-pointed by this cutover (re-pointed: api)', exit 2, nothing cut over."""
    c, _ = world()
    arn = c.lambda_.get_function_configuration(FunctionName="api")["FunctionArn"]
    doc = migration_doc([arn], [])
    doc["cutover"]["smoke_tests"] = [{"function": arn, "event": {"a": 1}, "expect": {"a": 1}}]
    clock = FakeClock()
    ctx = CutoverContext.open(
        parse_migration(doc), c, clock=lambda: clock.now().timestamp(), sleep=clock.sleep
    )

    result = cutover(ctx, FORCED)

    assert result.status is Status.DONE
    assert env_of(c, "api") == {"TABLE": "new-t"}


# --- 7. a kind whose endpoint cannot be reached ------------------------------------------


def test_references_skip_a_service_whose_endpoint_cannot_be_reached(moto: None) -> None:
    """ReferenceScanner.discover skips a kind on AwsError only. An endpoint that cannot be
    reached (EventBridge Pipes is not offered in every region; a VPC without that
    endpoint) is translated to EndpointError, which is no AwsError: `plan` and
    `cutover --dry-run` die ('cannot reach the AWS endpoint') instead of listing the five
    other kinds and noting the sixth as skipped."""
    from botocore.exceptions import EndpointConnectionError

    from dualwrite.cutover.references import PIPE, discover_references
    from tests.functional.test_cutover_references_aws import PAIRS, build_world

    c = Clients(AwsSettings(region="us-east-1"))
    build_world(c)

    def unreachable(**_kw: Any) -> None:
        raise EndpointConnectionError(endpoint_url="https://pipes.us-east-1.amazonaws.com/")

    c.client("pipes").meta.events.register("before-call.pipes.ListPipes", unreachable)

    found = discover_references(c, PAIRS)

    assert [s.kind for s in found.skipped] == [PIPE]
    assert any(r.name == "orders-throttles" for r in found.references)


# --- 8. a function outside cutover.functions that names an old table -------------------


def test_dry_run_lists_a_function_outside_the_re_pointed_ones_that_names_an_old_table(
    moto: None,
) -> None:
    """DESIGN section 4: `references` is 'every place outside the re-pointed functions that
    names an old table'. A Lambda function that is not in cutover.functions (discover off)
    with TABLE=old-t keeps writing the old table after cutover (a foreign writer), yet
    cutover --dry-run lists nothing about it: the scanner (references.py) looks at alarms,
    dashboards, SSM, Step Functions, ECS and Pipes only, never at Lambda environments.
    (decommission finds it 7 days later, names_of_old_tables.)"""
    c, ctx = world()
    make_function(c, "batch")
    c.lambda_.update_function_configuration(
        FunctionName="batch", Environment={"Variables": {"TABLE": "old-t"}}
    )

    result = cutover(ctx, CutoverRequest(dry_run=True))

    assert [p.function for p in result.plans] == ["api"]
    named = [r for r in result.to_json()["references"] if "batch" in r["name"]]
    assert named, result.to_json()["references"]


# --- 9. names printed as rich markup ------------------------------------------------------


def bracket_world(tmp_path: Path) -> tuple[Clients, Path]:
    from tests.cutover_world import put_alarm

    c, _ = world()
    put_alarm(c, "api-latency", "old-t")
    put_alarm(c, "[prod] old-t", "old-t")
    config = tmp_path / "dualwrite.yaml"
    config.write_text(yaml.safe_dump(migration_doc(["api"], ["api"])))
    return c, config


def test_cli_dry_run_lists_an_alarm_name_with_brackets_as_it_is(
    moto: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """references.references_table adds alarm names as rich table cells, parsed as markup:
    an alarm called '[prod] old-t' is listed as ' old-t' ('[prod]' taken for a style)."""
    _, config = bracket_world(tmp_path)
    code, dry, _ = run_cli(capsys, config, "cutover", "--dry-run")
    assert code == 0
    assert "[prod] old-t" in dry


def test_cli_cutover_names_an_alarm_clone_as_it_is_called(
    moto: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """alarms.clone_name names a clone '<name> [<new table>]' when the alarm's name does not
    name the old table; cutover_views.say_safeguards prints
    f"alarm {clone.source} cloned as {clone.name}" as rich markup, so '[new-t]' vanishes and
    the operator is told the clone is called 'api-latency', the original's own name."""
    c, config = bracket_world(tmp_path)
    code, out, err = run_cli(capsys, config, "cutover", "--force", "--reason", "x")
    assert code == 0, err
    names = [a["AlarmName"] for a in c.cloudwatch.describe_alarms()["MetricAlarms"]]
    assert "api-latency [new-t]" in names
    assert "cloned as api-latency [new-t]" in out


# --- 10. a published version behind an alias still names the old table ------------------


def test_dry_run_tells_of_an_alias_whose_published_version_names_the_old_table(
    moto: None,
) -> None:
    """cutover re-points $LATEST only (functions.LambdaFunctions.get/list_all read the
    unqualified configuration). A function served through an alias (SAM AutoPublishAlias)
    runs an immutable published version whose environment still says TABLE=old-t: after
    the cutover its traffic keeps going to the old table, while the smoke test invokes
    $LATEST and passes. Neither the plan, nor the warnings, nor `references` of
    cutover --dry-run say anything about the alias or its version."""
    c, ctx = world()
    version = c.lambda_.publish_version(FunctionName="api")["Version"]
    c.lambda_.create_alias(FunctionName="api", Name="prod", FunctionVersion=version)
    assert c.lambda_.get_function_configuration(FunctionName="api", Qualifier="prod")[
        "Environment"
    ]["Variables"] == {"TABLE": "old-t"}

    result = cutover(ctx, CutoverRequest(dry_run=True))

    document = json.dumps({k: result.to_json()[k] for k in ("references", "warnings", "changes")})
    assert "prod" in document or f"api:{version}" in document, document


# --- 11. alarm clones of two old tables that share one new table -------------------------


def test_alarms_of_two_old_tables_merged_into_one_target_get_a_clone_each(moto: None) -> None:
    """The CoreTable consolidation (ServersTable + UserMembershipTable -> CoreTable): each
    old table has its own throttle alarm, named after it, with its own threshold.
    alarms.clone_name renames the table inside the name, so both clones are called
    'CoreTable-throttles'; AlarmClones.clone finds the first clone existing (its own tag)
    and overwrites it with the second: one alarm is left, with the second's threshold,
    and the first old table's monitoring is silently lost."""
    from dualwrite.cutover.alarms import AlarmClones
    from dualwrite.cutover.functions import TablePair
    from tests.cutover_world import put_alarm

    c = Clients(AwsSettings(region="us-east-1"))
    arn = "arn:aws:dynamodb:us-east-1:123456789012:table/"
    pairs = [
        TablePair("ServersTable", "CoreTable", arn + "ServersTable", arn + "CoreTable"),
        TablePair(
            "UserMembershipTable", "CoreTable", arn + "UserMembershipTable", arn + "CoreTable"
        ),
    ]
    put_alarm(c, "ServersTable-throttles", "ServersTable", threshold=5)
    put_alarm(c, "UserMembershipTable-throttles", "UserMembershipTable", threshold=50)

    made = AlarmClones(c.cloudwatch).clone(pairs)

    clones = {
        a["AlarmName"]: a["Threshold"]
        for a in c.cloudwatch.describe_alarms()["MetricAlarms"]
        if a["Dimensions"] == [{"Name": "TableName", "Value": "CoreTable"}]
    }
    assert len({m.name for m in made.clones}) == 2, made
    assert sorted(clones.values()) == [5, 50], clones


# --- 12. many re-pointed functions: the journal entry outgrows a DynamoDB item ----------


# --- 13. an ECS service that runs an older task definition revision ---------------------


# --- 14. an alarm that goes to ALARM and back between two checks of the watch -----------


# --- 15. a listed function whose environment cannot be decrypted ------------------------


def test_a_listed_function_whose_environment_cannot_be_read_is_not_silently_skipped(
    moto: None,
) -> None:
    """With a customer-managed KMS key the caller may not decrypt, Lambda answers
    GetFunctionConfiguration with Environment = {"Error": {...}} and no Variables.
    functions._env_of reads that as an empty environment: `api`, listed in
    cutover.functions and naming old-t, is 'not naming a source table', nothing is
    re-pointed, and the cutover is recorded as done: the function stays on the old table."""
    from dualwrite.errors import DualwriteError

    c, ctx = world(smoke_on=())

    def encrypted(parsed: dict[str, Any], **_kw: Any) -> None:
        if "Environment" in parsed:
            parsed["Environment"] = {
                "Error": {"ErrorCode": "AccessDeniedException", "Message": "kms:Decrypt denied"}
            }

    c.lambda_.meta.events.register("after-call.lambda.GetFunctionConfiguration", encrypted)

    try:
        result = cutover(ctx, FORCED)
    except DualwriteError as exc:  # a clear refusal naming the function is fine
        assert "api" in str(exc)
        return
    assert result.status is not Status.DONE, result.to_json()


# --- 16. an automatic rollback that could not put everything back ------------------------


def test_a_partial_automatic_rollback_does_not_claim_rolled_back(moto: None) -> None:
    """The smoke test fails and the automatic rollback cannot delete the alarm clone
    (cloudwatch:DeleteAlarms denied): status is `failed` (exit 1), as it should be, but the
    JSON still says "rolled_back": true (results.CutoverResult.to_json sets it whenever a
    rollback ran) and the CLI prints 'cutover rolled back: ...'. A script reading
    `rolled_back` concludes that every change was put back; the clone new-t-throttles is
    still there."""
    from tests.cutover_world import alarms_by_name

    c, ctx = world()
    deny(c.cloudwatch, "cloudwatch.DeleteAlarms")
    bad = smoke.SmokeResult("api", False, "boom")
    with mock.patch.object(smoke.SmokeRunner, "run", return_value=[bad]):
        result = cutover(ctx, FORCED)

    assert result.status is Status.FAILED
    assert "new-t-throttles" in alarms_by_name(c)
    assert result.to_json()["rolled_back"] is False


def test_discover_cuts_over_sixty_functions_with_large_environments(moto: None) -> None:
    """run_cutover journals every planned function's whole environment, before and after,
    in ONE control-table item (journal.begin/save -> store.put). Lambda allows 4 KB of
    environment per function, so ~60 functions with full environments (SAM Globals shared
    by a whole account, `discover: true`) pass DynamoDB's 400 KB item limit: the cutover
    cannot be made at all and stops with a raw 'ValidationException: Item size has
    exceeded the maximum allowed size' (exit 1)."""
    c, _ = world(fns=(), smoke_on=())
    filler = {f"SETTING_{i:02}": "x" * 90 for i in range(40)}  # ~3.9 KB, under Lambda's 4 KB
    for i in range(60):
        make_function(c, f"fn-{i:02}")
        c.lambda_.update_function_configuration(
            FunctionName=f"fn-{i:02}", Environment={"Variables": {"TABLE": "old-t", **filler}}
        )
    m = parse_migration({**migration_doc([], []), "cutover": {"discover": True}})
    clock = FakeClock()
    ctx = CutoverContext.open(m, c, clock=lambda: clock.now().timestamp(), sleep=clock.sleep)

    result = cutover(ctx, FORCED)

    assert result.status is Status.DONE, result.to_json().get("error")
    assert env_of(c, "fn-59")["TABLE"] == "new-t"


def test_references_list_the_task_definition_an_ecs_service_runs(moto: None) -> None:
    """ReferenceScanner.task_definitions reads only the latest ACTIVE revision of each
    family ('older ones are history'). A service deploys a chosen revision, not the
    latest: here revision 2 (new table) is registered but the running service is still
    on revision 1, which names the old table. Nothing is listed, though that service
    keeps writing the old table after cutover."""
    from dualwrite.cutover.references import TASK_DEFINITION, discover_references
    from tests.functional.test_cutover_references_aws import PAIRS

    c = Clients(AwsSettings(region="us-east-1"))
    ecs = c.client("ecs")
    arns = [
        ecs.register_task_definition(
            family="api",
            containerDefinitions=[
                {
                    "name": "web",
                    "image": "app:1",
                    "memory": 128,
                    "environment": [{"name": "TABLE", "value": table}],
                }
            ],
        )["taskDefinition"]["taskDefinitionArn"]
        for table in ("orders", "orders-v2")
    ]
    ecs.create_cluster(clusterName="prod")
    ecs.create_service(cluster="prod", serviceName="api", taskDefinition=arns[0], desiredCount=2)

    found = discover_references(c, PAIRS)

    assert [r.name for r in found.references if r.kind == TASK_DEFINITION] == ["api:1"]
