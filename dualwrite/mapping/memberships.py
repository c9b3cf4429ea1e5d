"""`memberships`: one UserServer item per membership plus one derived User item per user.

{userId, serverId, role, email} -> {PK: USER#<userId>, SK: SERVER#<serverId>, Type: UserServer,
role, permissions}; and {PK: USER#<userId>, SK: METADATA, Type: User, email, name} derived from
all of the user's memberships. Those two kinds are its key space: a user's partition may hold
other routes' items (USER#<id>/ORDER#<id>).

The inverse (reverse replication, DESIGN.md section 8) is one-to-many, so besides the
one-to-one `inverse` of a UserServer item the mapping plans itself (reverse_reads,
reverse_changes): a UserServer item sets `role` on membership (userId, serverId), creating
it with the email of the user's User item when missing; its delete deletes the membership;
a User item's email is set on every membership of the user unless they already derive it.
"""

from __future__ import annotations

from collections.abc import Sequence

from dualwrite.errors import UnmappableError
from dualwrite.mapping.base import PK_SK, KeySchema, Mapping, no_source_key, require_keys
from dualwrite.mapping.templates import KeySpace, Template, is_number
from dualwrite.reverse.model import Reads, SourceView, SourceWrite, TargetChange, group_id, kid
from dualwrite.wire import AttributeValue, Item, Key, items_equal, scalar_text, sort_value, strings

USER_PREFIX = "USER#"
SERVER_PREFIX = "SERVER#"
METADATA = "METADATA"
#: the attributes the forward mapping writes on each kind of target item
USER_SERVER_ATTRS = frozenset(("PK", "SK", "Type", "role", "permissions"))
USER_ATTRS = frozenset(("PK", "SK", "Type", "email", "name"))

PERMISSIONS: dict[str, tuple[str, ...]] = {
    "admin": ("read", "write", "delete", "manage_users"),
    "moderator": ("read", "write", "restart"),
    "viewer": ("read",),
}
DEFAULT_PERMISSIONS: tuple[str, ...] = ("read",)
#: how many UserServer keys _member_key remembers (a few MB at most; cleared when full)
MEMBER_KEYS_REMEMBERED = 4096
_MISSING: object = object()


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


#: the permissions attribute of each known role, as the forward mapping writes it
_PERMISSION_LISTS = {role: strings(perms) for role, perms in PERMISSIONS.items()}
_DEFAULT_PERMISSION_LIST = strings(DEFAULT_PERMISSIONS)


def _permission_list(role: str) -> AttributeValue:
    """strings(permissions_for(role)[0]), made once per role (compared, never mutated)."""
    return _PERMISSION_LISTS.get(role, _DEFAULT_PERMISSION_LIST)


def email_of(item: Item) -> str:
    value = item.get("email")
    if value is None or "S" not in value:
        return ""
    email = value["S"]
    return email if isinstance(email, str) else ""


def _only(item: Item, allowed: frozenset[str]) -> None:
    if item.keys() <= allowed:  # the usual: one set comparison
        return
    extra = sorted(n for n in item if n not in allowed)
    if extra:
        raise UnmappableError(
            f"unrepresentable: the mapping never writes target attribute(s) {', '.join(extra)}"
        )


def _string(item: Item, name: str) -> str:
    value = item.get(name)
    if value is None or not isinstance(value.get("S"), str):
        raise UnmappableError(f"unrepresentable: {name} is not a string")
    text: str = value["S"]
    return text


