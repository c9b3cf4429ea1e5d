"""Follow an AWS list call's pagination token, with our error types."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from dualwrite.aws.errors import aws_call


def pages(
    call: Callable[..., Any],
    operation: str,
    key: str,
    token: str,
    *,
    request_token: str | None = None,
    **kwargs: Any,
) -> Iterator[Any]:
    """Every item under `key` of every page; `token` names the response field and, unless
    `request_token` says otherwise, the request's (NextToken for most services, nextToken
    for Step Functions and ECS; Lambda answers NextMarker to a request's Marker)."""
    while True:
        with aws_call(operation):
            response = call(**kwargs)
        yield from response.get(key, [])
        next_token = response.get(token)
        if not next_token:
            return
        kwargs[request_token or token] = next_token
