"""SSM under IAM scoped to a prefix (the README's IAM table: `arn:...:parameter/*, or your
prefix`): DescribeParameters lists the whole account, and a GetParameters batch naming one
parameter outside the prefix is refused whole. The batch is read one parameter at a time,
so the parameters under the prefix are still re-pointed (the cutover was refused, exit 4),
and references name what they could not read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from dualwrite.aws.clients import Clients
from dualwrite.cutover.functions import Renames
from dualwrite.cutover.references import SSM_PARAMETER, ReferenceScanner
from dualwrite.cutover.ssm import ParameterChange, SsmParameters
from tests.functional.test_cutover_references_aws import OLD, PAIRS, Swapped


def denied(operation: str) -> ClientError:
    return ClientError(
        {"Error": {"Code": "AccessDeniedException", "Message": "not authorized"}}, operation
    )


@dataclass
class PrefixScopedSsm:
    real: Any
    prefix: str

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def get_parameters(self, Names: list[str], **kw: Any) -> Any:
        if any(not n.startswith(self.prefix) for n in Names):
            raise denied("GetParameters")
        return self.real.get_parameters(Names=Names, **kw)

    def get_parameter(self, Name: str, **kw: Any) -> Any:
        if not Name.startswith(self.prefix):
            raise denied("GetParameter")
        return self.real.get_parameter(Name=Name, **kw)


def seed(clients: Clients) -> Any:
    ssm = clients.client("ssm")
    ssm.put_parameter(Name="/app/table", Value="orders", Type="String")
    ssm.put_parameter(Name="/app/logs", Value="orders-logs", Type="String")
    for i in range(12):  # more than one GetParameters batch of 10, each mixing in others
        ssm.put_parameter(Name=f"/other-team/p{i:02}", Value="orders", Type="String")
    return ssm


def test_the_parameters_under_the_prefix_are_still_planned(moto_clients: Clients) -> None:
    ssm = seed(moto_clients)
    planned = SsmParameters(PrefixScopedSsm(ssm, "/app/")).plan(Renames.of(PAIRS))
    assert planned == [ParameterChange("/app/table", "orders", "orders-v2")]
    # with the whole account readable, the other team's parameters are planned too
    assert len(SsmParameters(ssm).plan(Renames.of(PAIRS))) == 13


def test_references_name_the_parameters_they_could_not_read(moto_clients: Clients) -> None:
    seed(moto_clients)
    found = ReferenceScanner(
        Swapped(moto_clients, "ssm", lambda real: PrefixScopedSsm(real, "/app/"))
    ).discover(OLD)
    assert [(r.kind, r.name) for r in found.references] == [(SSM_PARAMETER, "/app/table")]
    (skipped,) = found.skipped
    assert skipped.kind == SSM_PARAMETER
    assert skipped.reason == (
        "GetParameter: AccessDenied for 12: /other-team/p00, /other-team/p01, "
        "/other-team/p02, /other-team/p03, /other-team/p04 and 7 more"
    )
