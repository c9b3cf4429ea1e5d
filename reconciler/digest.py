"""Per-bucket digests of what a target should hold and what it holds. Pure.

The first phase of a check scans each table once and folds every item into the bucket of
its target key: the expected items (mapping(source)) add (count 1, H(item)), the items the
target holds subtract them. A bucket whose count and sum both come back to zero holds
exactly the expected items (barring a 128-bit hash collision); only buckets that do not
are checked item by item (BatchGetItem, re-read before judging). At parity that saves
every per-item read, which is most of the cost of a check, and memory stays a fixed
number of buckets whatever the table size.

H is SHA-256 (in hardware on current x86 and ARM: 1.7x quicker than BLAKE2b on a 4 KB item
here), cut to 128 bits, of the item with its attributes in name order, written in marshal
format 2 (C, about three times cheaper than JSON with sorted keys), so attribute order never
matters. The digest phase reads binary as base64 text on both sides (codec.binary_as_text),
so H sees text where the exact phase sees bytes; bucket_of sees the same bucket in both.
Nested maps are hashed in the order DynamoDB returns them: both sides are read from
DynamoDB and the target's copy was written from the source's, so equal content comes back
alike (sorting every nested map cost a third of the hash). Two equal items can still
serialize differently (a number written as 1.50 and read as 1.5, a set or nested map
returned in another order): such a bucket merely goes to the exact check, which compares by
value. Different items never hash alike (short of a collision).
"""

from __future__ import annotations

import base64
import json
import marshal
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from hashlib import sha256
from typing import Any

from dualwrite.jsondoc import JsonObject
from dualwrite.wire import Item, Key, item_size, to_lambda_json

DEFAULT_BUCKETS = 512
MODULUS = 1 << 128
#: what H and the buckets are; digests saved with another format do not add up with these
FORMAT = 2  # 1: BLAKE2b, CRC-32 of formatted key text; 2: SHA-256, CRC-32 of marshal bytes


def _default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return {"__b64__": base64.b64encode(bytes(value)).decode("ascii")}
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


# for items marshal cannot write: one encoder for every call, no circular reference
# bookkeeping (items are trees)
_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), default=_default, check_circular=False
)


def fingerprint(item: Mapping[str, Any]) -> tuple[int, int]:
    """A 128-bit hash of an item, independent of attribute order, and an upper bound of its
    size as DynamoDB counts it (what wire.size_bound gives, from the same bytes)."""
    try:
        # (name, value) pairs in name order (names are unique: values are never compared);
        # format 2: no shared references, so equal content always gives equal bytes
        data = marshal.dumps(sorted(item.items()), 2)
        bound = len(data)
    except ValueError:  # not plain wire format: sorted JSON says the same, slower
        data = b"j" + _ENCODER.encode(item).encode("utf-8")
        bound = item_size(item)  # exact: marshal could not write it
    return int.from_bytes(sha256(data).digest()[:16], "big"), bound


def item_hash(item: Mapping[str, Any]) -> int:
    """A 128-bit hash of an item, independent of attribute order."""
    return fingerprint(item)[0]


def bucket_of(key: Key, buckets: int) -> int:
    """The bucket of a target key (stable across processes, unlike hash()).

    Keys as DynamoDB returns them (numbers normalized), so no further normalization: a key
    spelled two ways would only send its bucket to the exact check. Binary counts as its
    base64 text, read as bytes or as text (the digest phase reads text, the exact phase
    bytes: both must pick the same bucket, or the exact phase would look in the wrong one).
    """
    for value in key.values():
        raw = value.get("B")
        if raw is not None and raw.__class__ is not str:
            key = to_lambda_json(key)  # binary as base64 text
            break
    try:
        data = marshal.dumps(sorted(key.items()), 2)
    except ValueError:  # not plain wire format
        data = b"j" + _ENCODER.encode(key).encode("utf-8")
    return zlib.crc32(data) % buckets


@dataclass
class Digests:
    """One route's running difference per bucket: expected minus actual, count and sum."""

    buckets: int = DEFAULT_BUCKETS
    counts: list[int] = field(default_factory=list)
    sums: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.counts:
            self.counts = [0] * self.buckets
        if not self.sums:
            self.sums = [0] * self.buckets

    # sums are reduced modulo 2**128 only when read: a few more bits per item are cheaper
    # than a division per item on the hot path
    def expect(self, key: Key, item: Item) -> None:
        self.expect_hash(key, item_hash(item))

    def expect_hash(self, key: Key, hashed: int) -> None:
        b = bucket_of(key, self.buckets)
        self.counts[b] += 1
        self.sums[b] += hashed

    def hold(self, key: Key, item: Item) -> None:
        b = bucket_of(key, self.buckets)
        self.counts[b] -= 1
        self.sums[b] -= item_hash(item)

    def _reduce(self) -> None:
        self.sums = [total % MODULUS for total in self.sums]

    def add(self, other: Digests) -> None:
        if other.buckets != self.buckets:
            raise ValueError("digests with different bucket counts do not add up")
        for b in range(self.buckets):
            self.counts[b] += other.counts[b]
            self.sums[b] = (self.sums[b] + other.sums[b]) % MODULUS

    def mismatched(self) -> frozenset[int]:
        """The buckets where the target does not hold exactly the expected items."""
        self._reduce()
        return frozenset(b for b in range(self.buckets) if self.counts[b] != 0 or self.sums[b] != 0)

    def to_json(self) -> JsonObject:
        """Compact: only the buckets not at zero."""
        self._reduce()
        return {
            "buckets": self.buckets,
            "open": {
                str(b): [self.counts[b], format(self.sums[b], "x")]
                for b in range(self.buckets)
                if self.counts[b] or self.sums[b]
            },
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Digests:
        d = cls(int(data.get("buckets", DEFAULT_BUCKETS)))
        for b, (count, total) in (data.get("open") or {}).items():
            d.counts[int(b)] = int(count)
            d.sums[int(b)] = int(str(total), 16)
        return d
