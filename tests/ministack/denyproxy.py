"""A loopback HTTP proxy in front of ministack that denies one chosen DynamoDB request once
(AccessDeniedException, as a missing table permission would), forwarding everything else.
It counts what it denied, so a test can prove the failure really happened."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.faultproxy import LoopbackProxy

DENIED = json.dumps(
    {
        "__type": "com.amazon.coral.service#AccessDeniedException",
        "message": "injected: not authorized to perform dynamodb:Scan",
    }
).encode()


@dataclass
class DenyOnce(LoopbackProxy):
    #: (operation, request body) -> whether to deny this request
    matches: Callable[[str, dict[str, Any]], bool] = lambda operation, request: False
    denied: int = 0

    def answer(self, operation: str, body: bytes) -> tuple[int, bytes] | None:
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            return None
        with self._lock:
            if self.denied or not isinstance(request, dict) or not self.matches(operation, request):
                return None
            self.denied += 1
        return 400, DENIED
