"""The pure core of the replicator: what each stream record means for the target, and the
fewest writes that give the same final state as applying the records one by one.

classify() turns one record into target writes (puts of transformed items, deletes of the
target keys of a removed source key) or a quarantine reason. coalesce() folds a batch's
classified records into one write per target key (last change wins, so no BatchWriteItem ever
carries a duplicate key) and the set of groups (users) whose derived item must be recomputed.

Ordering rule (DESIGN.md section 7): once a record fails, every later record of the same
*source* key in the batch is not applied ("blocked") and is reported failed, so nothing
overtakes it; the stream redelivers them all, in order, from the lowest failed record.

No boto3, no clock, no environment.
"""

from __future__ import annotations

import binascii
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from dualwrite.errors import UnmappableError
from dualwrite.mapping.base import Mapping
from dualwrite.mapping.memberships import MembershipsMapping, is_unknown_role
from dualwrite.wire import AttributeValue, Item, Key, decode_json_item, key_id
from stream_replicator.records import EVENT_NAMES, REMOVE, Change, StreamBody

#: one request of a BatchWriteItem call (AWS's shape): {"PutRequest"} or {"DeleteRequest"}
WriteRequest = dict[str, Any]

PUT = "put"
DELETE = "delete"
QUARANTINE = "quarantine"

KeyIdentity = Any  # hashable: a tuple of raw string values, or key_id() text


def fast_key_id(key: Key, names: Sequence[str]) -> KeyIdentity:
    """A hashable identity for a key of a known schema. A table's key attributes have one
    type each, so string values can stand for themselves; anything else uses key_id (which
    normalises numbers and binary)."""
    parts: list[str] = []
    for name in names:
        value = key.get(name)
        if value is None:
            return key_id(key)
        text = value.get("S")
        if text is None or len(value) != 1:
            return key_id({n: key[n] for n in names if n in key})
        parts.append(text)
    return tuple(parts)


class Classified(NamedTuple):
    """What one record asks of the target (immutable; a NamedTuple is the cheapest to build)."""

    change: Change
    kind: str  # PUT, DELETE or QUARANTINE
    #: identity of the record's source key (None when the record carries no usable key)
    source_kid: KeyIdentity | None
    #: (target key, item) pairs; item None deletes the key
    writes: tuple[tuple[Key, Item | None], ...] = ()
    #: the group (user) whose derived item this record may change
    group: AttributeValue | None = None
    group_kid: KeyIdentity | None = None
    reason: str | None = None
    unknown_role: bool = False


def _decode(body: StreamBody, name: str) -> Item | None:
    """An image of the record, with binary decoded."""
    image = body.get(name)
    if image is None:
        return None
    if not isinstance(image, dict):
        raise ValueError(f"dynamodb.{name} is not a map")
    try:
        return decode_json_item(image)
    except (AttributeError, TypeError) as exc:
        raise ValueError(f"dynamodb.{name} holds something that is not an AttributeValue") from exc


def _source_key(names: Sequence[str], *candidates: Item | None) -> Key | None:
    for candidate in candidates:
        if candidate is None:
            continue
        key: Key = {}
        for n in names:
            value = candidate.get(n)
            if value is None:
                break
            key[n] = value
        else:
            return key
    return None


def _group(mapping: Mapping, key: Key | None) -> tuple[AttributeValue | None, KeyIdentity | None]:
    if key is None or not mapping.group_attr:
        return None, None
    group = mapping.group_of(key)
    if group is None:
        return None, None
    return group, fast_key_id({"g": group}, ("g",))


def _quarantined(
    mapping: Mapping,
    change: Change,
    reason: str,
    kid: KeyIdentity | None = None,
    key: Key | None = None,
) -> Classified:
    group, group_kid = _group(mapping, key)
    return Classified(change, QUARANTINE, kid, group=group, group_kid=group_kid, reason=reason)


