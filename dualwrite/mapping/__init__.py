"""Mappings by name, and custom mappings by `package.module:attribute`."""

from __future__ import annotations

import importlib
import inspect

from dualwrite.errors import ConfigError
from dualwrite.mapping.base import PK_SK, KeySchema, Mapping
from dualwrite.mapping.identity import IdentityMapping
from dualwrite.mapping.memberships import MembershipsMapping
from dualwrite.mapping.servers import ServersMapping

BUILTIN: dict[str, type[Mapping]] = {
    "servers": ServersMapping,
    "memberships": MembershipsMapping,
    "identity": IdentityMapping,
}

__all__ = ["BUILTIN", "PK_SK", "KeySchema", "Mapping", "build_mapping", "is_identity"]


def _load_custom(spec: str) -> type[Mapping]:
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ConfigError(
            f"mapping {spec!r}: expected one of {', '.join(BUILTIN)} or 'package.module:attribute'"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"mapping {spec!r}: cannot import {module_name}: {exc}") from exc
    try:
        target = getattr(module, attribute)
    except AttributeError as exc:
        raise ConfigError(f"mapping {spec!r}: {module_name} has no attribute {attribute}") from exc
    if not (inspect.isclass(target) and issubclass(target, Mapping)):
        raise ConfigError(f"mapping {spec!r}: {attribute} is not a dualwrite.mapping.Mapping class")
    return target


def mapping_class(spec: str) -> type[Mapping]:
    """The class for a mapping name or a custom `package.module:attribute`."""
    if spec in BUILTIN:
        return BUILTIN[spec]
    return _load_custom(spec)


def build_mapping(spec: str, source_key: KeySchema) -> Mapping:
    """A mapping bound to its source's key schema."""
    return mapping_class(spec)(source_key)


def is_identity(spec: str) -> bool:
    return spec == "identity" or (
        spec not in BUILTIN and issubclass(mapping_class(spec), IdentityMapping)
    )
