"""Lambda re-pointing on in-process moto: all or nothing with put-back, ResourceConflict and
RevisionId retries, LastUpdateStatus waits, ListFunctions pagination."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import pytest
from botocore.exceptions import ClientError

from dualwrite.aws.clients import Clients
from dualwrite.cutover.functions import (
    ApplyError,
    LambdaFunctions,
    Renames,
    TablePair,
    apply_all,
    candidates,
    plan_changes,
    repoint,
)
from dualwrite.errors import AwsError, ConfigError

ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/"
RENAMES = Renames.of([TablePair("old-t", "new-t", ARN + "old-t", ARN + "new-t")])


def zip_code() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("h.py", "def h(event, context):\n    return None\n")
    return buf.getvalue()


def make_functions(clients: Clients, envs: dict[str, dict[str, str]]) -> None:
    role = clients.client("iam").create_role(
        RoleName="fn-role", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17"})
    )["Role"]["Arn"]
    for name, env in envs.items():
        clients.lambda_.create_function(
            FunctionName=name,
            Runtime="python3.11",
            Role=role,
            Handler="h.h",
            Code={"ZipFile": zip_code()},
            Environment={"Variables": env},
        )


def env_of(clients: Clients, name: str) -> dict[str, str]:
    config = clients.lambda_.get_function_configuration(FunctionName=name)
    return dict(config["Environment"]["Variables"])


def client_error(code: str, op: str = "UpdateFunctionConfiguration") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": f"injected {code}"}}, op)


class Wrapper:
    """A Lambda client that delegates to moto and lets a test inject behaviour."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.updates: list[dict[str, Any]] = []
        self.fail_update: dict[int, ClientError] = {}  # n-th update call (1-based) -> error
        self.status_after_update: list[str] = []  # LastUpdateStatus answers after an update
        self.revision: dict[str, int] = {}
        self.use_revisions = False
        self.before_update: Any = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def get_function_configuration(self, **kw: Any) -> dict[str, Any]:
        config = dict(self.real.get_function_configuration(**kw))
        if self.use_revisions:
            config["RevisionId"] = f"rev-{self.revision.get(kw['FunctionName'], 0)}"
        if self.status_after_update:
            config["LastUpdateStatus"] = self.status_after_update.pop(0)
            if config["LastUpdateStatus"] == "Failed":
                config["LastUpdateStatusReason"] = "injected: KMS key disabled"
        return config

    def update_function_configuration(self, **kw: Any) -> dict[str, Any]:
        self.updates.append(kw)
        n = len(self.updates)
        if self.before_update is not None:
            self.before_update(n, kw)
        if n in self.fail_update:
            raise self.fail_update[n]
        name = kw["FunctionName"]
        if self.use_revisions:
            if kw.get("RevisionId") != f"rev-{self.revision.get(name, 0)}":
                raise client_error("PreconditionFailedException")
            self.revision[name] = self.revision.get(name, 0) + 1
        return dict(self.real.update_function_configuration(**kw))


ENVS = {
    "f1": {"TABLE": "old-t", "LEVEL": "INFO"},
    "f2": {"TABLE_ARN": ARN + "old-t", "BUS": "old-t-events"},
    "f3": {"T": "old-t"},
    "f4": {"A": "old-t", "B": "keep"},
}


@pytest.fixture
def world(moto_clients: Clients) -> tuple[Clients, Wrapper, LambdaFunctions]:
    make_functions(moto_clients, ENVS)
    wrapper = Wrapper(moto_clients.lambda_)
    slept: list[float] = []
    fns = LambdaFunctions(wrapper, sleep=slept.append, wait_timeout=5.0)
    fns.slept = slept  # type: ignore[attr-defined]
    return moto_clients, wrapper, fns


def steps(names: list[str]) -> list[tuple[str, Any]]:
    return [(n, lambda env: repoint(env, RENAMES)) for n in names]


def test_everything_changes_when_every_update_succeeds(world: Any) -> None:
    clients, wrapper, fns = world
    done = apply_all(fns, steps(["f1", "f2", "f3", "f4"]))
    assert [a.changed for a in done] == [True] * 4
    assert env_of(clients, "f1") == {"TABLE": "new-t", "LEVEL": "INFO"}
    assert env_of(clients, "f2") == {"TABLE_ARN": ARN + "new-t", "BUS": "old-t-events"}
    assert env_of(clients, "f4") == {"A": "new-t", "B": "keep"}
    assert done[0].previous == ENVS["f1"]
    assert all("RevisionId" not in u for u in wrapper.updates)  # moto returns none


@pytest.mark.parametrize("failing", [1, 3])
def test_all_or_nothing_puts_back_what_changed(world: Any, failing: int) -> None:
    clients, wrapper, fns = world
    wrapper.fail_update[failing] = client_error("InvalidParameterValueException")
    with pytest.raises(ApplyError) as caught:
        apply_all(fns, steps(["f1", "f2", "f3", "f4"]))
    names = ["f1", "f2", "f3", "f4"]
    assert caught.value.put_back == list(reversed(names[: failing - 1]))
    assert caught.value.stuck == []
    assert f"updating function {names[failing - 1]} failed" in str(caught.value)
    for name, env in ENVS.items():
        assert env_of(clients, name) == env, name


