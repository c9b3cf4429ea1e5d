"""SSM parameters that hold an old table's name or ARN, re-pointed at cutover and restored by
rollback, like Lambda environment variables (DESIGN.md section 10).

Pure core: `plan_parameters` picks the String parameters whose whole value EQUALS an old
name or ARN (`Renames`, the same as functions use); a value that merely contains one, a
StringList, and every SecureString (never decrypted) are left alone.

Adapter: `SsmParameters` reads them (DescribeParameters, GetParameters), applies planned
changes all or nothing (PutParameter with Overwrite and no Type: description, tier, pattern
and data type stay as they are), re-reading each value first so a parameter changed since
the plan is skipped rather than overwritten, and restores journaled changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from dualwrite.aws.errors import aws_call
from dualwrite.cutover.functions import ApplyError, Renames
from dualwrite.cutover.pagination import pages
from dualwrite.errors import AwsError, NotFoundError

GET_PARAMETERS_MAX = 10  # names per GetParameters call (the API's limit)
DESCRIBE_MAX = 50  # parameters per DescribeParameters page (its limit; the default is 10)

# --- pure ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str
    value: str


@dataclass(frozen=True)
class ParameterChange:
    """One parameter's value before and after the cutover: journaled, restorable."""

    name: str
    old: str
    new: str

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "old": self.old, "new": self.new}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ParameterChange:
        return cls(str(data["name"]), str(data["old"]), str(data["new"]))


def plan_parameters(parameters: Iterable[Parameter], renames: Renames) -> list[ParameterChange]:
    """The String parameters to re-point, in name order."""
    changes = []
    for p in parameters:
        new = renames.new_value(p.value) if p.type == "String" else None
        if new is not None:
            changes.append(ParameterChange(p.name, p.value, new))
    return sorted(changes, key=lambda c: c.name)


# --- adapter ------------------------------------------------------------------------------


#: what IAM answers a read outside the caller's permissions
DENIED = frozenset({"AccessDeniedException", "AccessDenied"})


def readable_parameters(ssm: Any, denied: list[str] | None = None) -> Iterator[dict[str, Any]]:
    """Every String and StringList parameter with its value; SecureString values are never
    fetched. Under IAM scoped to a prefix (DescribeParameters still lists the whole account)
    a GetParameters batch naming one parameter outside it is refused whole: that batch is
    read one GetParameter at a time, and the names refused are appended to `denied` (a
    parameter the caller may not read is not one it re-points)."""
    names = [
        str(p["Name"])
        for p in pages(
            ssm.describe_parameters,
            "DescribeParameters",
            "Parameters",
            "NextToken",
            MaxResults=DESCRIBE_MAX,
        )
        if p.get("Type") in ("String", "StringList")
    ]
    for i in range(0, len(names), GET_PARAMETERS_MAX):
        batch = names[i : i + GET_PARAMETERS_MAX]
        try:
            with aws_call("GetParameters"):
                response = ssm.get_parameters(Names=batch)
        except AwsError as exc:
            if exc.code not in DENIED:
                raise
            yield from _one_by_one(ssm, batch, denied)
            continue
        yield from response.get("Parameters", [])


def _one_by_one(ssm: Any, names: list[str], denied: list[str] | None) -> Iterator[dict[str, Any]]:
    for name in names:
        try:
            with aws_call(f"GetParameter {name}"):
                parameter = ssm.get_parameter(Name=name)["Parameter"]
        except AwsError as exc:
            if isinstance(exc, NotFoundError) or exc.code == "ParameterNotFound":
                continue  # deleted since it was listed
            if exc.code not in DENIED:
                raise
            if denied is not None:
                denied.append(name)
            continue
        yield parameter


@dataclass(frozen=True)
class RestoreResult:
    restored: tuple[ParameterChange, ...] = ()
    notes: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()


@dataclass
class SsmParameters:
    client: Any

    def string_parameters(self) -> list[Parameter]:
        return [
            Parameter(str(p["Name"]), str(p.get("Type", "")), str(p.get("Value", "")))
            for p in readable_parameters(self.client)
            if p.get("Type") == "String"
        ]

    def plan(self, renames: Renames) -> list[ParameterChange]:
        return plan_parameters(self.string_parameters(), renames)

    def value(self, name: str) -> str:
        """The current value; raises NotFoundError for a parameter that is gone."""
        try:
            with aws_call(f"GetParameter {name}"):
                return str(self.client.get_parameter(Name=name)["Parameter"]["Value"])
        except AwsError as exc:
            if exc.code == "ParameterNotFound":
                raise NotFoundError(str(exc), exc.code, exc.operation) from exc
            raise

    def put(self, name: str, value: str) -> None:
        with aws_call(f"PutParameter {name}"):
            self.client.put_parameter(Name=name, Value=value, Overwrite=True)

    def apply(
        self,
        changes: Iterable[ParameterChange],
        *,
        on_applied: Callable[[ParameterChange], None] = lambda _c: None,
    ) -> list[ParameterChange]:
        """Apply in order; all or nothing (on_applied, the journal, failing counts too).
        Returns the changes made: a parameter whose value is no longer `old` is skipped.
        The journal hears of each change BEFORE it is made: a process killed between the
        two then leaves a journaled change that restore undoes, or skips if still `old`."""
        done: list[ParameterChange] = []
        for change in changes:
            try:
                if self.value(change.name) != change.old:
                    continue  # changed since the plan: not ours to overwrite
                on_applied(change)
                done.append(change)
                self.put(change.name, change.new)
            except Exception as exc:  # any failure must not leave half the parameters moved
                back = self.restore(done)
                put_back = [c.name for c in back.restored]
                raise ApplyError(
                    f"re-pointing parameter {change.name} failed ({exc}); "
                    + (f"put back: {', '.join(put_back)}" if put_back else "nothing had changed")
                    + (f"; COULD NOT put back: {', '.join(back.failed)}" if back.failed else ""),
                    put_back,
                    list(back.failed),
                ) from exc
        return done

    def restore(self, changes: Iterable[ParameterChange]) -> RestoreResult:
        """Each parameter back to its journaled `old` value, newest first. Carries on past a
        failure (the emergency path) and reports it; running it again is harmless."""
        restored: list[ParameterChange] = []
        notes: list[str] = []
        failed: list[str] = []
        for change in reversed(list(changes)):
            try:
                current = self.value(change.name)
                if current == change.old:
                    continue
                if current != change.new:
                    notes.append(
                        f"parameter {change.name} changed since the cutover and goes back "
                        "to its journaled value too"
                    )
                self.put(change.name, change.old)
                restored.append(change)
            except NotFoundError:
                notes.append(f"parameter {change.name} no longer exists: not restored")
            except Exception as exc:  # report it and carry on with the others
                failed.append(f"{change.name} ({exc})")
        return RestoreResult(tuple(restored), tuple(notes), tuple(failed))
