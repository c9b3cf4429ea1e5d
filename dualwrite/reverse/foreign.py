"""Foreign writes: a change to an old table after cutover that reverse replication did not
make (DESIGN.md section 8). Pure.

How reverse replication's own writes are recognised. A marker attribute would pollute the
application's data, and comparing a source change with the inverse of the target's current
item gives false alarms whenever the target moved on between our write and the check (our
write of version 2 compared with a target already at version 3). Instead the reverse writer
journals, *before* it writes, the fingerprint of every source image its writes leave (key
and whole item, or the key alone for a delete) with the time span of the writes: an
OwnWrites record per batch (one control-table item per batch, not per write). The span is
journaled open (the longest the batch may take) and narrowed to the writes' real end once
they have all returned, so that a stray write setting an image we wrote minutes before is
not taken for ours. A source-
stream change in the check window (direction.Verdict.CHECK_FOREIGN) is ours exactly when
its key and new image match a fingerprint journaled for a span that contains its
ApproximateCreationDateTime. A change that also matches what reverse replication would make
of the target now (`explained`) is harmless whoever made it: nothing of it can be lost.

An UPDATE's fingerprint is of the image it leaves given the item read before it, so a write
that raced a foreign one (and so left another image) is reported too.
"""

from __future__ import annotations

import marshal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from hashlib import sha256
from typing import Any

from dualwrite.jsondoc import JsonObject
from dualwrite.reverse.direction import Direction, Side, Verdict, decide
from dualwrite.reverse.model import KeyId, SourceWrite, kid, leaves
from dualwrite.wire import (
    Item,
    Key,
    decode_json_item,
    items_equal,
    number_spelling,
    to_lambda_json,
)

#: how far a change's ApproximateCreationDateTime may lie outside the span its writer's
#: clock journaled: it is rounded down to the second, and the clock of a runner on a laptop
#: or a VM may be off by more than the direction's 5 s margin. 30 s keeps the window a stray
#: writer can hide in short (it was the batch's whole 900 s before spans were narrowed)
SPAN_SLACK_S = 30.0


def _plain_integer(text: str) -> bool:
    return text.isdigit() and (text[0] != "0" or len(text) == 1)


def _canonical(value: Any) -> Any:
    """A form equal for values DynamoDB holds as equal (numbers by value, sets and map keys
    unordered), made of what marshal writes. A value already in its one spelling (a string,
    a plain integer) is used as it is."""
    ((t, v),) = value.items()
    if t == "S" or t == "BOOL" or t == "NULL":
        return value
    if t == "N":
        if _plain_integer(v):
            return value
        plain = number_spelling(v)
        return value if plain == v else {"N": plain}
    if t == "M":
        return ("M", _body(v))
    if t == "L":
        return ("L", [_canonical(x) for x in v])
    if t == "SS":
        return ("SS", sorted(v))
    if t == "NS":
        return ("NS", sorted([x if _plain_integer(x) else number_spelling(x) for x in v]))
    if t == "B":
        return value if v.__class__ is bytes else {"B": _bytes(v)}
    return (t, sorted([_bytes(x) for x in v]))


def _body(image: Item) -> list[Any]:
    """An item's (or map's) attributes in name order, each value canonical: a flat list
    [name, value, name, value, ...]. On the path of every reverse write and of every source
    change checked for foreign writes, so strings and plain integers (most values) skip the
    call. The form is the journal's (entries outlive a deploy): tests pin it."""
    out: list[Any] = []
    append = out.append
    for name, value in sorted(image.items()):
        append(name)
        if "S" in value or "BOOL" in value:
            append(value)
            continue
        n = value.get("N")
        append(value if n is not None and _plain_integer(n) else _canonical(value))
    return out


def _bytes(value: Any) -> bytes:
    return value.encode("ascii") if isinstance(value, str) else bytes(value)


def fingerprint(key: Key, image: Item | None) -> str:
    """The fingerprint of a source item as a write leaves it (None: deleted)."""
    return key_fingerprint(kid(key), image)


def key_fingerprint(key: KeyId, image: Item | None) -> str:
    """fingerprint() of a key already turned into its kid. marshal version 2 writes no
    back-references, so equal canonical forms give equal bytes in every process."""
    body = None if image is None else _body(image)
    return sha256(marshal.dumps((key, body), 2)).hexdigest()[:32]


