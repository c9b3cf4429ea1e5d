"""A faster JSON codec for the DynamoDB calls that move items in bulk, on botocore's events.

botocore validates, serializes and parses every AttributeValue by walking its service model
in Python. For a 1 KB item that is about 80-130 us to parse and 230 us to validate and
serialize (`python -m bench.codec`), more than a local DynamoDB spends on it: the client, not
the table, limited the backfill and the reconciler. For the bulk calls this module does the
same work with the json module (C) and one direct walk of the wire format:

- `before-parameter-build` of BatchWriteItem: RequestItems are encoded to the request body
  here and kept in the request context; botocore validates and serializes a one-request
  stand-in with the same table names (endpoint rules read them) instead.
- `before-call` of BatchWriteItem: the stand-in body is swapped for the real one (signing and
  Content-Length come after this event).
- `before-parse` of Scan, Query and BatchGetItem: on a 2xx response the items are parsed here
  and handed over in `customized_response_dict`; botocore parses the rest of the body as ever
  (keys, counts, consumed capacity, UnprocessedKeys) and every error response.

What it cannot encode (anything but plain wire format) it leaves to botocore, so a malformed
request fails with botocore's own ParamValidationError. The result is the same dicts boto3
returns: binary as bytes, numbers as strings. Inside `binary_as_text()` the current thread's
reads skip that last walk and keep binary as its base64 text, as DynamoDB sent it: for
readers that only compare what they read with other reads (the reconciler's digests), never
for items that are written back.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from dualwrite.wire import decode_json_item

_BODY = "dualwrite_codec_body"

# botocore emits before-parse in the thread that makes the call
_mode = threading.local()


@contextmanager
def binary_as_text() -> Iterator[None]:
    """Items read by this thread keep binary values as base64 text (no per-value walk: a
    third of the client's CPU per item for nested items, measured on the reconciler)."""
    before = getattr(_mode, "as_text", False)
    _mode.as_text = True
    try:
        yield
    finally:
        _mode.as_text = before


#: values written as they are, and the Python type each must have
_SCALARS: dict[str, type] = {"S": str, "N": str, "BOOL": bool, "NULL": bool}


class _NotWireFormat(Exception):
    """A request value the fast encoder does not handle (botocore takes it)."""


def _encode(value: Any) -> Any:
    """One AttributeValue as DynamoDB JSON (binary as base64), checking its shape as botocore's
    validator would; anything unexpected raises _NotWireFormat."""
    if type(value) is not dict or len(value) != 1:
        raise _NotWireFormat
    ((t, v),) = value.items()
    scalar = _SCALARS.get(t)
    if scalar is not None:
        if type(v) is not scalar:
            raise _NotWireFormat
        return value
    if t == "M":
        if type(v) is not dict:
            raise _NotWireFormat
        return {"M": {k: _encode(x) for k, x in v.items()}}
    if t == "L":
        if type(v) is not list:
            raise _NotWireFormat
        return {"L": [_encode(x) for x in v]}
    if t == "B":
        if type(v) is not bytes:
            raise _NotWireFormat
        return {"B": base64.b64encode(v).decode("ascii")}
    if t == "SS" or t == "NS":
        if type(v) is not list or not all(type(x) is str for x in v):
            raise _NotWireFormat
        return value
    if t == "BS":
        if type(v) is not list or not all(type(x) is bytes for x in v):
            raise _NotWireFormat
        return {"BS": [base64.b64encode(x).decode("ascii") for x in v]}
    raise _NotWireFormat


def _encode_item(item: Any) -> dict[str, Any]:
    if type(item) is not dict or not item:
        raise _NotWireFormat
    return {name: _encode(value) for name, value in item.items()}


def _encode_write(request: Any) -> dict[str, Any]:
    if type(request) is not dict or len(request) != 1:
        raise _NotWireFormat
    ((kind, body),) = request.items()
    if type(body) is not dict or len(body) != 1:
        raise _NotWireFormat
    if kind == "PutRequest" and "Item" in body:
        return {"PutRequest": {"Item": _encode_item(body["Item"])}}
    if kind == "DeleteRequest" and "Key" in body:
        return {"DeleteRequest": {"Key": _encode_item(body["Key"])}}
    raise _NotWireFormat


#: what botocore validates and serializes in place of each table's writes
_STAND_IN = [{"DeleteRequest": {"Key": {"_": {"S": "_"}}}}]


def encode_batch_write(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    """before-parameter-build.dynamodb.BatchWriteItem"""
    requests = params.get("RequestItems")
    others = {k: v for k, v in params.items() if k != "RequestItems"}
    if type(requests) is not dict or not requests:
        return
    if not all(type(v) is str for v in others.values()):
        return  # only string options (ReturnConsumedCapacity, ...) are known to be JSON-safe
    try:
        encoded = {
            table: [_encode_write(r) for r in writes]
            for table, writes in requests.items()
            if type(table) is str and type(writes) is list and writes
        }
    except _NotWireFormat:
        return
    if len(encoded) != len(requests):
        return
    context[_BODY] = json.dumps({**others, "RequestItems": encoded}, separators=(",", ":"))
    params["RequestItems"] = {table: _STAND_IN for table in requests}


def swap_body(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    """before-call.dynamodb.BatchWriteItem: `params` is the serialized request here."""
    body = context.pop(_BODY, None)
    if body is not None:
        params["body"] = body.encode("utf-8")


def parse_items(
    response_dict: dict[str, Any],
    customized_response_dict: dict[str, Any],
    operation_model: Any,
    **_: Any,
) -> None:
    """before-parse.dynamodb.{Scan,Query,BatchGetItem}"""
    status = response_dict.get("status_code", 0)
    body = response_dict.get("body")
    if not 200 <= status < 300 or not isinstance(body, bytes | bytearray) or not body:
        return
    try:
        data = json.loads(body)
    except ValueError:
        return  # botocore reports what it makes of it
    if not isinstance(data, dict):
        return
    member = "Responses" if operation_model.name == "BatchGetItem" else "Items"
    found = data.pop(member, None)
    try:
        parsed = _items(member, found, decode=not getattr(_mode, "as_text", False))
    except (ValueError, TypeError, AttributeError):
        return  # not what DynamoDB sends: botocore parses the untouched body
    if parsed is None:
        return
    customized_response_dict[member] = parsed
    response_dict["body"] = json.dumps(data, separators=(",", ":")).encode("utf-8")


def _items(member: str, found: Any, *, decode: bool) -> Any:
    """The items of a response (binary decoded unless `decode` is false: DynamoDB JSON is
    wire format, binary aside); None when the shape is not DynamoDB's."""
    if member == "Responses" and isinstance(found, dict):
        if not decode:
            return found
        return {table: [decode_json_item(i) for i in items] for table, items in found.items()}
    if member == "Items" and isinstance(found, list):
        return [decode_json_item(i) for i in found] if decode else found
    return None


def install(events: Any) -> None:
    """Register the codec on a DynamoDB client's event system (client.meta.events)."""
    events.register(
        "before-parameter-build.dynamodb.BatchWriteItem",
        encode_batch_write,
        unique_id="dualwrite-codec-encode",
    )
    events.register(
        "before-call.dynamodb.BatchWriteItem", swap_body, unique_id="dualwrite-codec-swap"
    )
    for operation in ("Scan", "Query", "BatchGetItem"):
        events.register(
            f"before-parse.dynamodb.{operation}",
            parse_items,
            unique_id=f"dualwrite-codec-parse-{operation}",
        )
