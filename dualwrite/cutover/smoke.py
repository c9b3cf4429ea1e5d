"""Smoke tests: right after the switch, invoke each listed function (RequestResponse) with its
event (DESIGN.md section 10).

A test passes when the invocation has no FunctionError and, when `expect` is given, the
response JSON contains it. "Contains" (`first_mismatch`): a mapping contains another when it
has each of its keys with a value that contains the expected one; a list contains a list of
the same length element by element (order matters); anything else must be equal, numbers by
value (200 == 200.0) but a boolean is never a number (true is not 1).

Validation (`check_smoke_tests`) runs before anything changes: each test must name a
function this cutover re-points (a function that is not re-pointed proves nothing about the
switch) and that exists. The cutover re-points $LATEST: a test qualified with a published
version, or with an alias on one, would invoke code still on the old table, so it is refused
too.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError

from dualwrite.aws.errors import aws_call
from dualwrite.config import SmokeTest
from dualwrite.errors import ConfigError, DualwriteError, NotFoundError
from dualwrite.jsondoc import JsonObject

SHOWN = 60  # characters of an actual value shown in a reason (responses may be personal data)

# --- pure ---------------------------------------------------------------------------------


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= SHOWN else text[: SHOWN - 3] + "..."


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def first_mismatch(expected: Any, actual: Any, path: str = "") -> str | None:
    """Where `actual` does not contain `expected` (one line), or None when it does."""
    here = path or "the response"
    if isinstance(expected, Mapping):
        if not isinstance(actual, Mapping):
            return f"{here}: expected an object, got {_short(actual)}"
        for key, value in expected.items():
            where = f"{path}.{key}" if path else str(key)
            if key not in actual:
                return f"{where}: missing"
            found = first_mismatch(value, actual[key], where)
            if found is not None:
                return found
        return None
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return f"{here}: expected a list, got {_short(actual)}"
        if len(actual) != len(expected):
            return f"{here}: expected {len(expected)} elements, got {len(actual)}"
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            found = first_mismatch(e, a, f"{path}[{i}]")
            if found is not None:
                return found
        return None
    if _is_number(expected) and _is_number(actual):
        same = expected == actual
    else:
        same = type(expected) is type(actual) and expected == actual
    return None if same else f"{here}: expected {_short(expected)}, got {_short(actual)}"


def contains(expected: Any, actual: Any) -> bool:
    return first_mismatch(expected, actual) is None


@dataclass(frozen=True)
class SmokeResult:
    function: str
    passed: bool
    reason: str  # "" when passed
    status_code: int | None = None
    function_error: str | None = None
    duration_ms: int = 0

    def to_json(self) -> JsonObject:
        return {
            "function": self.function,
            "passed": self.passed,
            "reason": self.reason,
            "status_code": self.status_code,
            "function_error": self.function_error,
            "duration_ms": self.duration_ms,
        }


def judge(
    test: SmokeTest,
    status_code: int | None,
    function_error: str | None,
    payload: bytes,
    duration_ms: int = 0,
) -> SmokeResult:
    """The verdict on one invocation's answer."""

    def result(reason: str) -> SmokeResult:
        return SmokeResult(
            test.function, not reason, reason, status_code, function_error, duration_ms
        )

    if function_error:
        return result(f"function error ({function_error})")
    if test.expect is None:
        return result("")
    try:
        answer = json.loads(payload or b"null")
    except ValueError:
        return result("the response is not JSON")
    mismatch = first_mismatch(test.expect, answer)
    return result(f"expect not met: {mismatch}" if mismatch else "")


def split_function(function: str) -> tuple[str, str | None]:
    """A function's name and qualifier (None: unqualified) from any form Invoke takes: NAME,
    NAME:QUALIFIER, ACCOUNT:function:NAME[:QUALIFIER] or
    arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]."""
    parts = function.split(":")
    if function.startswith("arn:") and len(parts) >= 7 and parts[5] == "function":
        return parts[6], (parts[7] if len(parts) > 7 else None)
    if len(parts) >= 3 and parts[1] == "function":
        return parts[2], (parts[3] if len(parts) > 3 else None)
    if len(parts) == 2:
        return parts[0], parts[1]
    return function, None


