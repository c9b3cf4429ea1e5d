"""Lambda-shaped DynamoDB stream records, read without touching their images (pure).

A record in a Lambda event (AWS docs, "Using AWS Lambda with Amazon DynamoDB"):

    {"eventID": "1", "eventName": "INSERT" | "MODIFY" | "REMOVE", "eventVersion": "1.1",
     "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
     "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/NAME/stream/LABEL",
     "userIdentity": {"type": "Service", "principalId": "dynamodb.amazonaws.com"},  # TTL only
     "dynamodb": {"ApproximateCreationDateTime": 1479499740, "Keys": {...},
                  "NewImage": {...}, "OldImage": {...},
                  "SequenceNumber": "13021600000000001596893679", "SizeBytes": 112,
                  "StreamViewType": "NEW_AND_OLD_IMAGES"}}

Images stay in Lambda JSON (binary as base64) until the planner decodes them, so a record
whose images cannot be decoded is quarantined rather than failing the whole batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

INSERT = "INSERT"
MODIFY = "MODIFY"
REMOVE = "REMOVE"
EVENT_NAMES = (INSERT, MODIFY, REMOVE)
TTL_PRINCIPAL = "dynamodb.amazonaws.com"


#: a record of a Lambda DynamoDB Streams event, as AWS shapes it (the JSON edge)
StreamRecord = dict[str, Any]
#: its "dynamodb" section (Keys, NewImage, OldImage, SequenceNumber, ...), AWS's shape too
StreamBody = dict[str, Any]


class MalformedRecord(ValueError):
    """A record that cannot even be attributed to a table or position (fails the batch)."""


@dataclass(slots=True)
class Change:
    """One stream record, as much as the planner needs to know about it. Treated as
    immutable; not frozen, because a frozen dataclass costs a microsecond more to build and
    one is built for every record."""

    index: int
    table: str
    event_name: str
    sequence_number: str
    event_id: str
    #: the record's "dynamodb" section, still in Lambda JSON
    body: StreamBody
    #: epoch seconds (ApproximateCreationDateTime), when present
    created_at: float | None
    #: a TTL expiry rather than a user's delete
    ttl_delete: bool
    #: the whole record (JSON-safe), kept for the quarantine
    raw: StreamRecord


def table_of_arn(arn: str) -> str:
    """The table name in a table or stream ARN (arn:aws:dynamodb:R:A:table/NAME[/stream/L])."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or not parts[5].startswith("table/"):
        raise MalformedRecord(f"not a DynamoDB table or stream ARN: {arn!r}")
    name = parts[5].split("/")[1]
    if not name:
        raise MalformedRecord(f"no table name in ARN {arn!r}")
    return name


def sequence_order(sequence_number: str) -> tuple[int, int, str]:
    """Sort key for sequence numbers (decimal strings of up to 40 digits; compare as numbers)."""
    if sequence_number.isdigit():
        return (0, int(sequence_number), "")
    return (1, len(sequence_number), sequence_number)


def _created_at(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def parse(record: StreamRecord, index: int, table_cache: dict[str, str] | None = None) -> Change:
    """A Change for one Lambda event record. Raises MalformedRecord when it has no table or
    sequence number (nothing could report it as a failure)."""
    arn = record.get("eventSourceARN")
    if not isinstance(arn, str):
        raise MalformedRecord(f"record {index} has no eventSourceARN")
    table = table_cache.get(arn) if table_cache is not None else None
    if table is None:
        table = table_of_arn(arn)
        if table_cache is not None:
            table_cache[arn] = table
    body = record.get("dynamodb")
    if not isinstance(body, dict):
        raise MalformedRecord(f"record {index} has no 'dynamodb' section")
    seq = body.get("SequenceNumber")
    if not isinstance(seq, str) or not seq:
        raise MalformedRecord(f"record {index} has no dynamodb.SequenceNumber")
    identity = record.get("userIdentity")
    ttl = (
        isinstance(identity, dict)
        and identity.get("type") == "Service"
        and identity.get("principalId") == TTL_PRINCIPAL
    )
    return Change(
        index=index,
        table=table,
        event_name=str(record.get("eventName", "")),
        sequence_number=seq,
        event_id=str(record.get("eventID", "")),
        body=body,
        created_at=_created_at(body.get("ApproximateCreationDateTime")),
        ttl_delete=ttl,
        raw=record,
    )