@dataclass(frozen=True)
class OwnWrites:
    """What one reverse batch writes to a route's source, journaled before it writes."""

    route: str
    #: the span in which the writes are made (epoch seconds)
    at: float
    until: float
    fingerprints: frozenset[str]
    #: names the entry, so that journaling it again (its span narrowed) replaces it
    id: str = ""

    def covers(self, created_at: float | None) -> bool:
        if created_at is None:
            return True
        return self.at - SPAN_SLACK_S <= created_at <= self.until + SPAN_SLACK_S

    def to_json(self) -> JsonObject:
        return {
            "route": self.route,
            "at": self.at,
            "until": self.until,
            "fingerprints": sorted(self.fingerprints),
            "id": self.id,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> OwnWrites:
        return cls(
            route=str(data["route"]),
            at=float(data["at"]),
            until=float(data["until"]),
            fingerprints=frozenset(str(f) for f in data.get("fingerprints", ())),
            id=str(data.get("id", "")),
        )


def own_writes(
    route: str,
    writes: Sequence[SourceWrite],
    current: Mapping[KeyId, Item],
    at: float,
    until: float,
    id: str = "",
) -> OwnWrites:
    """The journal entry of netted writes (one per key) against the items read before."""
    prints = frozenset(key_fingerprint(w.kid, leaves(w, current.get(w.kid))) for w in writes)
    return OwnWrites(route, at, until, prints, id)


def narrowed(own: OwnWrites, now: float) -> OwnWrites:
    """The entry once its writes have all returned (landed, refused, or failed for good):
    its span ends now (a batch that ran past its open span gets its real end; a clock
    stepped back leaves it no shorter than a moment). Journaled again under its id, it
    replaces the open entry, so that a stray write of the same image later is foreign."""
    return replace(own, until=max(own.at, now))


@dataclass(frozen=True)
class SourceChange:
    """A record of a source table's stream, as foreign-write detection needs it."""

    key: Key
    #: None for a delete
    new_image: Item | None
    created_at: float | None
    sequence_number: str = ""


@dataclass(frozen=True)
class ForeignWrite:
    route: str
    key: Key
    #: ApproximateCreationDateTime of the change
    at: float | None
    #: when forward replication, live again after a rollback, carried the key's source item
    #: to the target (None: not yet)
    remapped_at: float | None = None
    #: when an operator resolved it (`dualwrite foreign --resolve`), and why (None: listed)
    resolved_at: float | None = None
    resolution: str | None = None

    @property
    def resolved(self) -> bool:
        return self.resolved_at is not None

    def to_json(self) -> JsonObject:
        return {
            "route": self.route,
            "key": to_lambda_json(self.key),
            "at": self.at,
            "remapped_at": self.remapped_at,
            "resolved_at": self.resolved_at,
            "resolution": self.resolution,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ForeignWrite:
        at, remapped, resolved = data.get("at"), data.get("remapped_at"), data.get("resolved_at")
        resolution = data.get("resolution")
        return cls(
            str(data["route"]),
            decode_json_item(data["key"]),
            float(at) if at is not None else None,
            float(remapped) if remapped is not None else None,
            float(resolved) if resolved is not None else None,
            str(resolution) if resolution is not None else None,
        )


def is_ours(change: SourceChange, journal: Sequence[OwnWrites]) -> bool:
    fp = fingerprint(change.key, change.new_image)
    return any(fp in j.fingerprints and j.covers(change.created_at) for j in journal)


def foreign_writes(
    route: str,
    state: Direction,
    changes: Sequence[SourceChange],
    journal: Sequence[OwnWrites],
    explained: Mapping[KeyId, Item | None] | None = None,
) -> list[ForeignWrite]:
    """The foreign writes among a batch of source-stream changes of one route.

    Only changes in the check window count (made to the source after T+O while reverse is
    live). `explained` (optional): kid -> what reverse replication makes of the target's
    current item (None: no item), for the keys of these changes."""
    out: list[ForeignWrite] = []
    for change in changes:
        if decide(state, Side.SOURCE, change.created_at) is not Verdict.CHECK_FOREIGN:
            continue
        if is_ours(change, journal):
            continue
        if explained is not None:
            key = kid(change.key)
            if key in explained:
                wanted = explained[key]
                if wanted is None and change.new_image is None:
                    continue
                if (
                    wanted is not None
                    and change.new_image is not None
                    and items_equal(wanted, change.new_image)
                ):
                    continue
        out.append(ForeignWrite(route, change.key, change.created_at))
    return out
