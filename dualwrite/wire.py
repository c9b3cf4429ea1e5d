"""DynamoDB wire format (AttributeValue dicts): comparison, sizing, keys, Lambda JSON.

Pure: no boto3, no clock, no environment.
"""

from __future__ import annotations

import base64
import json
import marshal
import re
from collections.abc import Iterable, Mapping, Sequence
from decimal import Context, Decimal, InvalidOperation
from typing import Any

AttributeValue = dict[str, Any]
Item = dict[str, AttributeValue]
Key = dict[str, AttributeValue]

MAX_ITEM_BYTES = 400 * 1024
SCALAR_TYPES = ("S", "N", "B")


def av_type(value: Mapping[str, Any]) -> str:
    """The single type tag of an AttributeValue."""
    if len(value) != 1:
        raise ValueError(f"not an AttributeValue: {sorted(value)}")
    return next(iter(value))


#: DynamoDB numbers have up to 38 significant digits (Decimal's default context rounds to 28)
_DIGITS = Context(prec=40)

#: a number in the one spelling DynamoDB gives back ("leading and trailing zeroes are
#: trimmed"): positional, no exponent, no needless zeros, no "-0". Most numbers are.
PLAIN_NUMBER = re.compile(r"-?[1-9][0-9]*(?:\.[0-9]*[1-9])?|-?0\.[0-9]*[1-9]|0")


def number_spelling(text: str) -> str:
    """The spelling DynamoDB stores and streams a number in (2.0 and 2E0 as "2")."""
    if PLAIN_NUMBER.fullmatch(text):
        return text
    try:
        d = Decimal(text)
    except InvalidOperation:
        return text  # not a number: it has no other spelling (DynamoDB holds none such)
    if not d:
        return "0"
    return format(d.normalize(_DIGITS), "f")


def _number(text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation as exc:
        raise ValueError(f"not a DynamoDB number: {text!r}") from exc


def _as_bytes(value: Any) -> bytes:
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, str):
        return base64.b64decode(value)
    raise TypeError(f"not binary: {type(value).__name__}")


