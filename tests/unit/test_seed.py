from __future__ import annotations

import pytest

from dualwrite.seed import generate
from dualwrite.wire import MAX_ITEM_BYTES, item_size, key_id


def _types(value: dict[str, object], found: set[str]) -> None:
    ((t, v),) = value.items()
    found.add(t)
    if t == "M":
        for x in v.values():  # type: ignore[attr-defined]
            _types(x, found)
    if t == "L":
        for x in v:  # type: ignore[attr-defined]
            _types(x, found)


def test_seed_is_deterministic_and_sized() -> None:
    a, b = generate(200, 600, 7), generate(200, 600, 7)
    assert a == b
    assert len(a.servers) == 200 and len(a.memberships) == 600
    assert generate(200, 600, 8) != a


@pytest.mark.parametrize(("servers", "memberships"), [(1, 10), (2, 10), (3, 10), (5, 1)])
def test_seed_writes_the_memberships_asked_for_with_few_servers(
    servers: int, memberships: int
) -> None:
    data = generate(servers, memberships, seed=1)  # 1 server, 10 memberships: 3 were made
    assert len(data.memberships) == memberships
    assert len({key_id({k: m[k] for k in ("userId", "serverId")}) for m in data.memberships}) == (
        memberships
    )


def test_seed_covers_every_type_roles_emails_and_large_items() -> None:
    data = generate(300, 900, 3)
    found: set[str] = set()
    for item in data.servers:
        for value in item.values():
            _types(value, found)
    assert found >= {"S", "N", "B", "SS", "NS", "BS", "M", "L", "BOOL", "NULL"}
    roles = {m["role"]["S"] for m in data.memberships}
    assert {"admin", "moderator", "viewer"} <= roles and roles - {"admin", "moderator", "viewer"}
    assert any("email" not in m for m in data.memberships)
    sizes = [item_size(s) for s in data.servers]
    assert max(sizes) > 100_000 and max(sizes) < MAX_ITEM_BYTES - 1000
    keys = [key_id({"u": m["userId"], "s": m["serverId"]}) for m in data.memberships]
    assert len(set(keys)) == len(keys)
