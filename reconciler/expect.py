"""What a target should hold, computed from source items with the route's mapping. Pure.

The same mapping functions the replicator and the backfill use, so the reconciler checks
exactly what the writers wrote.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence

from dualwrite.errors import UnmappableError
from dualwrite.mapping.base import Mapping, check_item_size
from dualwrite.wire import (
    MAX_ITEM_BYTES,
    AttributeValue,
    Item,
    Key,
    decode_json_item,
    key_id,
    key_of,
)
from reconciler.digest import fingerprint

NameFor = Callable[[AttributeValue], str | None]


def group_id(group: AttributeValue) -> str:
    """A hashable identity for a group value (a user id)."""
    return key_id({"g": group})


def direct(mapping: Mapping, target_names: Sequence[str], source_item: Item) -> tuple[Key, Item]:
    """The target key and item of a directly mapped source item (UnmappableError: quarantine)."""
    item = mapping.transform(source_item)
    return key_of(item, target_names), item


def direct_hashed(
    mapping: Mapping, target_names: Sequence[str], source_item: Item
) -> tuple[Key, int]:
    """`direct`, for the digests: the target key and the target item's hash (digest.item_hash).

    The hash's bytes bound the item's size, so the 400 KB check costs nothing more unless the
    bound is over the limit. The item may hold binary as base64 text (codec.binary_as_text):
    that text overstates the size, so an item near the limit is sized again decoded."""
    item = mapping.transform(source_item, check_size=False)
    hashed, bound = fingerprint(item)
    if bound > MAX_ITEM_BYTES:
        check_item_size(decode_json_item(item))
    return key_of(item, target_names), hashed


def direct_at(
    mapping: Mapping, target_names: Sequence[str], target_key: Key, source_item: Item | None
) -> Item | None:
    """What the target should hold at `target_key` given its source item (None: nothing).

    Raises UnmappableError when the source item cannot be mapped (it is not judged).
    """
    if source_item is None:
        return None
    key, item = direct(mapping, target_names, source_item)
    return item if key_id(key) == key_id(target_key) else None


def derived(
    mapping: Mapping,
    group: AttributeValue,
    members: Sequence[Item],
    name_for: NameFor | None,
) -> Item | None:
    """The derived item of a group from all its source items (None: there should be none)."""
    name = name_for(group) if name_for is not None and members else None
    return mapping.derive(group, members, name)


def target_partition(key: Key, hash_name: str) -> str:
    """Items with the same hash key value are contiguous in a scan of the target."""
    return key_id({hash_name: key[hash_name]})


def expected_items(
    mapping: Mapping,
    source_items: Sequence[Item],
    name_for: NameFor | None = None,
) -> list[Item]:
    """Every target item the mapping makes of these source items, unmappable ones left out.

    Holds everything in memory: for test data and benchmark set-up, not for the checks.
    """
    out: list[Item] = []
    groups: dict[str, tuple[AttributeValue, list[Item]]] = {}
    for item in source_items:
        with contextlib.suppress(UnmappableError):
            out.append(mapping.transform(item))
        group = mapping.group_of(item)
        if group is not None:
            groups.setdefault(group_id(group), (group, []))[1].append(item)
    for group, members in groups.values():
        made = derived(mapping, group, members, name_for)
        if made is not None:
            out.append(made)
    return out
