"""Client CPU per item of the bulk DynamoDB calls: botocore's model-driven validation,
serialization and parsing against dualwrite.aws.codec, on the same items, no network.

    .venv/bin/python -m bench.codec [--items 1000] [--repeat 5]

- parse: one Scan response body of N generated servers (every attribute type), parsed the
  way the client does after the HTTP call: botocore's parser alone, or the codec's
  before-parse handler followed by botocore's parser on what it leaves.
- write: BatchWriteItem parameters of 25 items, validated and serialized the way the client
  does before the HTTP call: botocore's validator and serializer, or the codec's
  before-parameter-build handler followed by them on its stand-in, and its body swap.
Both sides must give the same result (asserted) before a figure is printed.
"""

from __future__ import annotations

import argparse
import json
import random
import timeit
from typing import Any

import botocore.session
from botocore.parsers import create_parser
from botocore.serialize import create_serializer
from botocore.validate import ParamValidator

from dualwrite.aws import codec
from dualwrite.seed import server_item
from dualwrite.wire import to_lambda_json


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.codec", description=__doc__)
    parser.add_argument("--items", type=int, default=1000, help="items in the Scan page")
    parser.add_argument("--repeat", type=int, default=5, help="best of N")
    args = parser.parse_args(argv)
    rng = random.Random(7)
    items = [server_item(rng, i) for i in range(args.items)]
    model = botocore.session.get_session().get_service_model("dynamodb")
    scan, write = model.operation_model("Scan"), model.operation_model("BatchWriteItem")
    json_parser = create_parser("json")
    serializer = create_serializer("json")
    validator = ParamValidator()

    body = json.dumps(
        {"Items": [to_lambda_json(i) for i in items], "Count": len(items), "ScannedCount": 1}
    ).encode()

    def botocore_parse() -> Any:
        return json_parser.parse(
            {"body": body, "headers": {}, "status_code": 200}, scan.output_shape
        )

    def codec_parse() -> Any:
        response = {"body": body, "headers": {}, "status_code": 200}
        custom: dict[str, Any] = {}
        codec.parse_items(response, custom, scan)
        parsed = json_parser.parse(response, scan.output_shape)
        parsed.update(custom)
        return parsed

    assert codec_parse()["Items"] == botocore_parse()["Items"] == items

    batches = [items[at : at + 25] for at in range(0, len(items), 25)]

    def params_of(batch: list[Any]) -> dict[str, Any]:
        return {"RequestItems": {"CoreTable": [{"PutRequest": {"Item": i}} for i in batch]}}

    def botocore_write() -> list[bytes]:
        out = []
        for batch in batches:
            params = params_of(batch)
            report = validator.validate(params, write.input_shape)
            assert not report.has_errors()
            out.append(serializer.serialize_to_request(params, write)["body"])
        return out

    def codec_write() -> list[bytes]:
        out = []
        for batch in batches:
            params, context = params_of(batch), {}  # type: ignore[var-annotated]
            codec.encode_batch_write(params, context)
            report = validator.validate(params, write.input_shape)
            assert not report.has_errors()
            request = serializer.serialize_to_request(params, write)
            codec.swap_body(request, context)
            out.append(request["body"])
        return out

    same = [
        json.loads(a) == json.loads(b) for a, b in zip(botocore_write(), codec_write(), strict=True)
    ]
    assert all(same)

    def per_item(fn: Any) -> float:
        best = min(timeit.repeat(fn, number=1, repeat=args.repeat))
        return best / len(items) * 1e6

    rows = [
        ("parse a Scan page", per_item(botocore_parse), per_item(codec_parse)),
        ("validate + serialize BatchWriteItem", per_item(botocore_write), per_item(codec_write)),
    ]
    print(f"client CPU per item, {len(items)} generated servers, best of {args.repeat}")
    print(f"{'':38}{'botocore':>12}{'codec':>10}{'ratio':>8}")
    for name, slow, fast in rows:
        print(f"{name:38}{slow:>9.1f} us{fast:>7.1f} us{slow / fast:>7.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
