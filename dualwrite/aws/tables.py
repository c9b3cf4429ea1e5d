"""Table control plane: describe, wait, create declared targets, clone a source's schema,
streams, PITR and backups."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from dualwrite.aws.errors import aws_call
from dualwrite.config import Target
from dualwrite.errors import AwsError, NotFoundError
from dualwrite.mapping.base import KeySchema

STREAM_VIEW = "NEW_AND_OLD_IMAGES"


def describe(client: Any, name: str) -> dict[str, Any] | None:
    """The table description, or None when it does not exist."""
    try:
        with aws_call(f"DescribeTable {name}"):
            return client.describe_table(TableName=name)["Table"]  # type: ignore[no-any-return]
    except NotFoundError:
        return None


def key_schema_of(desc: Mapping[str, Any]) -> KeySchema:
    types = {a["AttributeName"]: a["AttributeType"] for a in desc["AttributeDefinitions"]}
    ordered = sorted(desc["KeySchema"], key=lambda k: 0 if k["KeyType"] == "HASH" else 1)
    return KeySchema(tuple((k["AttributeName"], types[k["AttributeName"]]) for k in ordered))


def key_schema_or_none(desc: Mapping[str, Any] | None) -> KeySchema | None:
    """key_schema_of a description that may be missing (None or {}: no table)."""
    return key_schema_of(desc) if desc else None


def stream_view(desc: Mapping[str, Any]) -> str | None:
    spec = desc.get("StreamSpecification") or {}
    if not spec.get("StreamEnabled"):
        return None
    return str(spec.get("StreamViewType"))


@dataclass(frozen=True)
class TableInfo:
    """The pieces of a DescribeTable answer that the gates, status and decommission read."""

    name: str
    arn: str
    key: KeySchema
    stream_arn: str | None  # the latest stream, enabled or not
    stream_view: str | None  # None: no stream enabled
    deletion_protection: bool = False
    item_count: int = 0

    @classmethod
    def of(cls, desc: Mapping[str, Any]) -> TableInfo:
        return cls(
            name=str(desc["TableName"]),
            arn=str(desc.get("TableArn") or ""),
            key=key_schema_of(desc),
            stream_arn=str(desc["LatestStreamArn"]) if desc.get("LatestStreamArn") else None,
            stream_view=stream_view(desc),
            deletion_protection=bool(desc.get("DeletionProtectionEnabled")),
            item_count=int(desc.get("ItemCount") or 0),
        )

    @property
    def enabled_stream_arn(self) -> str | None:
        """The stream ARN when the stream is on (a disabled stream keeps its ARN a while)."""
        return self.stream_arn if self.stream_view is not None else None


def info(client: Any, name: str) -> TableInfo | None:
    """What we read of a table, or None when it does not exist."""
    desc = describe(client, name)
    return TableInfo.of(desc) if desc is not None else None


def wait_until(
    check: Callable[[], bool],
    what: str,
    *,
    timeout: float = 600.0,
    interval: float = 0.2,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Poll until check() holds (control-plane waits: tables, indexes, backups)."""
    deadline = clock() + timeout
    delay = interval
    while not check():
        if clock() > deadline:
            raise AwsError(f"timed out after {timeout:.0f}s waiting for {what}")
        sleep(delay)
        delay = min(delay * 1.5, 5.0)


def is_active(desc: dict[str, Any] | None) -> bool:
    if desc is None or desc.get("TableStatus") != "ACTIVE":
        return False
    return all(
        g.get("IndexStatus", "ACTIVE") == "ACTIVE"
        for g in desc.get("GlobalSecondaryIndexes", []) or []
    )


def wait_active(client: Any, name: str, timeout: float = 600.0) -> dict[str, Any]:
    holder: dict[str, dict[str, Any]] = {}

    def check() -> bool:
        desc = describe(client, name)
        if desc is not None:
            holder["desc"] = desc
        return is_active(desc)

    wait_until(check, f"table {name} to become ACTIVE", timeout=timeout)
    return holder["desc"]


