"""Which Lambda functions name a source table, and re-pointing them by exact value.

Pure core: `Renames` (old table name or ARN -> new one), `repoint` and `plan_changes`. A
variable changes only when its whole value EQUALS a source table's name or ARN; a value that
merely contains one ("ai-nexus-dev-stripe-customers-logs", a stream ARN, a list) is left
alone, and so is every other variable and function.

Adapter: `LambdaFunctions` lists (paginated), reads and updates function environments with
the RevisionId when Lambda returns one (moto returns none), waits for LastUpdateStatus
Successful and retries ResourceConflictException (an update already in progress).
`apply_all` is all or nothing: when one function fails, those already changed are put back.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from dualwrite.aws.errors import aws_call
from dualwrite.aws.tables import wait_until
from dualwrite.backoff import Backoff
from dualwrite.errors import AwsError, ConfigError, DualwriteError, NotFoundError

Env = dict[str, str]

# --- pure ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TablePair:
    """One route's old and new table, by name and ARN."""

    source: str
    target: str
    source_arn: str
    target_arn: str


def table_arn(like_arn: str, like_name: str, name: str) -> str:
    """The ARN of table `name` in the same account and region as `like_arn`."""
    suffix = f":table/{like_name}"
    if not like_arn.endswith(suffix):
        raise ValueError(f"not the ARN of table {like_name}: {like_arn}")
    return like_arn[: -len(like_name)] + name


@dataclass(frozen=True)
class Renames:
    """Exact old value -> new value: each source name -> target name, ARN -> ARN."""

    values: Mapping[str, str]

    @classmethod
    def of(cls, pairs: Iterable[TablePair]) -> Renames:
        values: dict[str, str] = {}
        for p in pairs:
            values[p.source] = p.target
            values[p.source_arn] = p.target_arn
        return cls(values)

    def new_value(self, value: str) -> str | None:
        return self.values.get(value)


@dataclass(frozen=True)
class FunctionEnv:
    """What we know of one function: its name, ARN, execution role and environment."""

    name: str
    arn: str = ""
    role: str = ""
    variables: Mapping[str, str] = field(default_factory=dict)
    revision_id: str | None = None


@dataclass(frozen=True)
class VariableChange:
    function: str
    variable: str
    old: str
    new: str

    def to_json(self) -> dict[str, str]:
        return {
            "function": self.function,
            "variable": self.variable,
            "old": self.old,
            "new": self.new,
        }


@dataclass(frozen=True)
class FunctionChange:
    """The planned change of one function: its whole environment before and after."""

    function: str
    role: str
    previous: Mapping[str, str]
    updated: Mapping[str, str]
    changes: tuple[VariableChange, ...]


def repoint(variables: Mapping[str, str], renames: Renames) -> Env:
    """The environment with every exactly-matching value renamed, everything else as is."""
    out: Env = {}
    for name, value in variables.items():
        new = renames.new_value(value)
        out[name] = value if new is None else new
    return out


def plan_function(fn: FunctionEnv, renames: Renames) -> FunctionChange | None:
    updated = repoint(fn.variables, renames)
    changes = tuple(
        VariableChange(fn.name, name, value, updated[name])
        for name, value in fn.variables.items()
        if updated[name] != value
    )
    if not changes:
        return None
    return FunctionChange(fn.name, fn.role, dict(fn.variables), updated, changes)


def plan_changes(functions: Iterable[FunctionEnv], renames: Renames) -> list[FunctionChange]:
    """The functions to change, in name order; functions that name no source are absent."""
    plans = (plan_function(fn, renames) for fn in functions)
    return sorted((p for p in plans if p is not None), key=lambda p: p.function)


# --- adapter ------------------------------------------------------------------------------

RETRYABLE = {"ResourceConflictException", "PreconditionFailedException"}


def _env_of(config: Mapping[str, Any]) -> Env:
    env = config.get("Environment") or {}
    error = env.get("Error")
    if error:  # Lambda sends this instead of the variables it cannot decrypt for the caller
        raise ConfigError(
            f"function {config.get('FunctionName')}: its environment cannot be read "
            f"({error.get('ErrorCode', '?')}: {error.get('Message', '')}), so dualwrite cannot "
            "tell which variables name an old table: allow kms:Decrypt on its key"
        )
    return dict(env.get("Variables") or {})


def _function_env(config: Mapping[str, Any]) -> FunctionEnv:
    return FunctionEnv(
        name=str(config["FunctionName"]),
        arn=str(config.get("FunctionArn", "")),
        role=str(config.get("Role", "")),
        variables=_env_of(config),
        revision_id=config.get("RevisionId") or None,
    )


@dataclass(frozen=True)
class Applied:
    function: str
    previous: Mapping[str, str]
    updated: Mapping[str, str]
    changed: bool


