"""A user's mapping module with a typo that fails as it is imported (a NameError, not an
ImportError)."""

from __future__ import annotations

from dualwrite.mapping.identity import IdentityMapping


class OrdersMapping(IdentityMaping):  # type: ignore[name-defined]  # noqa: F821  (the typo)
    pass


__all__ = ["IdentityMapping", "OrdersMapping"]
