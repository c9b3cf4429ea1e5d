"""A cutover or rollback killed (or failing) half way, on Docker-less moto: a kill is a
BaseException raised at the worst moment, as a process killed there would leave things.
Whatever it left, the journal knows of every change and a re-run finishes the job."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import pytest

from dualwrite.aws import tables
from dualwrite.aws.clients import AwsSettings, Clients
from dualwrite.config import parse_migration
from dualwrite.control import control_table_definition
from dualwrite.cutover import functions as function_adapter
from dualwrite.cutover import repoint, smoke
from dualwrite.cutover.context import CutoverContext
from dualwrite.cutover.journal import Journal
from dualwrite.cutover.results import Status
from dualwrite.cutover.rollback import rollback
from dualwrite.cutover.ssm import SsmParameters
from dualwrite.cutover.switch import CutoverRequest, cutover
from tests.cutover_world import FakeClock, alarms_by_name, make_function, put_alarm, value
from tests.functional.test_cutover_facts import make_table
from tests.functional.test_cutover_functions import env_of

FORCED = CutoverRequest(force=True, reason="test: no reconcile here")


class Kill(BaseException):
    """The process dies here (not an Exception: nothing may catch it)."""


@pytest.fixture
def moto(aws_env: None) -> Iterator[None]:
    from moto import mock_aws

    with mock_aws(config={"lambda": {"use_docker": False}}):
        yield


def world(
    fns: tuple[str, ...] = ("api",), smoke_on: tuple[str, ...] = ("api",)
) -> tuple[Clients, CutoverContext]:
    c = Clients(AwsSettings(region="us-east-1"))
    make_table(c, "old-t")
    make_table(c, "new-t")
    tables.create_table(c.dynamodb, control_table_definition("ctl"))
    for f in fns:
        make_function(c, f)
        c.lambda_.update_function_configuration(
            FunctionName=f, Environment={"Variables": {"TABLE": "old-t"}}
        )
    c.client("ssm").put_parameter(Name="/app/table", Value="old-t", Type="String")
    put_alarm(c, "old-t-throttles", "old-t")
    migration = parse_migration(
        {
            "control_table": "ctl",
            "routes": [{"name": "r", "source": "old-t", "target": "new-t", "mapping": "identity"}],
            "cutover": {
                "functions": list(fns),
                "smoke_tests": [
                    {"function": s, "event": {"a": 1}, "expect": {"a": 1}} for s in smoke_on
                ],
                "watch_seconds": 0,
            },
        }
    )
    clock = FakeClock()
    ctx = CutoverContext.open(
        migration, c, clock=lambda: clock.now().timestamp(), sleep=clock.sleep
    )
    return c, ctx


def kill_after(client: Any, event: str) -> Callable[[], None]:
    """Kill the process right after the AWS call `event` succeeded; returns the revival
    (the next process makes the same calls and lives)."""

    def die(**_kwargs: Any) -> None:
        raise Kill

    client.meta.events.register(f"after-call.{event}", die)
    return lambda: client.meta.events.unregister(f"after-call.{event}", die)


def killed(run: Callable[[], object]) -> None:
    with pytest.raises(Kill):
        run()


# --- D2: the journal hears of a change before it is made ----------------------------------


def test_a_kill_right_after_put_parameter_leaves_it_journaled_and_rollback_restores_it(
    moto: None,
) -> None:
    c, ctx = world()
    revive = kill_after(c.client("ssm"), "ssm.PutParameter")
    killed(lambda: cutover(ctx, FORCED))
    revive()
    assert value(c, "/app/table") == "new-t"

    back = rollback(ctx)

    assert back.status is Status.DONE
    assert value(c, "/app/table") == "old-t"
    assert env_of(c, "api") == {"TABLE": "old-t"}


def test_a_kill_right_after_put_metric_alarm_leaves_the_clone_journaled_and_rollback_deletes_it(
    moto: None,
) -> None:
    c, ctx = world()
    revive = kill_after(c.cloudwatch, "monitoring.PutMetricAlarm")
    killed(lambda: cutover(ctx, FORCED))
    revive()
    assert "new-t-throttles" in alarms_by_name(c)

    back = rollback(ctx)

    assert back.status is Status.DONE
    assert "new-t-throttles" not in alarms_by_name(c)
    assert value(c, "/app/table") == "old-t"


def test_a_kill_between_journaling_a_parameter_and_putting_it_is_harmless(moto: None) -> None:
    c, ctx = world()
    with mock.patch.object(SsmParameters, "put", side_effect=Kill):
        killed(lambda: cutover(ctx, FORCED))
    assert value(c, "/app/table") == "old-t"
    assert Journal(ctx.store).entries()[-1].parameters  # type: ignore[arg-type]

    back = rollback(ctx)

    assert back.status is Status.DONE
    assert value(c, "/app/table") == "old-t"


# --- D3: a rollback is closed only once everything is back --------------------------------


def test_a_rollback_killed_before_the_parameters_and_clones_go_back_can_be_run_again(
    moto: None,
) -> None:
    c, ctx = world()
    assert cutover(ctx, FORCED).status is Status.DONE
    assert value(c, "/app/table") == "new-t"
    with mock.patch("dualwrite.cutover.rollback.undo", side_effect=Kill):
        killed(lambda: rollback(ctx))

    again = rollback(ctx)

    assert again.status is Status.DONE
    assert again.to_json()["already_rolled_back"] is False
    assert value(c, "/app/table") == "old-t"
    assert "new-t-throttles" not in alarms_by_name(c)
    assert rollback(ctx).to_json()["already_rolled_back"] is True


def test_a_rollback_whose_parameters_fail_to_go_back_is_retried_by_the_next(moto: None) -> None:
    c, ctx = world()
    cutover(ctx, FORCED)
    with mock.patch.object(SsmParameters, "put", side_effect=RuntimeError("throttled")):
        failed = rollback(ctx)
    assert failed.status is Status.FAILED
    assert value(c, "/app/table") == "new-t"

    again = rollback(ctx)

    assert again.status is Status.DONE
    assert again.to_json()["already_rolled_back"] is False
    assert value(c, "/app/table") == "old-t"


# --- D1: a cutover killed before its checks finished runs them on a re-run ----------------


def test_a_cutover_killed_after_the_switch_runs_its_checks_on_a_re_run(moto: None) -> None:
    c, ctx = world()
    with mock.patch("dualwrite.cutover.switch.guard_switch", side_effect=Kill):
        killed(lambda: cutover(ctx, FORCED))
    assert env_of(c, "api") == {"TABLE": "new-t"}
    assert value(c, "/app/table") == "old-t"

    again = cutover(ctx, FORCED)

    assert again.status is Status.DONE
    assert again.already_cut_over is False
    assert value(c, "/app/table") == "new-t"
    assert "new-t-throttles" in alarms_by_name(c)
    assert [s.function for s in again.safeguards.smoke] == ["api"]  # type: ignore[union-attr]
    assert Journal(ctx.store).entries()[-1].checked  # type: ignore[arg-type]
    assert cutover(ctx, FORCED).already_cut_over is True


def test_a_re_run_whose_resumed_checks_fail_rolls_everything_back(moto: None) -> None:
    c, ctx = world()
    with mock.patch("dualwrite.cutover.switch.guard_switch", side_effect=Kill):
        killed(lambda: cutover(ctx, FORCED))
    bad = smoke.SmokeResult("api", False, "boom")
    with mock.patch.object(smoke.SmokeRunner, "run", return_value=[bad]):
        again = cutover(ctx, FORCED)

    assert again.status is Status.ROLLED_BACK
    assert env_of(c, "api") == {"TABLE": "old-t"}
    assert value(c, "/app/table") == "old-t"
    assert "new-t-throttles" not in alarms_by_name(c)


# --- D5b: a function that cannot be restored in the automatic rollback -------------------


def test_a_failed_function_restore_in_the_automatic_rollback_is_a_failed_result(
    moto: None,
) -> None:
    c, ctx = world()
    bad = smoke.SmokeResult("api", False, "boom")
    with (
        mock.patch.object(smoke.SmokeRunner, "run", return_value=[bad]),
        mock.patch.object(repoint, "_restore", side_effect=RuntimeError("lambda down")),
    ):
        result = cutover(ctx, FORCED)

    assert result.status is Status.FAILED
    assert result.status.exit_code == 1
    document = result.to_json()
    assert document["status"] == "failed"
    assert "lambda down" in str(document)
    assert env_of(c, "api") == {"TABLE": "new-t"}  # not restored: rollback must be run again


# --- D5a: a smoke test on a function re-pointed before a kill -----------------------------


def test_a_cutover_killed_between_functions_finishes_with_a_smoke_test_on_the_first(
    moto: None,
) -> None:
    c, ctx = world(fns=("a-api", "b-api"), smoke_on=("a-api",))
    original = function_adapter.LambdaFunctions.set_environment

    def set_environment(self: Any, name: str, transform: Any) -> Any:
        if name == "b-api":
            raise Kill
        return original(self, name, transform)

    with mock.patch.object(function_adapter.LambdaFunctions, "set_environment", set_environment):
        killed(lambda: cutover(ctx, FORCED))
    assert env_of(c, "a-api") == {"TABLE": "new-t"}
    assert env_of(c, "b-api") == {"TABLE": "old-t"}

    again = cutover(ctx, FORCED)

    assert again.status is Status.DONE
    assert env_of(c, "b-api") == {"TABLE": "new-t"}
    assert [s.function for s in again.safeguards.smoke] == ["a-api"]  # type: ignore[union-attr]


# --- section 8: the switch of direction, killed at any step -------------------------------


def _saves(store: Any) -> tuple[list[Any], Any]:
    """Count the direction saves that changed something (patch DirectionRecords)."""
    from dualwrite.control.directions import DirectionRecords

    made: list[Any] = []
    original = DirectionRecords.save_direction

    def save(self: Any, route: str, state: Any, *, expected: Any) -> bool:
        ok = original(self, route, state, expected=expected)
        if ok and state != expected:
            made.append(state)
        return ok

    return made, mock.patch.object(DirectionRecords, "save_direction", save)


@pytest.mark.parametrize(
    "event",
    ["dynamodb.PutItem", "lambda.UpdateEventSourceMapping", "lambda.ListEventSourceMappings"],
)
def test_a_cutover_killed_while_switching_direction_finishes_with_the_journaled_T(
    moto: None, event: str
) -> None:
    from tests.reverse_cutover_world import build

    w = build()
    first_at: list[float] = []
    client = w.clients.lambda_ if event.startswith("lambda") else w.clients.dynamodb
    made, counting = _saves(w.store)
    with counting:
        # die at the first such call after the checks passed (the direction step)
        original = cutover_switch_hook()

        def dying(ctx: Any, journal: Any, entry: Any, routes: Any) -> Any:
            first_at.append(entry.at)
            revive = kill_after(client, event)
            try:
                return original(ctx, journal, entry, routes)
            finally:
                revive()

        with mock.patch("dualwrite.cutover.switch.cutover_switch", dying):
            killed(lambda: cutover(w.ctx, FORCED))
        w.clock.sleep(120)  # the re-run comes later: T must not move
        again = cutover(w.ctx, FORCED)

    assert again.status is Status.DONE
    state = w.store.direction("r")
    assert state.switched_at == first_at[0]
    assert len(made) == 1 and made[0] == state  # saved exactly once
    assert w.reverse_uuid is not None
    assert w.mapping(w.reverse_uuid)["State"] == "Enabled"
    entry = Journal(w.store).entries()[-1]
    assert entry.checked and entry.reverse is not None and entry.reverse.complete
    assert cutover(w.ctx, FORCED).already_cut_over is True


def cutover_switch_hook() -> Any:
    from dualwrite.cutover.switch_direction import cutover_switch

    return cutover_switch


@pytest.mark.parametrize("where", ["functions", "direction"])
def test_a_rollback_killed_before_its_direction_is_saved_finishes_with_its_first_T(
    moto: None, where: str
) -> None:
    from dualwrite.cutover.journal import ROLLBACK
    from dualwrite.reverse.direction import Flow
    from tests.reverse_cutover_world import build

    w = build()
    assert cutover(w.ctx, FORCED).status is Status.DONE
    made, counting = _saves(w.store)
    with counting:
        if where == "functions":  # dies right after the first environment went back
            revive = kill_after(w.clients.lambda_, "lambda.UpdateFunctionConfiguration")
            killed(lambda: rollback(w.ctx))
            revive()
        else:  # functions back, journal closed, direction not switched yet
            with mock.patch("dualwrite.cutover.rollback.rollback_switch", side_effect=Kill):
                killed(lambda: rollback(w.ctx))
        attempts = [e for e in Journal(w.store).entries() if e.action == ROLLBACK]
        w.clock.sleep(300)
        again = rollback(w.ctx)

    assert again.status is Status.DONE
    assert env_of(w.clients, "api") == {"TABLE": "old-t"}
    state = w.store.direction("r")
    assert state.direction is Flow.FORWARD and state.switched_at == attempts[0].at
    # the switch back being made (saved once, before any function went back, with the first
    # attempt's T), the cutover's forward drain saved drained, then FORWARD
    assert len(made) == 3
    assert made[0].direction is Flow.REVERSE and made[0].next_at == attempts[0].at
    assert made[-1] == state and state.next_at is None
    assert rollback(w.ctx).already
    assert w.store.direction("r") == state


def test_a_cutover_killed_before_switching_direction_then_rolled_back_loses_no_write(
    moto: None,
) -> None:
    """Killed after re-pointing, before reverse replication was switched on; the operator
    rolls back instead of running the cutover again: the writes the application made to the
    new table in between still reach the old one."""
    from dualwrite.reverse.direction import Flow
    from tests.reverse_cutover_world import build

    w = build(replicator=False)  # in-process moto: a mapped stream's records go to Lambda
    rep = w.replicator()
    with mock.patch("dualwrite.cutover.switch.cutover_switch", side_effect=Kill):
        killed(lambda: cutover(w.ctx, FORCED))
    assert env_of(w.clients, "api") == {"TABLE": "new-t"}
    assert w.store.direction("r").switched_at is None  # never switched
    meanwhile = {"id": {"S": "after-the-kill"}, "v": {"S": "new"}}
    w.clients.dynamodb.put_item(TableName="new-t", Item=meanwhile)

    back = rollback(w.ctx)

    assert back.status is Status.DONE
    assert env_of(w.clients, "api") == {"TABLE": "old-t"}
    (cut,) = [e for e in Journal(w.store).entries() if e.action == "cutover"]
    assert cut.reverse is not None and cut.reverse.complete  # its switch, finished first
    state = w.store.direction("r")
    assert state.direction is Flow.FORWARD and not state.old_drained
    assert rep.apply(w.records("new-t")).routes["r"].reverse_replicated == 1
    assert w.item("old-t", "after-the-kill") == meanwhile


def test_the_applications_writes_once_rolled_back_wait_and_are_never_foreign(moto: None) -> None:
    """Between a rollback's re-pointing and its switch back (killed in between here), the
    application writes the old table again. The replicator, which still trusts the REVERSE
    it read before, holds those records instead of listing foreign writes; once the switch
    back is saved and the reverse direction drained, forward applies them."""
    from dualwrite.reverse.direction import Flow, drained
    from stream_replicator.results import HELD
    from tests.reverse_cutover_world import build, migration

    # moto stamps stream records with the real time and the world's clock is fake, so the
    # clock stays put and the drains are marked as a replicator would mark them
    w = build(migration(overlap_seconds=0, max_lag_seconds=1), replicator=False)
    assert cutover(w.ctx, FORCED).status is Status.DONE
    cut = w.store.direction("r")
    assert w.store.save_direction("r", drained(cut), expected=cut)  # the cutover's drain
    rep = w.replicator(phase_ttl=3600.0)  # trusts what it read for an hour
    w.clients.dynamodb.put_item(TableName="new-t", Item={"id": {"S": "app-1"}})
    assert rep.apply(w.records("new-t")).routes["r"].reverse_replicated == 1
    assert rep.directions.peek("r") == w.store.direction("r")  # REVERSE, cached
    with mock.patch("dualwrite.cutover.rollback.rollback_switch", side_effect=Kill):
        killed(lambda: rollback(w.ctx))
    assert env_of(w.clients, "api") == {"TABLE": "old-t"}
    assert w.store.direction("r").next_at is not None  # the switch back being made
    back_on_old = {"id": {"S": "app-2"}, "v": {"S": "old again"}}
    w.clients.dynamodb.put_item(TableName="old-t", Item=back_on_old)

    records = w.records("old-t")
    held = rep.apply(records)

    (i,) = [n for n, r in enumerate(records) if r["dynamodb"]["Keys"]["id"] == {"S": "app-2"}]
    assert held.outcomes[i] is HELD
    assert held.routes["r"].foreign_writes == 0 and w.store.foreign_writes("r") == []
    assert w.item("new-t", "app-2") is None

    assert rollback(w.ctx).status is Status.DONE  # the switch back, saved
    state = w.store.direction("r")
    assert state.direction is Flow.FORWARD and state.next_at is None
    assert w.store.save_direction("r", drained(state), expected=state)  # reverse's drain
    rep = w.replicator()  # the cached direction expired (phase_ttl): read again
    rep.apply(w.records("old-t"))

    assert w.item("new-t", "app-2") == back_on_old
    assert w.store.foreign_writes("r") == []


def test_a_cached_direction_never_applies_forward_a_write_made_after_the_switch(
    moto: None,
) -> None:
    """The runner trusts a direction it read for phase_interval, but only for records made
    well before that read: a cutover made since may already own a newer record. A writer
    nobody re-pointed writes the old table right after the cutover; the replicator, which
    read "forward, never switched" before it, lists that write as foreign (a fresh read)
    instead of applying it forward over what the application writes the new table."""
    from tests.reverse_cutover_world import build, migration

    w = build(migration(overlap_seconds=0), replicator=False)
    rep = w.replicator(phase_ttl=3600.0)  # trusts what it read for an hour
    w.clients.dynamodb.put_item(TableName="old-t", Item={"id": {"S": "before"}})
    assert rep.apply(w.records("old-t")).routes["r"].applied == 1
    assert rep.directions.peek("r") == w.store.direction("r")  # never switched, cached
    assert cutover(w.ctx, FORCED).status is Status.DONE
    w.clients.dynamodb.put_item(TableName="old-t", Item={"id": {"S": "stray"}, "v": {"S": "x"}})
    stray = [r for r in w.records("old-t") if r["dynamodb"]["Keys"]["id"] == {"S": "stray"}]

    result = rep.apply(stray)

    assert result.routes["r"].foreign_writes == 1 and result.routes["r"].applied == 0
    assert [fw.key for fw in w.store.foreign_writes("r")] == [{"id": {"S": "stray"}}]
    assert w.item("new-t", "stray") is None