def classify(mapping: Mapping, change: Change, target_key_names: Sequence[str]) -> Classified:
    """What a record means for the target. Never raises: a record that can never succeed
    (bad data, an image that does not decode, a mapping that refuses it or fails on it) comes
    back as QUARANTINE with its reason, and is kept in the quarantine by the adapter."""
    event = change.event_name
    if event not in EVENT_NAMES:
        return _quarantined(mapping, change, f"unknown eventName {event!r}")
    names = mapping.source_key.names
    # decode only what this record needs: the old image of an update is never used
    new: Item | None = None
    try:
        if event == REMOVE:
            source_key = _source_key(names, _decode(change.body, "Keys")) or _source_key(
                names, _decode(change.body, "OldImage")
            )
        else:
            # the new image holds the key (the same values as Keys): Keys is decoded only
            # when it does not
            new = _decode(change.body, "NewImage")
            source_key = _source_key(names, new) or _source_key(names, _decode(change.body, "Keys"))
    except (ValueError, TypeError, binascii.Error) as exc:
        return _quarantined(mapping, change, f"stream record cannot be decoded: {exc}")
    if source_key is None:
        return _quarantined(
            mapping, change, f"stream record carries no complete source key ({', '.join(names)})"
        )
    kid = fast_key_id(source_key, names)
    group, group_kid = _group(mapping, source_key)

    if event == REMOVE:
        try:
            targets = mapping.target_keys(source_key)
        except UnmappableError as exc:
            return _quarantined(mapping, change, exc.reason, kid, source_key)
        except Exception as exc:  # a mapping bug must not block the shard: keep the record
            reason = f"mapping failed: {type(exc).__name__}: {exc}"
            return _quarantined(mapping, change, reason, kid, source_key)
        return Classified(change, DELETE, kid, tuple((t, None) for t in targets), group, group_kid)

    if new is None:
        reason = f"{event} record has no NewImage (the stream must be NEW_AND_OLD_IMAGES)"
        return _quarantined(mapping, change, reason, kid, source_key)
    try:
        target = mapping.transform(new)
        target_key = {n: target[n] for n in target_key_names}
    except UnmappableError as exc:
        return _quarantined(mapping, change, exc.reason, kid, source_key)
    except KeyError as exc:
        reason = f"mapped item lacks target key attribute {exc}"
        return _quarantined(mapping, change, reason, kid, source_key)
    except Exception as exc:  # a mapping bug must not block the shard: keep the record
        reason = f"mapping failed: {type(exc).__name__}: {exc}"
        return _quarantined(mapping, change, reason, kid, source_key)
    unknown = isinstance(mapping, MembershipsMapping) and is_unknown_role(new)
    return Classified(
        change, PUT, kid, ((target_key, target),), group, group_kid, unknown_role=unknown
    )


@dataclass
class TargetWrite:
    """One coalesced write: the final item of a target key (None deletes it), and the
    records whose effect it carries (they fail if it cannot be written)."""

    key: Key
    item: Item | None
    contributors: list[int] = field(default_factory=list)

    def to_wire(self) -> WriteRequest:
        if self.item is not None:
            return {"PutRequest": {"Item": self.item}}
        return {"DeleteRequest": {"Key": self.key}}


@dataclass
class GroupWork:
    """A group (user) whose derived item is recomputed once for the batch."""

    value: AttributeValue
    contributors: list[int] = field(default_factory=list)


@dataclass
class Plan:
    #: direct writes, one per target key, keyed by target key identity
    writes: dict[KeyIdentity, TargetWrite]
    #: groups to recompute, keyed by group identity
    groups: dict[KeyIdentity, GroupWork]
    #: records not applied because an earlier record of their source key failed
    blocked: set[int]


def coalesce(
    items: Sequence[Classified], failed: Collection[int], target_key_names: Sequence[str]
) -> Plan:
    """One write per target key (the last change wins) for the records that may be applied."""
    writes: dict[KeyIdentity, TargetWrite] = {}
    groups: dict[KeyIdentity, GroupWork] = {}
    blocked: set[int] = set()
    broken: set[KeyIdentity] = set()
    for c in items:
        index = c.change.index
        if index in failed:
            if c.source_kid is not None:
                broken.add(c.source_kid)
            continue
        if c.source_kid is not None and c.source_kid in broken:
            blocked.add(index)
            continue
        for tkey, item in c.writes:
            tkid = fast_key_id(tkey, target_key_names)
            write = writes.get(tkid)
            if write is None:
                writes[tkid] = TargetWrite(tkey, item, [index])
            else:  # the last change wins
                write.item = item
                write.contributors.append(index)
        if c.group_kid is not None and c.group is not None:
            work = groups.get(c.group_kid)
            if work is None:
                work = groups[c.group_kid] = GroupWork(c.group)
            work.contributors.append(index)
    return Plan(writes, groups, blocked)


def close_failures(items: Sequence[Classified], failed: Collection[int]) -> set[int]:
    """Failed records plus every later record of the same source key (nothing overtakes)."""
    out: set[int] = set()
    broken: set[KeyIdentity] = set()
    for c in items:
        index = c.change.index
        if index in failed or (c.source_kid is not None and c.source_kid in broken):
            out.add(index)
            if c.source_kid is not None:
                broken.add(c.source_kid)
    return out