@dataclass
class LambdaFunctions:
    """Lambda environments through one client; sleeps and clock are injectable for tests."""

    client: Any
    backoff: Backoff = field(default_factory=lambda: Backoff(base=0.5, cap=10.0))
    max_attempts: int = 10
    wait_timeout: float = 300.0
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic

    def list_all(self) -> Iterator[FunctionEnv]:
        """Every function ($LATEST), following ListFunctions' Marker."""
        kwargs: dict[str, Any] = {}
        while True:
            with aws_call("ListFunctions"):
                response = self.client.list_functions(**kwargs)
            for config in response.get("Functions", []):
                yield _function_env(config)
            marker = response.get("NextMarker")
            if not marker:
                return
            kwargs["Marker"] = marker

    def config(self, name: str) -> dict[str, Any]:
        with aws_call(f"GetFunctionConfiguration {name}"):
            return dict(self.client.get_function_configuration(FunctionName=name))

    def get(self, name: str) -> FunctionEnv:
        return _function_env(self.config(name))

    def wait_updated(self, name: str) -> None:
        """Until LastUpdateStatus is Successful (absent counts: older APIs and moto)."""

        def done() -> bool:
            config = self.config(name)
            status = config.get("LastUpdateStatus")
            if status == "Failed":
                raise AwsError(
                    f"function {name}: update failed: "
                    f"{config.get('LastUpdateStatusReason') or 'no reason given'}",
                    str(config.get("LastUpdateStatusReasonCode") or ""),
                    "UpdateFunctionConfiguration",
                )
            return status in (None, "Successful")

        wait_until(
            done,
            f"function {name} to finish updating",
            timeout=self.wait_timeout,
            interval=0.5,
            clock=self.clock,
            sleep=self.sleep,
        )

    def set_environment(self, name: str, transform: Callable[[Env], Env]) -> Applied:
        """Read, transform, write with the RevisionId, wait. Re-reads on every retry, so a
        concurrent change is merged, never overwritten."""
        attempt = 0
        while True:
            config = self.config(name)
            previous = _env_of(config)
            updated = transform(dict(previous))
            if updated == previous:
                return Applied(name, previous, updated, changed=False)
            kwargs: dict[str, Any] = {"FunctionName": name, "Environment": {"Variables": updated}}
            if config.get("RevisionId"):
                kwargs["RevisionId"] = config["RevisionId"]
            try:
                with aws_call(f"UpdateFunctionConfiguration {name}"):
                    self.client.update_function_configuration(**kwargs)
            except AwsError as exc:
                attempt += 1
                if exc.code not in RETRYABLE or attempt >= self.max_attempts:
                    raise
                # an update in progress, or the function changed since we read it
                self.sleep(self.backoff.delay(attempt))
                continue
            applied = Applied(name, previous, updated, changed=True)
            try:
                self.wait_updated(name)
            except DualwriteError as exc:
                raise UnconfirmedUpdate(str(exc), applied) from exc
            return applied


class UnconfirmedUpdate(DualwriteError):
    """The update was accepted but never reached Successful: it must be put back too."""

    def __init__(self, message: str, applied: Applied) -> None:
        super().__init__(message)
        self.applied = applied


class ApplyError(DualwriteError):
    """An update failed; `put_back` were restored, `stuck` could not be."""

    def __init__(self, message: str, put_back: list[str], stuck: list[str]) -> None:
        super().__init__(message)
        self.put_back = put_back
        self.stuck = stuck


def apply_all(
    functions: LambdaFunctions,
    steps: Iterable[tuple[str, Callable[[Env], Env]]],
    *,
    on_applied: Callable[[Applied], None] = lambda _a: None,
) -> list[Applied]:
    """Apply each (function, transform) in order; all or nothing. on_applied (the journal)
    failing counts as a failure too: what it could not record is put back."""
    done: list[Applied] = []
    for name, transform in steps:
        try:
            applied = functions.set_environment(name, transform)
            done.append(applied)
            on_applied(applied)
        except Exception as exc:  # any failure, ours or not, must not leave a half cutover
            unconfirmed = [exc.applied] if isinstance(exc, UnconfirmedUpdate) else []
            put_back, stuck = _put_back(functions, [*done, *unconfirmed])
            raise ApplyError(
                f"updating function {name} failed ({exc}); "
                + (f"put back: {', '.join(put_back)}" if put_back else "nothing had changed")
                + (f"; COULD NOT put back: {', '.join(stuck)}" if stuck else ""),
                put_back,
                stuck,
            ) from exc
    return done


def _put_back(functions: LambdaFunctions, done: list[Applied]) -> tuple[list[str], list[str]]:
    put_back: list[str] = []
    stuck: list[str] = []
    for applied in reversed(done):
        if not applied.changed:
            continue
        try:
            functions.set_environment(applied.function, _back_to(applied.previous))
            put_back.append(applied.function)
        except Exception as exc:  # report it and carry on putting the others back
            stuck.append(f"{applied.function} ({exc})")
    return put_back, stuck


def candidates(
    functions: LambdaFunctions, listed: Iterable[str], discover: bool
) -> list[FunctionEnv]:
    """The functions to consider: those listed, plus every function when discovering."""
    found: dict[str, FunctionEnv] = {}
    if discover:
        for fn in functions.list_all():
            found[fn.name] = fn
    for name in listed:
        if name in found:
            continue
        try:
            fn = functions.get(name)
        except NotFoundError:
            raise ConfigError(f"cutover.functions: function {name} does not exist") from None
        found.setdefault(fn.name, fn)
    return sorted(found.values(), key=lambda f: f.name)


def _back_to(previous: Mapping[str, str]) -> Callable[[Env], Env]:
    wanted = dict(previous)
    return lambda _current: dict(wanted)
