"""Translate botocore failures into dualwrite's error hierarchy."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
)

from dualwrite.errors import (
    AwsError,
    ConditionFailedError,
    ConfigError,
    EndpointError,
    NotFoundError,
    ThrottledError,
)

THROTTLING = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
}
NOT_FOUND = {"ResourceNotFoundException", "TableNotFoundException", "BackupNotFoundException"}


#: an error body that is a web page (an emulator's or a proxy's 500) is cut to this many
#: characters of its text: the error is one line (DESIGN.md section 4)
MESSAGE_MAX = 300
_TAG = re.compile(r"<[^>]*>")
_PAGE = re.compile(r"\s*<(?:!doctype|html|head|body|title|h1|p)\b", re.IGNORECASE)


def one_line(message: str) -> str:
    """An error message on one line. A web page's tags are dropped and its text is cut to
    MESSAGE_MAX characters; any other message (DynamoDB's own, a ValidationException that
    quotes an expression with `<>`) keeps every word, its line breaks made spaces."""
    if not _PAGE.match(message):
        return " ".join(message.split())
    text = " ".join(_TAG.sub(" ", message).split())
    return text if len(text) <= MESSAGE_MAX else text[: MESSAGE_MAX - 3].rstrip() + "..."


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def translate(exc: Exception, operation: str = "") -> Exception:
    """Our error for a botocore error; anything else is returned unchanged."""
    if isinstance(exc, ClientError):
        code = error_code(exc)
        message = one_line(str(exc.response.get("Error", {}).get("Message", ""))) or code
        text = f"{operation}: {code}: {message}" if operation else f"{code}: {message}"
        if code == "ConditionalCheckFailedException":
            return ConditionFailedError(text, code, operation)
        if code in NOT_FOUND:
            return NotFoundError(text, code, operation)
        if code in THROTTLING:
            return ThrottledError(text, code, operation)
        return AwsError(text, code, operation)
    if isinstance(exc, EndpointConnectionError | ConnectTimeoutError):
        return EndpointError(f"cannot reach the AWS endpoint: {exc}")
    if isinstance(exc, NoCredentialsError):
        return ConfigError(
            "no AWS credentials found: configure a profile or pass --endpoint-url for an emulator"
        )
    if isinstance(exc, NoRegionError):
        return ConfigError("no AWS region configured: pass --region or set AWS_REGION")
    return exc


@contextmanager
def aws_call(operation: str) -> Iterator[None]:
    """Run AWS calls, raising our error types instead of botocore's."""
    try:
        yield
    except (
        ClientError,
        EndpointConnectionError,
        ConnectTimeoutError,
        NoCredentialsError,
        NoRegionError,
    ) as exc:
        raise translate(exc, operation) from exc
