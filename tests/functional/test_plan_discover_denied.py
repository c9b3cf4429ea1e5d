"""`plan` with `cutover.discover: true` lists every function to leave out what the cutover
re-points; when it cannot (lambda:ListFunctions denied, or one function's environment that
cannot be decrypted), it says so among the skipped kinds and goes on (the whole read-only
`plan` failed)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from dualwrite.config import parse_migration
from dualwrite.cutover.references import LAMBDA_FUNCTION
from dualwrite.prepare import references
from tests.functional.test_cutover_kills import world


@pytest.fixture
def moto(aws_env: None) -> Iterator[None]:
    from moto import mock_aws

    with mock_aws(config={"lambda": {"use_docker": False}}):
        yield


def _deny(**_kwargs: Any) -> None:
    raise ClientError(
        {"Error": {"Code": "AccessDeniedException", "Message": "not authorized"}},
        "ListFunctions",
    )


def test_plan_references_skip_lambda_when_list_functions_is_denied(moto: None) -> None:
    c, _ = world()
    c.lambda_.meta.events.register("before-call.lambda.ListFunctions", _deny)
    migration = parse_migration(
        {
            "control_table": "ctl",
            "routes": [{"name": "r", "source": "old-t", "target": "new-t", "mapping": "identity"}],
            "cutover": {"functions": [], "discover": True, "watch_seconds": 0},
        }
    )
    found = references(migration, c)
    assert LAMBDA_FUNCTION in {s.kind for s in found.skipped}
    assert {r.kind for r in found.references} >= {"cloudwatch_alarm", "ssm_parameter"}


def _undecryptable(parsed: dict[str, Any], **_kwargs: Any) -> None:
    for fn in parsed.get("Functions", []):
        if fn.get("FunctionName") == "other-team":
            fn["Environment"] = {
                "Error": {"ErrorCode": "KMSAccessDeniedException", "Message": "no decrypt"}
            }


def test_plan_references_survive_one_function_whose_environment_cannot_be_read(
    moto: None,
) -> None:
    from tests.functional.test_cutover_kills import make_function

    c, _ = world()
    make_function(c, "other-team")
    c.lambda_.meta.events.register("after-call.lambda.ListFunctions", _undecryptable)
    migration = parse_migration(
        {
            "control_table": "ctl",
            "routes": [{"name": "r", "source": "old-t", "target": "new-t", "mapping": "identity"}],
            "cutover": {"functions": [], "discover": True, "watch_seconds": 0},
        }
    )
    found = references(migration, c)  # plan is read-only: one function does not stop it
    assert {r.kind for r in found.references} >= {"cloudwatch_alarm", "ssm_parameter"}
