"""dualwrite.aws.codec against botocore's own validator, serializer and parser: the same
bodies and the same parsed items for any wire-format item, and botocore's errors for what it
does not handle."""

from __future__ import annotations

import json
from typing import Any

import botocore.session
import pytest
from botocore.exceptions import ParamValidationError
from botocore.parsers import create_parser
from botocore.serialize import create_serializer
from botocore.validate import ParamValidationDecorator, ParamValidator
from hypothesis import given
from hypothesis import strategies as st

from dualwrite.aws import codec
from dualwrite.wire import to_lambda_json
from tests.strategies import attributes

MODEL = botocore.session.get_session().get_service_model("dynamodb")
SCAN = MODEL.operation_model("Scan")
BATCH_GET = MODEL.operation_model("BatchGetItem")
BATCH_WRITE = MODEL.operation_model("BatchWriteItem")
SERIALIZER = ParamValidationDecorator(ParamValidator(), create_serializer("json"))
PARSER = create_parser("json")

items = attributes.filter(bool).map(lambda a: {"id": {"S": "k"}, **a})


def _fast_body(params: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
    """The body the client sends with the codec installed, and what botocore validated."""
    context: dict[str, Any] = {}
    codec.encode_batch_write(params, context)
    request = SERIALIZER.serialize_to_request(params, BATCH_WRITE)
    codec.swap_body(request, context)
    return request["body"], params


@given(st.lists(items, min_size=1, max_size=25))
def test_batch_write_body_is_botocores(batch: list[dict[str, Any]]) -> None:
    writes = [{"PutRequest": {"Item": i}} for i in batch]
    writes.append({"DeleteRequest": {"Key": {"id": {"B": b"\x00\xff"}}}})
    params = {"RequestItems": {"CoreTable": writes}, "ReturnConsumedCapacity": "TOTAL"}
    slow = SERIALIZER.serialize_to_request(params, BATCH_WRITE)["body"]
    fast, validated = _fast_body(params)
    assert json.loads(fast) == json.loads(slow)
    # botocore validated and serialized a stand-in, not the items
    assert validated["RequestItems"]["CoreTable"] != writes


def _outcome(params: dict[str, Any], fast: bool) -> Any:
    try:
        if fast:
            return json.loads(_fast_body(params)[0])
        return json.loads(SERIALIZER.serialize_to_request(params, BATCH_WRITE)["body"])
    except ParamValidationError as exc:
        return type(exc)


@pytest.mark.parametrize(
    "item",
    [
        {"id": {"N": 5}},  # botocore refuses a number that is not text
        {"id": {"S": "a", "N": "1"}},
        {"id": {"B": "t"}},  # botocore sends text given for binary as its UTF-8 bytes
        {"id": {"SS": "ab"}},
    ],
)
def test_what_the_codec_does_not_encode_is_botocores_to_judge(item: dict[str, Any]) -> None:
    def params() -> dict[str, Any]:
        return {"RequestItems": {"CoreTable": [{"PutRequest": {"Item": item}}]}}

    context: dict[str, Any] = {}
    codec.encode_batch_write(params(), context)
    assert context == {}  # left to botocore, untouched
    assert _outcome(params(), fast=True) == _outcome(params(), fast=False)
    assert _outcome(
        {"RequestItems": {"T": [{"PutRequest": {"Item": {"id": {"N": 5}}}}]}}, True
    ) is (ParamValidationError)


def _response(body: dict[str, Any], status: int = 200) -> dict[str, Any]:
    return {"body": json.dumps(body).encode(), "headers": {}, "status_code": status}


@given(st.lists(items, max_size=20))
def test_scan_items_parse_as_botocore_parses_them(page: list[dict[str, Any]]) -> None:
    body = {
        "Items": [to_lambda_json(i) for i in page],
        "Count": len(page),
        "ScannedCount": len(page),
        "LastEvaluatedKey": {"id": {"B": "AAE="}},
    }
    slow = PARSER.parse(_response(body), SCAN.output_shape)
    response, custom = _response(body), {}  # type: ignore[var-annotated]
    codec.parse_items(response, custom, SCAN)
    assert custom["Items"] == page
    assert b'"Items"' not in response["body"]  # botocore did not walk them again
    fast = PARSER.parse(response, SCAN.output_shape)
    fast.update(custom)
    slow.pop("ResponseMetadata", None), fast.pop("ResponseMetadata", None)
    assert fast == slow


def test_batch_get_responses_parse_and_unprocessed_keys_stay_botocores() -> None:
    item = {"id": {"S": "a"}, "b": {"BS": [b"\x01"]}, "m": {"M": {"x": {"B": b"\x02"}}}}
    body = {
        "Responses": {"CoreTable": [to_lambda_json(item)]},
        "UnprocessedKeys": {"CoreTable": {"Keys": [{"id": {"B": "AQ=="}}]}},
    }
    response, custom = _response(body), {}  # type: ignore[var-annotated]
    codec.parse_items(response, custom, BATCH_GET)
    parsed = PARSER.parse(response, BATCH_GET.output_shape)
    parsed.update(custom)
    assert parsed["Responses"] == {"CoreTable": [item]}
    assert parsed["UnprocessedKeys"]["CoreTable"]["Keys"] == [{"id": {"B": b"\x01"}}]


def test_error_responses_are_left_to_botocore() -> None:
    body = {"__type": "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException", "message": "x"}
    response, custom = _response(body, 400), {}  # type: ignore[var-annotated]
    codec.parse_items(response, custom, SCAN)
    assert custom == {} and response["body"] == json.dumps(body).encode()
