from __future__ import annotations

from dualwrite.aws.tables import billing_mode, clone_definition, declared_definition
from dualwrite.config import Target

SOURCE = {
    "TableName": "old",
    "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
    "AttributeDefinitions": [
        {"AttributeName": "id", "AttributeType": "S"},
        {"AttributeName": "g", "AttributeType": "N"},
    ],
    "ProvisionedThroughput": {
        "ReadCapacityUnits": 9,
        "WriteCapacityUnits": 3,
        "NumberOfDecreasesToday": 0,
    },
    "BillingModeSummary": {"BillingMode": "PROVISIONED"},
    "GlobalSecondaryIndexes": [
        {
            "IndexName": "g-index",
            "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
            "Projection": {"ProjectionType": "KEYS_ONLY"},
            "IndexStatus": "ACTIVE",
            "ProvisionedThroughput": {"ReadCapacityUnits": 2, "WriteCapacityUnits": 1},
            "IndexArn": "arn:x",
            "ItemCount": 5,
        }
    ],
    "SSEDescription": {"Status": "ENABLED", "SSEType": "KMS", "KMSMasterKeyArn": "arn:kms"},
    "TableClassSummary": {"TableClass": "STANDARD_INFREQUENT_ACCESS"},
    "DeletionProtectionEnabled": True,
    "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
}


def test_clone_carries_every_schema_field_and_nothing_descriptive() -> None:
    d = clone_definition("new", SOURCE, [{"Key": "a", "Value": "b"}])
    assert d == {
        "TableName": "new",
        "KeySchema": SOURCE["KeySchema"],
        "AttributeDefinitions": SOURCE["AttributeDefinitions"],
        "BillingMode": "PROVISIONED",
        "ProvisionedThroughput": {"ReadCapacityUnits": 9, "WriteCapacityUnits": 3},
        "GlobalSecondaryIndexes": [
            {
                "IndexName": "g-index",
                "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
                "ProvisionedThroughput": {"ReadCapacityUnits": 2, "WriteCapacityUnits": 1},
            }
        ],
        "SSESpecification": {"Enabled": True, "SSEType": "KMS", "KMSMasterKeyId": "arn:kms"},
        "TableClass": "STANDARD_INFREQUENT_ACCESS",
        "DeletionProtectionEnabled": True,
        "Tags": [{"Key": "a", "Value": "b"}],
        "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    }


def test_on_demand_clone_has_no_throughput() -> None:
    src = {
        **SOURCE,
        "BillingModeSummary": {"BillingMode": "PAY_PER_REQUEST"},
        "ProvisionedThroughput": {"ReadCapacityUnits": 0, "WriteCapacityUnits": 0},
    }
    d = clone_definition("new", src, [])
    assert billing_mode(src) == "PAY_PER_REQUEST"
    assert "ProvisionedThroughput" not in d
    assert "ProvisionedThroughput" not in d["GlobalSecondaryIndexes"][0]
    assert "Tags" not in d


def test_declared_target_definition() -> None:
    t = Target.model_validate(
        {
            "key": {"PK": "S", "SK": "S"},
            "indexes": [{"name": "GSI1", "key": {"SK": "S", "PK": "S"}}],
        }
    )
    d = declared_definition("CoreTable", t)
    assert d["KeySchema"] == [
        {"AttributeName": "PK", "KeyType": "HASH"},
        {"AttributeName": "SK", "KeyType": "RANGE"},
    ]
    assert d["GlobalSecondaryIndexes"][0]["KeySchema"] == [
        {"AttributeName": "SK", "KeyType": "HASH"},
        {"AttributeName": "PK", "KeyType": "RANGE"},
    ]
    assert d["BillingMode"] == "PAY_PER_REQUEST"
