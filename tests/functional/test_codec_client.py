"""The codec on a real client against moto: every bulk call gives what botocore alone gives."""

from __future__ import annotations

import random
from typing import Any

import pytest
from botocore.exceptions import ClientError, ParamValidationError

from dualwrite.aws.clients import AwsSettings, Clients
from dualwrite.seed import server_item


def _table(ddb: Any, name: str) -> None:
    ddb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


def _round_trip(ddb: Any, name: str) -> dict[str, Any]:
    rng = random.Random(3)
    items = [server_item(rng, i) for i in range(60)]
    for at in range(0, 60, 25):
        batch = [{"PutRequest": {"Item": i}} for i in items[at : at + 25]]
        response = ddb.batch_write_item(RequestItems={name: batch}, ReturnConsumedCapacity="TOTAL")
        assert response["UnprocessedItems"] == {}
    ddb.batch_write_item(RequestItems={name: [{"DeleteRequest": {"Key": {"id": items[0]["id"]}}}]})
    keys = [{"id": i["id"]} for i in items[1:11]]
    return {
        "scan": sorted(ddb.scan(TableName=name)["Items"], key=lambda i: i["id"]["S"]),
        "page": ddb.scan(TableName=name, Limit=7)["LastEvaluatedKey"],
        "get": sorted(
            ddb.batch_get_item(RequestItems={name: {"Keys": keys, "ConsistentRead": True}})[
                "Responses"
            ][name],
            key=lambda i: i["id"]["S"],
        ),
        "query": ddb.query(
            TableName=name,
            KeyConditionExpression="id = :v",
            ExpressionAttributeValues={":v": items[5]["id"]},
        )["Items"],
        "expected": sorted(items[1:], key=lambda i: i["id"]["S"]),
    }


def test_bulk_calls_give_what_botocore_gives(
    aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto import mock_aws

    from dualwrite.aws import codec

    parsed: list[str] = []
    real_parse = codec.parse_items

    def counting(
        response_dict: Any, customized_response_dict: Any, operation_model: Any, **kw: Any
    ) -> None:
        parsed.append(operation_model.name)
        real_parse(response_dict, customized_response_dict, operation_model, **kw)

    monkeypatch.setattr(codec, "parse_items", counting)
    with mock_aws():
        fast = Clients(AwsSettings(region="us-east-1")).dynamodb
        plain = Clients(AwsSettings(region="us-east-1", fast_codec=False)).dynamodb
        _table(fast, "Fast")
        _table(plain, "Plain")
        a, b = _round_trip(fast, "Fast"), _round_trip(plain, "Plain")
        assert a == b
        # the fast client went through the codec (the plain one never does)
        assert sorted(set(parsed)) == ["BatchGetItem", "Query", "Scan"]
        assert a["scan"] == a["expected"]  # binary comes back as bytes, numbers as text
        assert len(a["get"]) == 10 and a["query"] == [a["expected"][4]]
        for ddb in (fast, plain):
            with pytest.raises(ParamValidationError):
                ddb.batch_write_item(
                    RequestItems={"Fast": [{"PutRequest": {"Item": {"id": {"N": 1}}}}]}
                )
            with pytest.raises(ClientError) as caught:
                ddb.scan(TableName="Missing")
            assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_binary_as_text_keeps_base64_in_this_thread_only(aws_env: None) -> None:
    import base64
    import threading

    from moto import mock_aws

    from dualwrite.aws import codec
    from dualwrite.wire import decode_json_item

    with mock_aws():
        ddb = Clients(AwsSettings(region="us-east-1")).dynamodb
        _table(ddb, "T")
        item = {
            "id": {"S": "a"},
            "b": {"B": b"\x00\xffbin"},
            "bs": {"BS": [b"\x01"]},
            "m": {"M": {"deep": {"L": [{"B": b"\x02\x03"}]}}},
        }
        ddb.put_item(TableName="T", Item=item)
        seen_elsewhere: list[Any] = []

        def other_thread() -> None:
            seen_elsewhere.append(ddb.scan(TableName="T")["Items"][0])

        with codec.binary_as_text():
            as_text = ddb.scan(TableName="T")["Items"][0]
            got = ddb.batch_get_item(RequestItems={"T": {"Keys": [{"id": {"S": "a"}}]}})
            worker = threading.Thread(target=other_thread)
            worker.start()
            worker.join()
        after = ddb.scan(TableName="T")["Items"][0]
    assert as_text["b"] == {"B": base64.b64encode(b"\x00\xffbin").decode("ascii")}
    assert as_text["m"]["M"]["deep"]["L"][0]["B"] == base64.b64encode(b"\x02\x03").decode()
    assert got["Responses"]["T"] == [as_text]
    assert decode_json_item(as_text) == item  # the same item, binary as sent
    assert seen_elsewhere == [item] and after == item  # other threads and later reads: bytes
