"""The reconcile state machine's steps driven in-process on moto, in the order the ASL runs
them (the state machine itself is executed in tests/ministack/): they find what
`run_reconcile` (the CLI) finds, store it the same way, and the lock keeps executions apart."""

from __future__ import annotations

import json
from typing import Any

import pytest

from dualwrite.aws.clients import Clients
from dualwrite.errors import ConditionFailedError
from reconciler import sfn_lock
from reconciler.job import run_reconcile
from reconciler.sfn_steps import Steps
from tests.functional.test_reconcile_scheduled import _plant
from tests.functional.test_reconcile_support import build_core, by_route, counts

WAIT = {"StartAt": "Hold", "States": {"Hold": {"Type": "Wait", "Seconds": 3600, "End": True}}}


def execution(clients: Clients, name: str) -> str:
    """A running execution (its ARN is what the lock records)."""
    sfn = clients.client("stepfunctions")
    machine = sfn.create_state_machine(
        name=name, definition=json.dumps(WAIT), roleArn="arn:aws:iam::123456789012:role/sfn"
    )["stateMachineArn"]
    return str(sfn.start_execution(stateMachineArn=machine)["executionArn"])


def run_steps(steps: Steps, arn: str, **given: Any) -> dict[str, Any]:
    """Plan, the digest map, Combine, the exact map if any, Finish; every unit stops after
    each page (as a worker out of time would) and is continued."""
    is_running = sfn_lock.execution_running(steps.clients.client("stepfunctions"))
    plan = steps.begin(execution=arn, is_running=is_running, settle_s=0, **given)
    if plan["skip"]:
        return plan
    body = plan
    invocations = 0
    while True:
        for unit in body["units"]:
            while True:
                invocations += 1
                if steps.run_unit(plan["run_id"], body["phase"], unit, should_stop=lambda: True)[
                    "done"
                ]:
                    break
        if body["phase"] == "exact":
            break
        body = steps.combine(plan["run_id"])
        if not body["exact"]:
            break
    results = [r.to_result_json() for r in steps.finish(plan["run_id"], arn)]
    return {"results": results, "plan": plan, "invocations": invocations}


def test_the_steps_find_what_the_cli_finds(moto_clients: Clients) -> None:
    migration, store, data = build_core(moto_clients, servers=9, memberships=30)
    _plant(moto_clients, data)
    cli = by_route(
        run_reconcile(
            migration, moto_clients, store, settle_s=0, publish_metrics=False, segments=2
        ).to_json()
    )
    steps = Steps.of(migration, moto_clients, store)
    arn = execution(moto_clients, "one")
    out = run_steps(steps, arn, total_segments=2)
    assert len(out["plan"]["units"]) == 6  # 2 segments of each source and of CoreTable
    assert out["invocations"] > 6  # units continued after stopping
    for result in out["results"]:
        route = result["route"]
        assert counts(result) == counts(cli[route]), route
        for key in ("source_items", "expected_target_items", "target_items", "parity"):
            assert result[key] == cli[route][key], (route, key)
        record = store.last_reconcile(route)
        assert record is not None and record.parity == cli[route]["parity"]
        assert (record.missing, record.extra, record.mismatched) == counts(cli[route])
        assert record.to_json()["mode"] == "state-machine"
        samples = {json.dumps(d["key"], sort_keys=True) for d in record.to_json()["differences"]}
        assert samples == {json.dumps(d["key"], sort_keys=True) for d in cli[route]["differences"]}
    assert sum(sum(counts(r)) for r in out["results"]) == 3
    assert sfn_lock.holder(store) is None


def test_the_lock_skips_while_its_holder_runs_and_is_taken_over_after(
    moto_clients: Clients,
) -> None:
    migration, store, _ = build_core(moto_clients, servers=3, memberships=6)
    steps = Steps.of(migration, moto_clients, store)
    first, second = execution(moto_clients, "first"), execution(moto_clients, "second")
    is_running = sfn_lock.execution_running(moto_clients.client("stepfunctions"))
    assert steps.begin(execution=first, is_running=is_running)["skip"] is False
    # a retried Plan step of the same execution keeps its run
    again = steps.begin(execution=first, is_running=is_running)
    held = sfn_lock.holder(store)
    assert held is not None and held.execution == first and again["run_id"] == held.run_id
    assert steps.begin(execution=second, is_running=is_running) == {
        "skip": True,
        "running": first,
    }
    assert not sfn_lock.release(store, second)  # not its lock
    moto_clients.client("stepfunctions").stop_execution(executionArn=first)
    out = run_steps(steps, second)
    assert [r["parity"] for r in out["results"]] == [True, True]
    assert sfn_lock.holder(store) is None
    # a failed execution releases its lock (the ASL's ReleaseAfterFailure)
    assert steps.begin(execution=first, is_running=is_running)["skip"] is False
    assert steps.abandon(first) and sfn_lock.holder(store) is None


def test_the_lock_is_ours_when_only_the_reply_to_our_last_put_was_lost(
    moto_clients: Clients, monkeypatch: Any
) -> None:
    """Three lost races, the last one our own put whose reply was lost: the execution holds
    the lock and goes on (it used to name itself the running holder and skip)."""
    _, store, _ = build_core(moto_clients, servers=1, memberships=1)
    real_put, attempts = sfn_lock._put, []

    def put(*args: Any) -> None:
        attempts.append(args)
        if len(attempts) == sfn_lock.ATTEMPTS:
            real_put(*args)  # lands; the reply does not
        raise ConditionFailedError("lost", code="ConditionalCheckFailedException")

    monkeypatch.setattr(sfn_lock, "_put", put)
    assert sfn_lock.acquire(store, "arn:me", "run1", lambda _arn: True) is None
    held = sfn_lock.holder(store)
    assert held is not None and held.execution == "arn:me"
    assert len(attempts) == sfn_lock.ATTEMPTS


def test_a_lock_that_keeps_changing_hands_fails_the_execution_instead_of_naming_it(
    moto_clients: Clients, monkeypatch: Any
) -> None:
    _, store, _ = build_core(moto_clients, servers=1, memberships=1)

    def put(*_args: Any) -> None:  # someone else takes it and drops it again, every time
        raise ConditionFailedError("lost", code="ConditionalCheckFailedException")

    monkeypatch.setattr(sfn_lock, "_put", put)
    with pytest.raises(ConditionFailedError, match="changed hands 3 times"):
        sfn_lock.acquire(store, "arn:me", "run1", lambda _arn: True)
    assert sfn_lock.holder(store) is None
