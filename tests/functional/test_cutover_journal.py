"""Cutover and rollback with the journal in the control table (in-process moto): the entry is
written before any change, a crashed cutover can still be rolled back, rollback restores
exactly, is idempotent, refuses when there is nothing to undo, and undoes stacked cutovers."""

from __future__ import annotations

from typing import Any

import pytest

from dualwrite.aws import tables
from dualwrite.aws.clients import Clients
from dualwrite.control import ControlStore, control_table_definition
from dualwrite.cutover.functions import ApplyError, LambdaFunctions, plan_changes
from dualwrite.cutover.journal import APPLIED, APPLYING, REVERTED, Journal
from dualwrite.cutover.repoint import run_cutover, run_rollback
from dualwrite.errors import SafetyGateError
from tests.functional.test_cutover_functions import (
    ENVS,
    RENAMES,
    Wrapper,
    client_error,
    env_of,
    make_functions,
)


class Clock:
    def __init__(self) -> None:
        self.t = 1_800_000_000.0

    def __call__(self) -> float:
        self.t += 1.0
        return self.t


@pytest.fixture
def world(moto_clients: Clients) -> tuple[Clients, Wrapper, LambdaFunctions, Journal]:
    tables.create_table(moto_clients.dynamodb, control_table_definition("ctl"))
    make_functions(moto_clients, ENVS)
    wrapper = Wrapper(moto_clients.lambda_)
    fns = LambdaFunctions(wrapper, sleep=lambda _s: None, wait_timeout=5.0)
    journal = Journal(ControlStore(moto_clients.dynamodb, "ctl", clock=Clock()))
    return moto_clients, wrapper, fns, journal


def plans(fns: LambdaFunctions, names: list[str]) -> Any:
    return plan_changes([fns.get(n) for n in names], RENAMES)


def test_cutover_journals_then_rollback_restores_exactly(world: Any) -> None:
    clients, _wrapper, fns, journal = world
    entry = run_cutover(fns, journal, plans(fns, ["f1", "f2"]), RENAMES, reason=None)
    assert entry.status == APPLIED
    assert [(f.name, f.applied, f.variables) for f in entry.functions] == [
        ("f1", True, ("TABLE",)),
        ("f2", True, ("TABLE_ARN",)),
    ]
    assert entry.functions[0].previous == ENVS["f1"]
    stored = journal.entries()
    assert [e.sk for e in stored] == [entry.sk] and stored[0] == entry

    result = run_rollback(fns, journal)
    assert [e.sk for e in result.undone] == [entry.sk]
    assert sorted(r.function for r in result.restored) == ["f1", "f2"]
    assert env_of(clients, "f1") == ENVS["f1"] and env_of(clients, "f2") == ENVS["f2"]
    again = run_rollback(fns, journal)
    assert again.already and again.restored == ()
    cut, rollback = journal.entries()
    assert cut.rolled_back_by == rollback.sk and rollback.undoes == (cut.sk,)


def test_nothing_to_roll_back_refuses(world: Any) -> None:
    _clients, _wrapper, fns, journal = world
    with pytest.raises(SafetyGateError, match="nothing to roll back"):
        run_rollback(fns, journal)


def test_failed_cutover_is_journaled_as_reverted_and_not_rolled_back(world: Any) -> None:
    clients, wrapper, fns, journal = world
    wrapper.fail_update[2] = client_error("InvalidParameterValueException")
    with pytest.raises(ApplyError):
        run_cutover(fns, journal, plans(fns, ["f1", "f2"]), RENAMES)
    (entry,) = journal.entries()
    assert entry.status == REVERTED and "put back: f1" in (entry.error or "")
    assert env_of(clients, "f1") == ENVS["f1"]
    with pytest.raises(SafetyGateError):
        run_rollback(fns, journal)


def test_a_crashed_cutover_can_be_rolled_back(world: Any) -> None:
    clients, wrapper, fns, journal = world
    real_get = wrapper.get_function_configuration

    def crash_while_confirming_f2(**kw: Any) -> dict[str, Any]:
        last = wrapper.updates[-1]["FunctionName"] if wrapper.updates else None
        if kw["FunctionName"] == "f2" and last == "f2":
            raise KeyboardInterrupt  # the process dies after f2 was updated, before journaling
        return real_get(**kw)

    wrapper.get_function_configuration = crash_while_confirming_f2  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        run_cutover(fns, journal, plans(fns, ["f1", "f2", "f3"]), RENAMES)
    wrapper.get_function_configuration = real_get  # type: ignore[method-assign]
    (entry,) = journal.entries()
    assert entry.status == APPLYING
    assert [f.applied for f in entry.functions] == [True, False, False]
    assert env_of(clients, "f2")["TABLE_ARN"].endswith("/new-t")  # changed, not journaled
    run_rollback(fns, journal)
    for name in ("f1", "f2", "f3"):
        assert env_of(clients, name) == ENVS[name], name


def test_rollback_undoes_stacked_cutovers_and_notes_drift(world: Any) -> None:
    clients, _wrapper, fns, journal = world
    run_cutover(fns, journal, plans(fns, ["f1"]), RENAMES)
    # a later deploy adds a variable, then a second cutover picks up f3
    clients.lambda_.update_function_configuration(
        FunctionName="f1", Environment={"Variables": {**env_of(clients, "f1"), "X": "1"}}
    )
    run_cutover(fns, journal, plans(fns, ["f1", "f3"]), RENAMES)
    result = run_rollback(fns, journal)
    assert len(result.undone) == 2
    assert env_of(clients, "f1") == ENVS["f1"]  # exactly the first journaled environment
    assert env_of(clients, "f3") == ENVS["f3"]
    assert any("f1: X changed since the cutover" in n for n in result.notes)


def test_rollback_carries_on_past_a_failure_and_can_be_rerun(world: Any) -> None:
    clients, wrapper, fns, journal = world
    run_cutover(fns, journal, plans(fns, ["f1", "f2"]), RENAMES)
    wrapper.fail_update[len(wrapper.updates) + 1] = client_error("AccessDeniedException")
    with pytest.raises(Exception, match="rollback incomplete, could not restore: f1"):
        run_rollback(fns, journal)
    assert env_of(clients, "f2") == ENVS["f2"]  # the other one was restored
    assert env_of(clients, "f1") != ENVS["f1"]
    run_rollback(fns, journal)
    assert env_of(clients, "f1") == ENVS["f1"]