def declared_definition(name: str, target: Target) -> dict[str, Any]:
    """CreateTable arguments for a target declared in the migration file."""
    attr_types: dict[str, str] = {}
    key_schema = []
    for i, (attr, typ) in enumerate(target.key.items()):
        key_schema.append({"AttributeName": attr, "KeyType": "HASH" if i == 0 else "RANGE"})
        attr_types[attr] = typ
    gsis = []
    for index in target.indexes:
        ks = []
        for i, (attr, typ) in enumerate(index.key.items()):
            ks.append({"AttributeName": attr, "KeyType": "HASH" if i == 0 else "RANGE"})
            attr_types[attr] = typ
        gsi: dict[str, Any] = {
            "IndexName": index.name,
            "KeySchema": ks,
            "Projection": {"ProjectionType": index.projection},
        }
        if target.billing_mode == "PROVISIONED":
            gsi["ProvisionedThroughput"] = {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
        gsis.append(gsi)
    definition: dict[str, Any] = {
        "TableName": name,
        "KeySchema": key_schema,
        "AttributeDefinitions": [
            {"AttributeName": a, "AttributeType": t} for a, t in attr_types.items()
        ],
        "BillingMode": target.billing_mode,
        "DeletionProtectionEnabled": target.deletion_protection,
    }
    if target.billing_mode == "PROVISIONED":
        definition["ProvisionedThroughput"] = {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
    if gsis:
        definition["GlobalSecondaryIndexes"] = gsis
    return definition


def _throughput(pt: dict[str, Any] | None) -> dict[str, int]:
    pt = pt or {}
    return {
        "ReadCapacityUnits": max(1, int(pt.get("ReadCapacityUnits") or 1)),
        "WriteCapacityUnits": max(1, int(pt.get("WriteCapacityUnits") or 1)),
    }


def billing_mode(desc: dict[str, Any]) -> str:
    summary = desc.get("BillingModeSummary") or {}
    if summary.get("BillingMode"):
        return str(summary["BillingMode"])
    pt = desc.get("ProvisionedThroughput") or {}
    return "PROVISIONED" if pt.get("ReadCapacityUnits") else "PAY_PER_REQUEST"


def clone_definition(
    name: str, source: dict[str, Any], tags: list[dict[str, str]]
) -> dict[str, Any]:
    """CreateTable arguments that reproduce a source table's schema under a new name."""
    mode = billing_mode(source)
    definition: dict[str, Any] = {
        "TableName": name,
        "KeySchema": source["KeySchema"],
        "AttributeDefinitions": source["AttributeDefinitions"],
        "BillingMode": mode,
    }
    if mode == "PROVISIONED":
        definition["ProvisionedThroughput"] = _throughput(source.get("ProvisionedThroughput"))
    gsis = []
    for g in source.get("GlobalSecondaryIndexes", []) or []:
        gsi: dict[str, Any] = {
            "IndexName": g["IndexName"],
            "KeySchema": g["KeySchema"],
            "Projection": g["Projection"],
        }
        if mode == "PROVISIONED":
            gsi["ProvisionedThroughput"] = _throughput(g.get("ProvisionedThroughput"))
        gsis.append(gsi)
    if gsis:
        definition["GlobalSecondaryIndexes"] = gsis
    lsis = [
        {"IndexName": x["IndexName"], "KeySchema": x["KeySchema"], "Projection": x["Projection"]}
        for x in source.get("LocalSecondaryIndexes", []) or []
    ]
    if lsis:
        definition["LocalSecondaryIndexes"] = lsis
    sse = source.get("SSEDescription") or {}
    if sse.get("Status") in ("ENABLED", "ENABLING"):
        spec: dict[str, Any] = {"Enabled": True, "SSEType": sse.get("SSEType", "KMS")}
        if sse.get("KMSMasterKeyArn"):
            spec["KMSMasterKeyId"] = sse["KMSMasterKeyArn"]
        definition["SSESpecification"] = spec
    table_class = (source.get("TableClassSummary") or {}).get("TableClass")
    if table_class:
        definition["TableClass"] = table_class
    if "DeletionProtectionEnabled" in source:
        definition["DeletionProtectionEnabled"] = bool(source["DeletionProtectionEnabled"])
    if tags:
        definition["Tags"] = tags
    view = stream_view(source)
    if view:
        definition["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": view}
    return definition


def tags_of(client: Any, arn: str) -> list[dict[str, str]]:
    tags: list[dict[str, str]] = []
    kwargs: dict[str, Any] = {"ResourceArn": arn}
    while True:
        with aws_call("ListTagsOfResource"):
            response = client.list_tags_of_resource(**kwargs)
        tags.extend(response.get("Tags", []))
        token = response.get("NextToken")
        if not token:
            return tags
        kwargs["NextToken"] = token


def ttl_attribute(client: Any, name: str) -> str | None:
    with aws_call("DescribeTimeToLive"):
        desc = client.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    if desc.get("TimeToLiveStatus") in ("ENABLED", "ENABLING"):
        return str(desc.get("AttributeName"))
    return None


def pitr_enabled(client: Any, name: str) -> bool:
    with aws_call("DescribeContinuousBackups"):
        desc = client.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
    status = (desc.get("PointInTimeRecoveryDescription") or {}).get("PointInTimeRecoveryStatus")
    return bool(status == "ENABLED")


def enable_pitr(client: Any, name: str) -> None:
    with aws_call("UpdateContinuousBackups"):
        client.update_continuous_backups(
            TableName=name,
            PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
        )


def enable_stream(client: Any, name: str) -> None:
    with aws_call("UpdateTable (stream)"):
        client.update_table(
            TableName=name,
            StreamSpecification={"StreamEnabled": True, "StreamViewType": STREAM_VIEW},
        )


def create_table(client: Any, definition: dict[str, Any]) -> None:
    with aws_call(f"CreateTable {definition['TableName']}"):
        client.create_table(**definition)


def enable_ttl(client: Any, name: str, attribute: str) -> None:
    with aws_call("UpdateTimeToLive"):
        client.update_time_to_live(
            TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": attribute}
        )


def backup(client: Any, name: str, label: str, *, timeout: float = 900.0) -> str:
    """Take an on-demand backup and wait until it is AVAILABLE. Returns its ARN."""
    with aws_call(f"CreateBackup {name}"):
        arn = str(
            client.create_backup(TableName=name, BackupName=label)["BackupDetails"]["BackupArn"]
        )

    def available() -> bool:
        with aws_call("DescribeBackup"):
            d = client.describe_backup(BackupArn=arn)["BackupDescription"]["BackupDetails"]
        return bool(d.get("BackupStatus") == "AVAILABLE")

    wait_until(available, f"backup of {name}", timeout=timeout)
    return arn