class MembershipsMapping(Mapping):
    name = "memberships"
    group_attr = "userId"
    has_inverse = True

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
        # UserServer and User items only: a user's partition may hold other routes' items
        # (USER#<id>/ORDER#<id>), which memberships must not judge or reverse
        pk = target_key.get("PK", {}).get("S")
        sk = target_key.get("SK", {}).get("S")
        return (
            isinstance(pk, str)
            and pk.startswith(USER_PREFIX)
            and isinstance(sk, str)
            and (sk == METADATA or sk.startswith(SERVER_PREFIX))
        )

    def key_space(self) -> KeySpace:
        return {
            "PK": Template.parse(USER_PREFIX + "{userId}"),
            "SK": (Template.parse(SERVER_PREFIX + "{serverId}"), Template.parse(METADATA)),
        }

    def _member_ids(self, target_key: Key) -> tuple[str, str] | None:
        """The user and server texts of a UserServer item's key (None: not one)."""
        if not self.owns(target_key):
            return None
        sk = target_key.get("SK", {}).get("S", "")
        if not isinstance(sk, str) or not sk.startswith(SERVER_PREFIX):
            return None
        return target_key["PK"]["S"][len(USER_PREFIX) :], sk[len(SERVER_PREFIX) :]

    def source_key_for(self, target_key: Key) -> Key | None:
        ids = self._member_ids(target_key)
        if ids is None:
            return None
        try:
            return self._source_key(*ids)
        except UnmappableError:
            return None  # no source key (read, it would fail the batch): unrepresentable

    def _source_key(self, user: str, server: str) -> Key:
        out: Key = {}
        for name, raw in (("userId", user), ("serverId", server)):
            typ = self.source_key.type_of(name)
            if not raw or (typ == "N" and not is_number(raw)):
                raise UnmappableError(
                    f"unrepresentable: {name} {raw!r} is not a valid {typ} key"
                    + (
                        " (a number DynamoDB takes, in its spelling: no exponent, no leading "
                        "or trailing zeros)"
                        if typ == "N"
                        else ""
                    )
                )
            out[name] = {typ: raw}
        return out

    def _member_key(self, target_key: Key) -> Key | None:
        """The membership of a UserServer item's key (None: not one); UnmappableError when
        the old schema cannot hold its ids. Asked for each target-stream record by its reads
        and by its plan (and by the same keys batch after batch): remembered by the key's
        text, a bounded memo whose keys nobody mutates."""
        pk, sk = target_key.get("PK", {}).get("S"), target_key.get("SK", {}).get("S")
        if not isinstance(pk, str) or not isinstance(sk, str):
            return self._member_key_of(target_key)
        memo: dict[tuple[str, str], Key | str | None] = self.__dict__.setdefault("_member_keys", {})
        found = memo.get((pk, sk), _MISSING)
        if found is _MISSING:
            try:
                found = self._member_key_of(target_key)
            except UnmappableError as exc:
                found = exc.reason  # remembered as its reason: raised anew each time
            if len(memo) >= MEMBER_KEYS_REMEMBERED:
                memo.clear()
            memo[(pk, sk)] = found
        if isinstance(found, str):
            raise UnmappableError(found)
        return found  # type: ignore[return-value]

    def _member_key_of(self, target_key: Key) -> Key | None:
        ids = self._member_ids(target_key)
        return None if ids is None else self._source_key(*ids)

    # --- the inverse (section 8) ----------------------------------------------------------
    def _role(self, target: Item) -> AttributeValue:
        _only(target, USER_SERVER_ATTRS)
        if target.get("Type") != {"S": "UserServer"}:
            raise UnmappableError(f"unrepresentable: Type is {target.get('Type')!r}")
        role = _string(target, "role")
        if target.get("permissions") != _permission_list(role):
            raise UnmappableError(f"unrepresentable: permissions are not those of role {role!r}")
        return {"S": role}

    def inverse(self, target: Item, current: Item | None) -> Item:
        """A UserServer item's membership: `role` set, every other attribute of `current`
        kept (email among them; none when there is no current membership). A User item has
        no one-to-one inverse: reverse_changes plans it."""
        key = self._member_key(target)
        if key is None:
            if self.group_for_target(target) is not None:
                raise UnmappableError(
                    "unrepresentable: a User item stands for all of the user's memberships"
                )
            raise no_source_key(self, target)
        role = self._role(target)
        return {**(current or {}), **key, "role": role}

    def reverse_reads(self, change: TargetChange) -> Reads:
        try:
            key = self._member_key(change.keys)
        except UnmappableError:
            return Reads()  # reverse_changes says why
        if key is not None:
            user = self.derived_key(key["userId"])
            if change.removed:  # the rest of the user's memberships may need its email
                return Reads(source_keys=(key,), groups=(key["userId"],), target_keys=(user,))
            # a membership created from a UserServer item takes its User item's email
            return Reads(source_keys=(key,), target_keys=(user,))
        group = self.group_for_target(change.keys)
        if group is not None and not change.removed:
            # and the User item as it is now: a superseded image must not fan out (below)
            return Reads(groups=(group,), target_keys=(self.derived_key(group),))
        return Reads()

    def reverse_changes(self, change: TargetChange, view: SourceView) -> list[SourceWrite]:
        key = self._member_key(change.keys)
        if key is not None:
            if change.removed:
                return [SourceWrite.delete(key), *self._keep_email(key, view)]
            if change.new_image is None:
                raise UnmappableError("unrepresentable: the record has no new image")
            role = self._role(change.new_image)
            if view.current(key) is not None:
                return [SourceWrite.update(key, {"role": role})]
            created: Item = {**key, "role": role}
            user_item = view.target_item(self.derived_key(key["userId"]))
            email = email_of(user_item) if user_item is not None else ""
            if email:
                created["email"] = {"S": email}
            return [SourceWrite.put(key, created)]
        group = self.group_for_target(change.keys)
        if group is None:
            raise no_source_key(self, change.keys)
        if change.removed:
            return []  # the User item follows its memberships; their deletes remove them
        if change.new_image is None:
            raise UnmappableError("unrepresentable: the record has no new image")
        now = view.target_item(self.derived_key(group))
        if now is None or not items_equal(now, change.new_image):
            # superseded: a later record of the User item carries what it is now. Replayed
            # (an echo from the switch's margin), this image's email would be set on every
            # membership, and the later one's after it: a membership whose email was not
            # the derived one would lose it for good
            return []
        return self._user_writes(group, change.new_image, view, change.old())

    def _keep_email(self, removed: Key, view: SourceView) -> list[SourceWrite]:
        """After a membership is removed, the user's other memberships must still derive the
        User item's email (the removed one may have been the one it came from)."""
        user_item = view.target_item(self.derived_key(removed["userId"]))
        if user_item is None:
            return []
        gone = kid(removed)
        rest = [
            m for m in view.members(removed["userId"]) if kid(self.source_key_of_item(m)) != gone
        ]
        derived = self.derive(removed["userId"], rest)
        email = email_of(user_item)
        if derived is None or email_of(derived) == email:
            return []
        return self._set_email(rest, email)

    def _set_email(self, members: Sequence[Item], email: str) -> list[SourceWrite]:
        return [
            SourceWrite.update(self.source_key_of_item(m), {"email": {"S": email}}) for m in members
        ]

    def _user_writes(
        self, group: AttributeValue, user: Item, view: SourceView, old: Item | None = None
    ) -> list[SourceWrite]:
        _only(user, USER_ATTRS)
        if user.get("Type") != {"S": "User"}:
            raise UnmappableError(f"unrepresentable: Type is {user.get('Type')!r}")
        email, name = _string(user, "email"), _string(user, "name")
        pool_name = view.names.get(group_id(group)) if view.pool else None
        # forward derives the email's local part when the pool has no name for the user
        expected = pool_name if view.pool and pool_name is not None else email.split("@", 1)[0]
        if name != expected:
            source = "the user pool says otherwise" if view.pool else "it is the email's local part"
            raise UnmappableError(
                f"unrepresentable: the name is not derivable (the old schema holds none; {source})"
            )
        members = view.members(group)
        derived = self.derive(group, members, name)
        if derived is None:
            return []  # no membership yet: its UserServer item takes the email when it comes
        if email_of(derived) != email:
            return self._set_email(members, email)
        # the memberships derive this email already: an echo, or the record redelivered
        # after a partial fan-out (a throttled update), the membership it derives from
        # changed and another not. Those still holding the email the record changes from
        # take it; one with an email of its own keeps it (forward's echo of an s1 change
        # must not overwrite s2's)
        was = email_of(old) if old is not None else ""
        if not was or was == email:
            return []
        return self._set_email([m for m in members if email_of(m) == was], email)

    # --- the derived User item ---------------------------------------------------------
    def derived_key(self, group: AttributeValue) -> Key:
        return {"PK": {"S": USER_PREFIX + scalar_text(group)}, "SK": {"S": METADATA}}

    def group_for_target(self, target_key: Key) -> AttributeValue | None:
        if not self.owns(target_key) or target_key.get("SK", {}).get("S") != METADATA:
            return None
        raw, typ = target_key["PK"]["S"][len(USER_PREFIX) :], self.source_key.type_of("userId")
        if not raw or (typ == "N" and not is_number(raw)):
            return None  # no user's (queried, it would fail the batch): unrepresentable
        return {typ: raw}

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
