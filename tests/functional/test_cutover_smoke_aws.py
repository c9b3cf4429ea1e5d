"""Smoke tests on in-process moto without Docker: an invocation answers with its event (or a
queued answer), so `expect` is tested met and not met."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from dualwrite.aws.clients import AwsSettings, Clients
from dualwrite.config import SmokeTest
from dualwrite.cutover.smoke import SmokeRunner, check_smoke_tests
from dualwrite.errors import ConfigError
from tests.cutover_world import make_function

MOTO_API = "http://motoapi.amazonaws.com/moto-api"


@pytest.fixture
def echo_clients(aws_env: None) -> Iterator[Clients]:
    """moto's Lambda without Docker, chosen by mock_aws's config argument."""
    from moto import mock_aws

    with mock_aws(config={"lambda": {"use_docker": False}}):
        clients = Clients(AwsSettings(region="us-east-1"))
        make_function(clients, "api")
        make_function(clients, "worker")
        yield clients


HEALTHY = SmokeTest(
    function="api", event={"statusCode": 200, "path": "/health"}, expect={"statusCode": 200}
)
BROKEN = SmokeTest(
    function="worker", event={"statusCode": 500, "body": "x"}, expect={"statusCode": 200}
)


def test_expect_met_and_not_met(echo_clients: Clients) -> None:
    runner = SmokeRunner(echo_clients.lambda_)
    ok = runner.run_one(HEALTHY)
    assert ok.passed and ok.status_code == 200 and ok.function_error is None
    failed = runner.run_one(BROKEN)
    assert not failed.passed
    assert failed.reason == "expect not met: statusCode: expected 200, got 500"
    assert failed.to_json()["function"] == "worker"


def test_run_stops_at_the_first_failure_and_reports_each(echo_clients: Clients) -> None:
    seen: list[str] = []
    results = SmokeRunner(echo_clients.lambda_).run(
        [BROKEN, HEALTHY], on_result=lambda r: seen.append(r.function)
    )
    assert [r.function for r in results] == seen == ["worker"]
    every = SmokeRunner(echo_clients.lambda_).run([BROKEN, HEALTHY], stop_at_failure=False)
    assert [r.passed for r in every] == [False, True]


def test_a_queued_answer_that_is_not_json_fails_an_expect(echo_clients: Clients) -> None:
    queued = requests.post(
        f"{MOTO_API}/static/lambda-simple/response",
        json={"results": ["Internal error"], "region": "us-east-1"},
        timeout=5,
    )
    assert queued.status_code == 201
    result = SmokeRunner(echo_clients.lambda_).run_one(HEALTHY)
    assert (result.passed, result.reason) == (False, "the response is not JSON")
    assert SmokeRunner(echo_clients.lambda_).run_one(HEALTHY).passed  # the queue is used up


def test_a_function_that_cannot_be_invoked_fails_its_test(moto_clients: Clients) -> None:
    # moto's Docker-less Lambda answers even for a function that does not exist; its
    # default one (no container is started for a missing function) answers as AWS does
    result = SmokeRunner(moto_clients.lambda_).run_one(SmokeTest(function="ghost", event={}))
    assert not result.passed
    assert result.reason.startswith("invoke failed: Invoke ghost: ResourceNotFoundException")


def test_validation_asks_lambda_whether_a_function_exists(echo_clients: Clients) -> None:
    runner = SmokeRunner(echo_clients.lambda_)
    assert runner.exists("api") and not runner.exists("ghost")
    tests = [HEALTHY, SmokeTest(function="ghost", event={})]
    with pytest.raises(ConfigError, match=r"smoke_tests\[1\].function: function ghost does not"):
        check_smoke_tests(tests, {"api"}, runner.exists)
    with pytest.raises(ConfigError, match="worker is not re-pointed"):
        check_smoke_tests([BROKEN], {"api"}, runner.exists)
    check_smoke_tests([HEALTHY], {"api"}, runner.exists)


def test_the_moto_api_config_endpoint_does_the_same(aws_env: None) -> None:
    """The way `dualwrite local`'s server is told: POST /moto-api/config."""
    from moto import mock_aws

    with mock_aws():
        answer = requests.post(
            f"{MOTO_API}/config", json={"lambda": {"use_docker": False}}, timeout=5
        )
        assert answer.status_code == 201 and answer.json()["lambda"] == {"use_docker": False}
        clients = Clients(AwsSettings(region="us-east-1"))
        make_function(clients, "api")
        runner = SmokeRunner(clients.lambda_)
        assert runner.run_one(HEALTHY).passed
        assert not runner.run_one(SmokeTest(function="api", event={}, expect={"ok": True})).passed


def test_an_alias_smoke_test_is_taken_only_when_the_alias_runs_latest(
    echo_clients: Clients,
) -> None:
    """The cutover re-points $LATEST: an alias on a published version (or sending a weighted
    share to one) would invoke code still on the old table."""
    lam = echo_clients.lambda_
    version = lam.publish_version(FunctionName="api")["Version"]
    lam.create_alias(FunctionName="api", Name="head", FunctionVersion="$LATEST")
    lam.create_alias(FunctionName="api", Name="live", FunctionVersion=version)
    runner = SmokeRunner(lam)
    assert runner.alias_runs_latest("api", "head")
    assert not runner.alias_runs_latest("api", "live")
    assert not runner.alias_runs_latest("api", "missing")

    def check(function: str) -> None:
        check_smoke_tests(
            [SmokeTest(function=function, event={})],
            {"api"},
            runner.exists,
            runner.alias_runs_latest,
        )

    check("api:head")
    with pytest.raises(ConfigError, match="invokes alias live on a published version"):
        check("api:live")
    with pytest.raises(ConfigError, match=f"invokes published version {version} "):
        check(f"api:{version}")
