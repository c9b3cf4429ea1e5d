"""Warn when a re-pointed function's execution role cannot do on the new table what it can do
on the old one (a warning at cutover, never a refusal).

IAM policy simulation (SimulatePrincipalPolicy) evaluates the role's identity policies for
the same DynamoDB actions on both table ARNs: an action allowed on the old table and denied
on the new one is reported. Where simulation is unavailable (moto does not implement it, or
the caller lacks iam:SimulatePrincipalPolicy), the warning says "could not check" and why.
Resource policies on the tables and permission boundaries set elsewhere are not simulated.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

ACTIONS = (
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:Scan",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:DescribeTable",
)


@dataclass(frozen=True)
class AccessWarning:
    function: str
    role: str
    table: str
    missing: tuple[str, ...]  # actions allowed on the old table, denied on the new one
    checked: bool
    detail: str = ""

    def message(self) -> str:
        if not self.checked:
            return (
                f"function {self.function}: could not check whether role {self.role} can "
                f"access {self.table}: {self.detail}"
            )
        return (
            f"function {self.function}: role {self.role} can {', '.join(self.missing)} on the "
            f"old table but not on {self.table}"
        )


def missing_actions(allowed_old: Iterable[str], allowed_new: Iterable[str]) -> tuple[str, ...]:
    """Pure: what the role loses by moving to the new table, in ACTIONS order."""
    new = set(allowed_new)
    old = set(allowed_old)
    return tuple(a for a in ACTIONS if a in old and a not in new)


class SimulationUnavailable(Exception):
    """IAM policy simulation cannot be used here; the message says why."""


def allowed_actions(iam: Any, role_arn: str, resource_arn: str) -> set[str]:
    """Actions the role's policies allow on the resource (SimulatePrincipalPolicy)."""
    allowed: set[str] = set()
    kwargs: dict[str, Any] = {
        "PolicySourceArn": role_arn,
        "ActionNames": list(ACTIONS),
        "ResourceArns": [resource_arn],
    }
    try:
        while True:
            response = iam.simulate_principal_policy(**kwargs)
            for result in response.get("EvaluationResults", []):
                if result.get("EvalDecision") == "allowed":
                    allowed.add(str(result["EvalActionName"]))
            if not response.get("IsTruncated"):
                return allowed
            kwargs["Marker"] = response["Marker"]
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "error")
        raise SimulationUnavailable(f"IAM policy simulation failed ({code})") from exc
    except (BotoCoreError, ResponseParserError, NotImplementedError) as exc:
        # moto answers "not implemented" (in-process) or an HTML 500 page (server)
        raise SimulationUnavailable(
            f"IAM policy simulation is not available here ({type(exc).__name__})"
        ) from exc


@dataclass
class RoleChecker:
    """Checks (and caches per role and table pair) through an injectable allowed_actions."""

    iam: Any
    allowed: Callable[[Any, str, str], set[str]] = allowed_actions

    def __post_init__(self) -> None:
        self._cache: dict[tuple[str, str, str], tuple[tuple[str, ...], str | None]] = {}

    def check(
        self, function: str, role: str, renamed_arns: Mapping[str, str]
    ) -> list[AccessWarning]:
        """Warnings for one function; renamed_arns maps old table ARN -> new table ARN."""
        out: list[AccessWarning] = []
        for old_arn, new_arn in sorted(renamed_arns.items()):
            table = new_arn.rsplit("/", 1)[-1]
            if not role:
                out.append(AccessWarning(function, "(none)", table, (), False, "no role"))
                continue
            key = (role, old_arn, new_arn)
            if key not in self._cache:
                try:
                    missing = missing_actions(
                        self.allowed(self.iam, role, old_arn), self.allowed(self.iam, role, new_arn)
                    )
                    self._cache[key] = (missing, None)
                except SimulationUnavailable as exc:
                    self._cache[key] = ((), str(exc))
            missing, problem = self._cache[key]
            if problem is not None:
                out.append(AccessWarning(function, role, table, (), False, problem))
            elif missing:
                out.append(AccessWarning(function, role, table, missing, True))
        return out
