"""SSM under prefix-scoped IAM: the one-by-one fallback skips a parameter deleted between
DescribeParameters and GetParameter (SSM's `ParameterNotFound`), as the batch read does;
one such parameter aborted the whole read (the cutover's SSM plan failed; references
skipped the whole SSM kind)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from dualwrite.aws.clients import Clients
from dualwrite.cutover.functions import Renames
from dualwrite.cutover.references import SSM_PARAMETER, ReferenceScanner
from dualwrite.cutover.ssm import ParameterChange, SsmParameters
from tests.functional.test_cutover_references_aws import OLD, PAIRS, Swapped
from tests.functional.test_cutover_ssm_prefix_scoped import PrefixScopedSsm


@dataclass
class DeletesAfterListing(PrefixScopedSsm):
    """Another team deletes one of its parameters just after DescribeParameters listed it."""

    gone: str = "/app/old"

    def describe_parameters(self, **kw: Any) -> Any:
        out = self.real.describe_parameters(**kw)
        with contextlib.suppress(ClientError):  # the second listing: already gone
            self.real.delete_parameter(Name=self.gone)
        return out


def seed(clients: Clients) -> Any:
    ssm = clients.client("ssm")
    ssm.put_parameter(Name="/app/table", Value="orders", Type="String")
    ssm.put_parameter(Name="/app/old", Value="orders", Type="String")
    ssm.put_parameter(Name="/other-team/p00", Value="orders", Type="String")
    return ssm


def test_a_parameter_deleted_since_listing_is_skipped_in_the_fallback(
    moto_clients: Clients,
) -> None:
    ssm = seed(moto_clients)
    planned = SsmParameters(DeletesAfterListing(ssm, "/app/")).plan(Renames.of(PAIRS))
    assert planned == [ParameterChange("/app/table", "orders", "orders-v2")]


def test_references_still_list_the_readable_parameters(moto_clients: Clients) -> None:
    seed(moto_clients)
    found = ReferenceScanner(
        Swapped(moto_clients, "ssm", lambda real: DeletesAfterListing(real, "/app/"))
    ).discover(OLD)
    assert (SSM_PARAMETER, "/app/table") in [(r.kind, r.name) for r in found.references], (
        found.skipped
    )