def test_a_failing_put_back_is_reported(world: Any) -> None:
    clients, wrapper, fns = world
    wrapper.fail_update[3] = client_error("InvalidParameterValueException")
    wrapper.fail_update[4] = client_error("AccessDeniedException")  # putting f2 back
    with pytest.raises(ApplyError) as caught:
        apply_all(fns, steps(["f1", "f2", "f3"]))
    assert caught.value.put_back == ["f1"]
    assert [s.split(" ")[0] for s in caught.value.stuck] == ["f2"]
    assert "COULD NOT put back: f2" in str(caught.value)
    assert env_of(clients, "f1") == ENVS["f1"]
    assert env_of(clients, "f2")["TABLE_ARN"] == ARN + "new-t"


def test_resource_conflict_is_retried_with_backoff(world: Any) -> None:
    clients, wrapper, fns = world
    wrapper.fail_update[1] = client_error("ResourceConflictException")
    wrapper.fail_update[2] = client_error("ResourceConflictException")
    done = apply_all(fns, steps(["f1"]))
    assert done[0].changed and len(wrapper.updates) == 3
    assert len(fns.slept) == 2 and all(s >= 0 for s in fns.slept)
    assert env_of(clients, "f1")["TABLE"] == "new-t"


def test_resource_conflict_gives_up_after_max_attempts(world: Any) -> None:
    clients, wrapper, fns = world
    fns.max_attempts = 3
    for n in range(1, 10):
        wrapper.fail_update[n] = client_error("ResourceConflictException")
    with pytest.raises(AwsError) as caught:
        fns.set_environment("f1", lambda env: repoint(env, RENAMES))
    assert caught.value.code == "ResourceConflictException"
    assert len(wrapper.updates) == 3
    assert env_of(clients, "f1") == ENVS["f1"]


def test_revision_id_is_sent_and_a_concurrent_change_is_merged(world: Any) -> None:
    clients, wrapper, fns = world
    wrapper.use_revisions = True

    def someone_else_deploys(n: int, kw: dict[str, Any]) -> None:
        if n == 1:  # between our read and our write, another deploy adds a variable
            wrapper.real.update_function_configuration(
                FunctionName="f1", Environment={"Variables": {**ENVS["f1"], "NEW_FLAG": "on"}}
            )
            wrapper.revision["f1"] = 7

    wrapper.before_update = someone_else_deploys
    applied = fns.set_environment("f1", lambda env: repoint(env, RENAMES))
    assert [u.get("RevisionId") for u in wrapper.updates] == ["rev-0", "rev-7"]
    assert env_of(clients, "f1") == {"TABLE": "new-t", "LEVEL": "INFO", "NEW_FLAG": "on"}
    assert applied.previous == {**ENVS["f1"], "NEW_FLAG": "on"}


def test_waits_for_last_update_status_successful(world: Any) -> None:
    clients, wrapper, fns = world
    # first read (before the update) then three polls
    wrapper.status_after_update = ["Successful", "InProgress", "InProgress", "Successful"]
    fns.set_environment("f3", lambda env: repoint(env, RENAMES))
    assert wrapper.status_after_update == []
    assert len(fns.slept) == 2
    assert env_of(clients, "f3") == {"T": "new-t"}


def test_failed_update_status_is_an_error_and_is_put_back(world: Any) -> None:
    clients, wrapper, fns = world
    wrapper.status_after_update = ["Successful", "Successful", "Successful", "Failed"]
    with pytest.raises(ApplyError) as caught:
        apply_all(fns, steps(["f1", "f2"]))
    assert "injected: KMS key disabled" in str(caught.value)
    assert caught.value.put_back == ["f2", "f1"]  # f2's unconfirmed update too
    for name in ("f1", "f2"):
        assert env_of(clients, name) == ENVS[name]


def test_nothing_to_change_writes_nothing(world: Any) -> None:
    _clients, wrapper, fns = world
    applied = fns.set_environment("f1", lambda env: env)
    assert not applied.changed and wrapper.updates == []


class Paged(Wrapper):
    def list_functions(self, **kw: Any) -> dict[str, Any]:
        everything = self.real.list_functions()["Functions"]
        everything.sort(key=lambda f: f["FunctionName"])
        start = int(kw.get("Marker", "0"))
        page = everything[start : start + 2]
        out: dict[str, Any] = {"Functions": page}
        if start + 2 < len(everything):
            out["NextMarker"] = str(start + 2)
        return out


def test_discovery_follows_pagination_and_listed_names(moto_clients: Clients) -> None:
    envs = {f"fn{i}": {"T": "old-t" if i % 2 else "other"} for i in range(5)}
    make_functions(moto_clients, envs)
    fns = LambdaFunctions(Paged(moto_clients.lambda_))
    found = candidates(fns, [], discover=True)
    assert [f.name for f in found] == [f"fn{i}" for i in range(5)]
    assert [p.function for p in plan_changes(found, RENAMES)] == ["fn1", "fn3"]
    listed = candidates(fns, ["fn1", "fn2"], discover=False)
    assert [f.name for f in listed] == ["fn1", "fn2"]
    with pytest.raises(ConfigError, match="function nope does not exist"):
        candidates(fns, ["nope"], discover=False)


def test_a_failing_journal_write_puts_back_the_function_it_could_not_record(world: Any) -> None:
    clients, _wrapper, fns = world
    recorded: list[str] = []

    def journal(applied: Any) -> None:
        if len(recorded) == 1:
            raise RuntimeError("control table unavailable")
        recorded.append(applied.function)

    with pytest.raises(ApplyError) as caught:
        apply_all(fns, steps(["f1", "f2", "f3"]), on_applied=journal)
    assert caught.value.put_back == ["f2", "f1"]
    for name in ("f1", "f2", "f3"):
        assert env_of(clients, name) == ENVS[name]