def values_equal(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Equality as DynamoDB means it: numbers by value, sets unordered, maps by key."""
    if a == b:  # the same spelling (the usual, and all echoes): equal, decided in C
        return True
    ta, tb = av_type(a), av_type(b)
    if ta != tb:
        return False
    va, vb = a[ta], b[tb]
    if ta == "N":
        return _number(va) == _number(vb)
    if ta == "B":
        return _as_bytes(va) == _as_bytes(vb)
    if ta == "SS":
        return set(va) == set(vb)
    if ta == "NS":
        return {_number(x) for x in va} == {_number(x) for x in vb}
    if ta == "BS":
        return {_as_bytes(x) for x in va} == {_as_bytes(x) for x in vb}
    if ta == "M":
        return items_equal(va, vb)
    if ta == "L":
        return len(va) == len(vb) and all(values_equal(x, y) for x, y in zip(va, vb, strict=True))
    return bool(va == vb)


def items_equal(a: Mapping[str, Mapping[str, Any]], b: Mapping[str, Mapping[str, Any]]) -> bool:
    """Item equality, attribute for attribute (an identical item is decided in C)."""
    if a == b:
        return True
    if a.keys() != b.keys():
        return False
    # values_equal of the attributes that differ in spelling only (values_equal's own first
    # test, a == b, made here without the call: most attributes of a changed item are equal)
    for k, x in a.items():
        y = b[k]
        if x != y and not values_equal(x, y):
            return False
    return True


def diff_attributes(
    expected: Mapping[str, Mapping[str, Any]], actual: Mapping[str, Mapping[str, Any]]
) -> list[str]:
    """Names of attributes that differ (missing, extra or unequal), sorted. Never values."""
    names = set(expected) | set(actual)
    return sorted(
        n
        for n in names
        if n not in expected or n not in actual or not values_equal(expected[n], actual[n])
    )


def _number_size(text: str) -> int:
    digits = text.lstrip("-").replace(".", "").split("e")[0].split("E")[0].strip("0")
    return (len(digits) + 1) // 2 + 1


def _text_size(text: str) -> int:
    # UTF-8 length; ASCII (the common case) needs no encoding pass
    return len(text) if text.isascii() else len(text.encode("utf-8"))


def value_size(value: Mapping[str, Any]) -> int:
    """Bytes DynamoDB bills for a value (its documented sizing rules).

    On every replicated and backfilled item (the 400 KB check), so it avoids generic helpers.
    """
    try:
        ((t, v),) = value.items()
    except ValueError:
        raise ValueError(f"not an AttributeValue: {sorted(value)}") from None
    if t == "S":
        return _text_size(v)
    if t == "N":
        return _number_size(v)
    if t == "M":
        return 3 + sum(_text_size(k) + value_size(x) + 1 for k, x in v.items())
    if t == "L":
        return 3 + sum(value_size(x) + 1 for x in v)
    if t in ("BOOL", "NULL"):
        return 1
    if t == "B":
        return len(v) if isinstance(v, bytes | bytearray) else len(_as_bytes(v))
    if t == "SS":
        return sum(_text_size(x) for x in v)
    if t == "NS":
        return sum(_number_size(x) for x in v)
    if t == "BS":
        return sum(len(_as_bytes(x)) for x in v)
    raise ValueError(f"unknown AttributeValue type {t!r}")


def item_size(item: Mapping[str, Mapping[str, Any]]) -> int:
    """Size of an item as DynamoDB counts it against the 400 KB limit."""
    return sum(_text_size(name) + value_size(v) for name, v in item.items())


def size_bound(item: Mapping[str, Mapping[str, Any]]) -> int:
    """A cheap upper bound of item_size, so most items clear the 400 KB check without a full
    count: the length of the item in marshal format 2, written in C. That format writes every
    value in full (format 3 added shared references, which could undercount), and spends at
    least as many bytes as DynamoDB counts on each part: text in UTF-8 plus a tag and length,
    binary the same, a number's text (DynamoDB stores about half its digits), tag and length
    bytes on every map and list entry beyond DynamoDB's 1 byte each and 3 per container."""
    try:
        return len(marshal.dumps(item, 2))  # type: ignore[arg-type]  # others: ValueError
    except ValueError:  # not plain wire format (a Decimal, a mapping proxy): count exactly
        return item_size(item)


def over_item_limit(item: Mapping[str, Mapping[str, Any]]) -> int | None:
    """The item's size when it is over 400 KB, else None (counted exactly only when needed)."""
    if size_bound(item) <= MAX_ITEM_BYTES:
        return None
    size = item_size(item)
    return size if size > MAX_ITEM_BYTES else None


def key_of(item: Mapping[str, AttributeValue], key_attrs: Sequence[str]) -> Key:
    """The key attributes of an item."""
    return {a: item[a] for a in key_attrs}


def key_id(key: Mapping[str, Mapping[str, Any]]) -> str:
    """A stable, hashable identity for a key (for dicts, sets and log lines)."""
    parts = []
    for name in sorted(key):
        t = av_type(key[name])
        raw = key[name][t]
        if t == "B":
            raw = base64.b64encode(_as_bytes(raw)).decode()
        elif t == "N":
            # 40 digits, not the default context's 28: DynamoDB keeps 38, and two ids that
            # differ past the 28th would share one identity (one's change lost)
            raw = str(_number(raw).normalize(_DIGITS))
        parts.append([name, t, raw])
    return json.dumps(parts, separators=(",", ":"), ensure_ascii=False)


def sort_value(value: Mapping[str, Any]) -> tuple[int, Any]:
    """A total order over scalar values (S, N, B) for 'smallest' comparisons."""
    t = av_type(value)
    if t == "N":
        return (0, _number(value["N"]))
    if t == "S":
        return (1, value["S"])
    if t == "B":
        return (2, _as_bytes(value["B"]))
    return (3, json.dumps(value, sort_keys=True, default=str))


def key_text(key: Mapping[str, Mapping[str, Any]]) -> str:
    """A key as people read it in messages: name=value, space separated."""
    return " ".join(f"{n}={scalar_text(v)}" for n, v in key.items())


def scalar_text(value: Mapping[str, Any]) -> str:
    """The text of a scalar key value, as used inside composite keys like SERVER#<id>."""
    t = av_type(value)
    if t == "S":
        return str(value["S"])
    if t == "N":  # DynamoDB's spelling (what it gives back; moto keeps "1.50" as written)
        return number_spelling(str(value["N"]))
    raise ValueError(f"key value of type {t} cannot be embedded in a string key")


def from_lambda_json(value: Any) -> Any:
    """Stream images in a Lambda event carry binary as base64 text; boto3 wants bytes."""
    if isinstance(value, dict):
        if len(value) == 1:
            ((t, v),) = value.items()
            if t == "B" and isinstance(v, str):
                return {"B": base64.b64decode(v)}
            if t == "BS" and isinstance(v, list):
                return {"BS": [base64.b64decode(x) if isinstance(x, str) else x for x in v]}
            if t == "M" and isinstance(v, dict):
                return {"M": {k: from_lambda_json(x) for k, x in v.items()}}
            if t == "L" and isinstance(v, list):
                return {"L": [from_lambda_json(x) for x in v]}
            if t in ("S", "N", "SS", "NS", "BOOL", "NULL"):
                return value
        return {k: from_lambda_json(x) for k, x in value.items()}
    return value


_AS_IS = frozenset(("S", "N", "BOOL", "NULL", "SS", "NS"))
_b64decode = base64.b64decode


def decode_json_value(value: Any) -> AttributeValue:
    """One AttributeValue from DynamoDB JSON (a Lambda event, a response body): binary
    (base64 text there) becomes bytes, the rest is taken as it is. A faster twin of
    from_lambda_json for well-formed values, on the path of every replicated, backfilled and
    reconciled item."""
    if value.__class__ is not dict:  # a string or list would unpack below
        raise ValueError(f"not an AttributeValue: {type(value).__name__}")
    (t,) = value  # exactly one type tag, or ValueError
    if t in _AS_IS:
        return value
    if t == "M":
        return {"M": {k: decode_json_value(x) for k, x in value["M"].items()}}
    if t == "L":
        return {"L": [decode_json_value(x) for x in value["L"]]}
    if t == "B":
        raw = value["B"]
        return {"B": _b64decode(raw, validate=True) if isinstance(raw, str) else raw}
    if t == "BS":
        return {
            "BS": [_b64decode(x, validate=True) if isinstance(x, str) else x for x in value["BS"]]
        }
    raise ValueError(f"not an AttributeValue: {t!r}")


def decode_json_item(image: Mapping[str, Any]) -> Item:
    """An item (or key) from DynamoDB JSON, with decode_json_value on every attribute."""
    return {name: decode_json_value(value) for name, value in image.items()}


def to_lambda_json(value: Any) -> Any:
    """The inverse of from_lambda_json: what Lambda puts in an event (JSON-safe)."""
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dict):
        return {k: to_lambda_json(x) for k, x in value.items()}
    if isinstance(value, list):
        return [to_lambda_json(x) for x in value]
    return value


def item_from_lambda(image: Mapping[str, Any]) -> Item:
    return {k: from_lambda_json(v) for k, v in image.items()}


def strings(values: Iterable[str]) -> AttributeValue:
    """A list of strings as an L AttributeValue (order kept, unlike SS)."""
    return {"L": [{"S": v} for v in values]}
