"""User names from a Cognito user pool (the derived User item's `name`), cached."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from dualwrite.aws.clients import Clients
from dualwrite.aws.errors import error_code, translate
from dualwrite.errors import ConfigError
from dualwrite.wire import AttributeValue, scalar_text


@dataclass
class CognitoNames:
    client: Any
    pool_id: str
    _cache: dict[str, str | None] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def check(self) -> CognitoNames:
        """Refuses a pool that does not exist (ConfigError) before anything is written: else
        the first derived User item fails, mid-run, with a message that does not name it.
        Another error (say, no permission to describe it) is left to the lookups."""
        try:
            self.client.describe_user_pool(UserPoolId=self.pool_id)
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                raise ConfigError(
                    f"cognito_user_pool_id: user pool {self.pool_id} does not exist (check the "
                    "id, and --region)"
                ) from None
        return self

    def name_for(self, user: AttributeValue) -> str | None:
        username = scalar_text(user)
        with self._lock:
            if username in self._cache:
                return self._cache[username]
        try:
            response = self.client.admin_get_user(UserPoolId=self.pool_id, Username=username)
        except ClientError as exc:
            if error_code(exc) != "UserNotFoundException":
                raise translate(exc, "AdminGetUser") from exc
            name = None
        else:
            attrs = {a["Name"]: a.get("Value") for a in response.get("UserAttributes", [])}
            value = attrs.get("name")
            name = str(value) if value else None
        with self._lock:
            self._cache[username] = name
        return name


def user_pool(clients: Clients, pool_id: str | None) -> CognitoNames | None:
    """The names of the migration's user pool (None: no pool configured)."""
    return CognitoNames(clients.client("cognito-idp"), pool_id) if pool_id else None
