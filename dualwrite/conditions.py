"""Conditions for repair writes (and a backfill re-run taking back what it put): succeed
only if the item is still what was read. Pure.

A repair is computed from one read of each side. Between that read and the write the live
replicator may apply a newer change; the write must then fail rather than undo it
(DESIGN.md section 2). So every repair carries a condition that compares every attribute of
the target item as read (DynamoDB compares numbers by value and sets unordered, like we do),
requires every attribute the repair adds to be still absent (a newer write that added it
fails the check), or, when the target held nothing, that it still holds nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from dualwrite.wire import AttributeValue, Item

#: DynamoDB's limit on the length of a condition expression
MAX_EXPRESSION_CHARS = 4096


class UnsafeRepair(ValueError):
    """The condition cannot be expressed (too many attributes): the repair is not written."""


@dataclass(frozen=True)
class Condition:
    expression: str
    names: dict[str, str] = field(default_factory=dict)
    values: dict[str, AttributeValue] = field(default_factory=dict)

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments for PutItem / DeleteItem."""
        out: dict[str, Any] = {"ConditionExpression": self.expression}
        if self.names:
            out["ExpressionAttributeNames"] = dict(self.names)
        if self.values:
            out["ExpressionAttributeValues"] = dict(self.values)
        return out


def still_holds(read: Item | None, key_names: Sequence[str], adds: Item | None = None) -> Condition:
    """The condition that the target item is still `read` (None: still absent).

    `adds` is the item the repair writes: attributes it has and `read` lacks must still be
    absent, so a concurrent write that added them makes the repair fail.
    """
    if not key_names:
        raise ValueError("a condition needs the table's key attribute names")
    if read is None:
        return Condition("attribute_not_exists(#k)", {"#k": key_names[0]})
    names: dict[str, str] = {}
    values: dict[str, AttributeValue] = {}
    clauses: list[str] = []
    for i, name in enumerate(sorted(read)):
        names[f"#a{i}"] = name
        values[f":v{i}"] = read[name]
        clauses.append(f"#a{i} = :v{i}")
    for j, name in enumerate(sorted(set(adds or {}) - set(read))):
        names[f"#n{j}"] = name
        clauses.append(f"attribute_not_exists(#n{j})")
    expression = " AND ".join(clauses)
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise UnsafeRepair(
            f"the item has too many attributes ({len(read)}) to condition a repair on all of them"
        )
    return Condition(expression, names, values)
