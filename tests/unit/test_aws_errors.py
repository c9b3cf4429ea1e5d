"""dualwrite.aws.errors: botocore's failures as our errors, each message one line."""

from __future__ import annotations

import botocore.parsers
from botocore.exceptions import ClientError
from botocore.session import get_session

from dualwrite.aws.errors import MESSAGE_MAX, translate
from dualwrite.errors import AwsError

#: the body of a Flask/Werkzeug 500 (moto server's), as botocore parses it into Error
PAGE = (
    b"<!doctype html>\n<html lang=en>\n<title>500 Internal Server Error</title>\n"
    b"<h1>Internal Server Error</h1>\n<p>The server encountered an internal error and was "
    b"unable to complete your request.</p>\n"
)


def _client_error(status: int, body: bytes) -> ClientError:
    shape = get_session().get_service_model("dynamodb").operation_model("ListTables").output_shape
    assert shape is not None
    parsed = botocore.parsers.create_parser("json").parse(
        {"status_code": status, "headers": {}, "body": body}, shape
    )
    return ClientError(parsed, "ListTables")


def test_a_web_page_error_body_becomes_one_line_of_its_text() -> None:
    """It was copied onto stderr as several lines of HTML."""
    error = translate(_client_error(500, PAGE), "ListTables")
    assert isinstance(error, AwsError)
    assert str(error) == (
        "ListTables: 500: 500 Internal Server Error Internal Server Error The server "
        "encountered an internal error and was unable to complete your request."
    )


def test_a_long_message_is_cut() -> None:
    body = PAGE.replace(b"unable", b"x" * 5000)
    message = str(translate(_client_error(500, body)))
    assert "\n" not in message and message.endswith("...")
    assert len(message) <= len("500: ") + MESSAGE_MAX


def test_any_other_message_keeps_every_word() -> None:
    """Only a web page is stripped and cut: DynamoDB's own long message (several failed
    constraints) lost its end at 300 characters, and one quoting an expression with `<>`
    lost the text between the brackets."""
    long = "; ".join(f"Value '{i}' at 'field{i}' failed to satisfy constraint" for i in range(12))
    assert len(long) > MESSAGE_MAX
    quoted = 'Invalid ConditionExpression: Syntax error; token: "<", near: "#a <> :b"'
    for message in (long, quoted, "two\nlines"):
        error = ClientError({"Error": {"Code": "ValidationException", "Message": message}}, "X")
        assert str(translate(error)) == "ValidationException: " + " ".join(message.split())
