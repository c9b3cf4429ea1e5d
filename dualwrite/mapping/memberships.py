"""`memberships`: one UserServer item per membership plus one derived User item per user.

{userId, serverId, role, email} -> {PK: USER#<userId>, SK: SERVER#<serverId>, Type: UserServer,
role, permissions}; and {PK: USER#<userId>, SK: METADATA, Type: User, email, name} derived from
all of the user's memberships.
"""

from __future__ import annotations

from collections.abc import Sequence

from dualwrite.mapping.base import PK_SK, KeySchema, Mapping, require_keys
from dualwrite.mapping.templates import KeySpace, Template
from dualwrite.wire import AttributeValue, Item, Key, scalar_text, sort_value, strings

USER_PREFIX = "USER#"
SERVER_PREFIX = "SERVER#"
METADATA = "METADATA"

PERMISSIONS: dict[str, tuple[str, ...]] = {
    "admin": ("read", "write", "delete", "manage_users"),
    "moderator": ("read", "write", "restart"),
    "viewer": ("read",),
}
DEFAULT_PERMISSIONS: tuple[str, ...] = ("read",)


def permissions_for(role: str) -> tuple[tuple[str, ...], bool]:
    """The permissions of a role, and whether the role was known."""
    known = PERMISSIONS.get(role)
    if known is None:
        return DEFAULT_PERMISSIONS, False
    return known, True


def role_of(item: Item) -> str | None:
    value = item.get("role")
    if value is None or "S" not in value:
        return None
    role = value["S"]
    return role if isinstance(role, str) else None


def is_unknown_role(item: Item) -> bool:
    """For the UnknownRole metric: a role that is present but not one we know."""
    role = role_of(item)
    return role is not None and role not in PERMISSIONS


def email_of(item: Item) -> str:
    value = item.get("email")
    if value is None or "S" not in value:
        return ""
    email = value["S"]
    return email if isinstance(email, str) else ""


class MembershipsMapping(Mapping):
    name = "memberships"
    group_attr = "userId"

    @property
    def target_key(self) -> KeySchema:
        return PK_SK

    def schema_problem(self) -> str | None:
        attrs = self.source_key.attributes
        if (
            len(attrs) != 2
            or attrs[0][0] != "userId"
            or attrs[1][0] != "serverId"
            or attrs[0][1] not in ("S", "N")
            or attrs[1][1] not in ("S", "N")
        ):
            return (
                "mapping 'memberships' needs a source keyed by hash 'userId' and range "
                f"'serverId' (S or N), found {self.source_key.describe()}"
            )
        return None

    def quarantine_reason(self, item: Item) -> str | None:
        problem = require_keys(item, self.source_key)
        if problem:
            return problem
        if role_of(item) is None:
            return "membership has no role (a string attribute 'role' is required)"
        return None

    def _transform(self, item: Item) -> Item:
        role = role_of(item)
        assert role is not None  # quarantine_reason guarantees it
        perms, _known = permissions_for(role)
        return {
            "PK": {"S": USER_PREFIX + scalar_text(item["userId"])},
            "SK": {"S": SERVER_PREFIX + scalar_text(item["serverId"])},
            "Type": {"S": "UserServer"},
            "role": {"S": role},
            "permissions": strings(perms),
        }

    def target_keys(self, source_key: Key) -> list[Key]:
        return [
            {
                "PK": {"S": USER_PREFIX + scalar_text(source_key["userId"])},
                "SK": {"S": SERVER_PREFIX + scalar_text(source_key["serverId"])},
            }
        ]

    def owns(self, target_key: Key) -> bool:
        pk = target_key.get("PK", {}).get("S")
        return isinstance(pk, str) and pk.startswith(USER_PREFIX)

    def key_space(self) -> KeySpace:
        return {"PK": Template.parse(USER_PREFIX + "{userId}")}  # any SK: UserServer and User

    def source_key_for(self, target_key: Key) -> Key | None:
        if not self.owns(target_key):
            return None
        sk = target_key.get("SK", {}).get("S", "")
        if not isinstance(sk, str) or not sk.startswith(SERVER_PREFIX):
            return None
        user = target_key["PK"]["S"][len(USER_PREFIX) :]
        server = sk[len(SERVER_PREFIX) :]
        return {
            "userId": {self.source_key.type_of("userId"): user},
            "serverId": {self.source_key.type_of("serverId"): server},
        }

    # --- the derived User item ---------------------------------------------------------
    def derived_key(self, group: AttributeValue) -> Key:
        return {"PK": {"S": USER_PREFIX + scalar_text(group)}, "SK": {"S": METADATA}}

    def group_for_target(self, target_key: Key) -> AttributeValue | None:
        if not self.owns(target_key) or target_key.get("SK", {}).get("S") != METADATA:
            return None
        raw = target_key["PK"]["S"][len(USER_PREFIX) :]
        return {self.source_key.type_of("userId"): raw}

    def derive(
        self, group: AttributeValue, members: Sequence[Item], name: str | None = None
    ) -> Item | None:
        if not members:
            return None
        email = ""
        for member in sorted(members, key=lambda m: sort_value(m["serverId"])):
            email = email_of(member)
            if email:
                break
        if name is None:
            name = email.split("@", 1)[0]
        return {
            **self.derived_key(group),
            "Type": {"S": "User"},
            "email": {"S": email},
            "name": {"S": name},
        }
