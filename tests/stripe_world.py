"""The Stripe tables as they are before the rename: realistic schemas (GSIs, an LSI, SSE with
a KMS key, tags, TTL, one PROVISIONED, one with deletion protection) and a few items each;
and the schema fields prepare must clone, as describe-table shows them."""

from __future__ import annotations

import json
from typing import Any

from dualwrite.aws.clients import Clients

OLD = "ai-nexus-dev-stripe-"
NEW = "diatonic-ai-stripe-"
NAMES = ("customers", "subscriptions", "invoices", "idempotency")


def create_stripe_tables(clients: Clients) -> str:
    """The four old tables with realistic schemas and a few items each; returns the KMS key."""
    ddb = clients.dynamodb
    key_arn = str(clients.client("kms").create_key(Description="stripe")["KeyMetadata"]["Arn"])
    tags = [{"Key": "project", "Value": "ai-nexus"}, {"Key": "env", "Value": "dev"}]
    ddb.create_table(
        TableName=OLD + "customers",
        KeySchema=[{"AttributeName": "customerId", "KeyType": "HASH"}],
        AttributeDefinitions=[
            {"AttributeName": "customerId", "AttributeType": "S"},
            {"AttributeName": "email", "AttributeType": "S"},
            {"AttributeName": "stripeCustomerId", "AttributeType": "S"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "email-index",
                "KeySchema": [{"AttributeName": "email", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            },
            {
                "IndexName": "stripeCustomerId-index",
                "KeySchema": [{"AttributeName": "stripeCustomerId", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            },
        ],
        BillingMode="PAY_PER_REQUEST",
        SSESpecification={"Enabled": True, "SSEType": "KMS", "KMSMasterKeyId": key_arn},
        DeletionProtectionEnabled=True,
        Tags=[*tags, {"Key": "data", "Value": "pii"}],
    )
    ddb.create_table(
        TableName=OLD + "subscriptions",
        KeySchema=[{"AttributeName": "subscriptionId", "KeyType": "HASH"}],
        AttributeDefinitions=[
            {"AttributeName": "subscriptionId", "AttributeType": "S"},
            {"AttributeName": "customerId", "AttributeType": "S"},
            {"AttributeName": "createdAt", "AttributeType": "N"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "customerId-createdAt-index",
                "KeySchema": [
                    {"AttributeName": "customerId", "KeyType": "HASH"},
                    {"AttributeName": "createdAt", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["status"]},
                "ProvisionedThroughput": {"ReadCapacityUnits": 3, "WriteCapacityUnits": 2},
            }
        ],
        BillingMode="PROVISIONED",
        ProvisionedThroughput={"ReadCapacityUnits": 7, "WriteCapacityUnits": 4},
        Tags=tags,
    )
    ddb.create_table(
        TableName=OLD + "invoices",
        KeySchema=[
            {"AttributeName": "customerId", "KeyType": "HASH"},
            {"AttributeName": "invoiceId", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "customerId", "AttributeType": "S"},
            {"AttributeName": "invoiceId", "AttributeType": "S"},
            {"AttributeName": "createdAt", "AttributeType": "N"},
            {"AttributeName": "subscriptionId", "AttributeType": "S"},
        ],
        LocalSecondaryIndexes=[
            {
                "IndexName": "createdAt-index",
                "KeySchema": [
                    {"AttributeName": "customerId", "KeyType": "HASH"},
                    {"AttributeName": "createdAt", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "subscriptionId-index",
                "KeySchema": [{"AttributeName": "subscriptionId", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
        TableClass="STANDARD_INFREQUENT_ACCESS",
        Tags=tags,
    )
    ddb.create_table(
        TableName=OLD + "idempotency",
        KeySchema=[{"AttributeName": "idempotencyKey", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "idempotencyKey", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        Tags=tags,
    )
    ddb.update_time_to_live(
        TableName=OLD + "idempotency",
        TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiresAt"},
    )
    for i in range(6):
        c = f"cus_{i:03d}"
        ddb.put_item(
            TableName=OLD + "customers",
            Item={
                "customerId": {"S": c},
                "email": {"S": f"user{i}@example.com"},
                "stripeCustomerId": {"S": f"cus_Stripe{i}"},
                "metadata": {"M": {"plan": {"S": "pro"}, "seats": {"N": str(i + 1)}}},
            },
        )
        ddb.put_item(
            TableName=OLD + "subscriptions",
            Item={
                "subscriptionId": {"S": f"sub_{i:03d}"},
                "customerId": {"S": c},
                "createdAt": {"N": str(1_700_000_000 + i)},
                "status": {"S": "active" if i % 2 else "past_due"},
                "items": {"L": [{"S": "price_basic"}, {"N": "2"}]},
            },
        )
        for j in range(2):
            ddb.put_item(
                TableName=OLD + "invoices",
                Item={
                    "customerId": {"S": c},
                    "invoiceId": {"S": f"in_{i:03d}_{j}"},
                    "createdAt": {"N": str(1_700_100_000 + 10 * i + j)},
                    "subscriptionId": {"S": f"sub_{i:03d}"},
                    "amountDue": {"N": "1999"},
                    "pdf": {"B": b"%PDF-1.4 fake"},
                    "lines": {"SS": ["a", "b"]},
                },
            )
        ddb.put_item(
            TableName=OLD + "idempotency",
            Item={
                "idempotencyKey": {"S": f"evt_{i:03d}"},
                "expiresAt": {"N": str(4_000_000_000 + i)},
                "response": {"S": json.dumps({"ok": True})},
            },
        )
    return key_arn


def schema(clients: Clients, table: str) -> dict[str, Any]:
    """Every schema field prepare must clone, as describe-table shows it."""
    ddb = clients.dynamodb
    d = ddb.describe_table(TableName=table)["Table"]

    def index(i: dict[str, Any], provisioned: bool) -> dict[str, Any]:
        out = {"name": i["IndexName"], "keys": i["KeySchema"], "projection": i["Projection"]}
        if provisioned:
            pt = i.get("ProvisionedThroughput") or {}
            out["throughput"] = (pt.get("ReadCapacityUnits"), pt.get("WriteCapacityUnits"))
        return out

    billing = (d.get("BillingModeSummary") or {}).get("BillingMode", "PROVISIONED")
    provisioned = billing == "PROVISIONED"
    pt = d.get("ProvisionedThroughput") or {}
    sse = d.get("SSEDescription") or {}
    ttl = ddb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    tags = ddb.list_tags_of_resource(ResourceArn=d["TableArn"])["Tags"]
    return {
        "KeySchema": d["KeySchema"],
        "AttributeDefinitions": sorted(d["AttributeDefinitions"], key=lambda a: a["AttributeName"]),
        "GSIs": sorted(
            (index(g, provisioned) for g in d.get("GlobalSecondaryIndexes") or []),
            key=lambda g: g["name"],
        ),
        "LSIs": sorted(
            (index(i, False) for i in d.get("LocalSecondaryIndexes") or []),
            key=lambda i: i["name"],
        ),
        "billing": billing,
        "throughput": (pt.get("ReadCapacityUnits"), pt.get("WriteCapacityUnits"))
        if provisioned
        else None,
        "SSE": (sse.get("Status"), sse.get("SSEType"), sse.get("KMSMasterKeyArn")),
        "tags": sorted((t["Key"], t["Value"]) for t in tags),
        "TTL": (ttl.get("TimeToLiveStatus"), ttl.get("AttributeName")),
        "table class": (d.get("TableClassSummary") or {}).get("TableClass"),
        "deletion protection": bool(d.get("DeletionProtectionEnabled")),
    }