def function_name(function: str) -> str:
    """A function's name from its name or ARN (with or without a qualifier)."""
    return split_function(function)[0]


def smoke_test_problems(
    tests: Sequence[SmokeTest],
    repointed: Collection[str],
    exists: Callable[[str], bool],
    alias_runs_latest: Callable[[str, str], bool] = lambda _name, _alias: False,
) -> list[str]:
    """One line per bad test, naming its key. `exists` is asked only about functions that
    are not re-pointed (a re-pointed function exists); `alias_runs_latest(name, alias)`
    only about an alias-qualified test of a re-pointed function."""
    problems = []
    for i, test in enumerate(tests):
        key = f"cutover.smoke_tests[{i}].function"
        name, qualifier = split_function(test.function)
        if test.function in repointed or name in repointed:
            # by name or by ARN, as Invoke takes it; a qualifier must come to $LATEST
            if qualifier is None or qualifier == "$LATEST":
                continue
            if qualifier.isdigit():
                runs = f"published version {qualifier}"
            elif alias_runs_latest(name, qualifier):
                continue
            else:
                runs = f"alias {qualifier} on a published version"
            problems.append(
                f"{key}: {test.function} invokes {runs} (immutable: it keeps the old table); "
                f"the cutover re-points $LATEST: smoke-test {name} instead"
            )
            continue
        if not exists(test.function):
            problems.append(f"{key}: function {test.function} does not exist")
        else:
            listed = ", ".join(sorted(repointed)) or "none"
            problems.append(
                f"{key}: function {test.function} is not re-pointed by this cutover "
                f"(re-pointed: {listed})"
            )
    return problems


def check_smoke_tests(
    tests: Sequence[SmokeTest],
    repointed: Collection[str],
    exists: Callable[[str], bool],
    alias_runs_latest: Callable[[str, str], bool] = lambda _name, _alias: False,
) -> None:
    """Raise ConfigError (exit 2, one line) for the first bad test."""
    problems = smoke_test_problems(tests, repointed, exists, alias_runs_latest)
    if problems:
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        raise ConfigError(problems[0] + more)


# --- adapter ------------------------------------------------------------------------------


@dataclass
class SmokeRunner:
    """Invokes functions through one Lambda client; the clock is injectable for tests."""

    client: Any
    clock: Callable[[], float] = time.monotonic

    def exists(self, name: str) -> bool:
        try:
            with aws_call(f"GetFunction {name}"):
                self.client.get_function(FunctionName=name)
        except DualwriteError as exc:
            if getattr(exc, "code", "") == "ResourceNotFoundException":
                return False
            raise
        return True

    def alias_runs_latest(self, name: str, alias: str) -> bool:
        """Whether the alias sends all its traffic to $LATEST (no weighted second version);
        an alias that does not exist does not."""
        try:
            with aws_call(f"GetAlias {name}:{alias}"):
                got = self.client.get_alias(FunctionName=name, Name=alias)
        except NotFoundError:
            return False
        weights = (got.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
        return got.get("FunctionVersion") == "$LATEST" and not weights

    def run_one(self, test: SmokeTest) -> SmokeResult:
        started = self.clock()
        try:
            with aws_call(f"Invoke {test.function}"):
                response = self.client.invoke(
                    FunctionName=test.function,
                    InvocationType="RequestResponse",
                    Payload=json.dumps(test.event).encode(),
                )
            payload = response["Payload"].read() if "Payload" in response else b""
        except (DualwriteError, BotoCoreError) as exc:  # e.g. a read timeout: a failed test
            return SmokeResult(test.function, False, f"invoke failed: {exc}")
        return judge(
            test,
            response.get("StatusCode"),
            response.get("FunctionError"),
            payload,
            int((self.clock() - started) * 1000),
        )

    def run(
        self,
        tests: Iterable[SmokeTest],
        *,
        on_result: Callable[[SmokeResult], None] = lambda _r: None,
        stop_at_failure: bool = True,
    ) -> list[SmokeResult]:
        """Run in order; by default stops at the first failure (it rolls back anyway)."""
        results = []
        for test in tests:
            result = self.run_one(test)
            results.append(result)
            on_result(result)
            if stop_at_failure and not result.passed:
                break
        return results
