"""Mappings by name, and custom mappings by `package.module:attribute`."""

from __future__ import annotations

import importlib
import inspect

from dualwrite.errors import ConfigError
from dualwrite.mapping.base import PK_SK, KeySchema, Mapping
from dualwrite.mapping.declarative import DeclarativeMapping, DeclarativeSpec
from dualwrite.mapping.identity import IdentityMapping
from dualwrite.mapping.memberships import MembershipsMapping
from dualwrite.mapping.servers import ServersMapping
from dualwrite.mapping.templates import KeySpace, describe_space, spaces_overlap

BUILTIN: dict[str, type[Mapping]] = {
    "servers": ServersMapping,
    "memberships": MembershipsMapping,
    "identity": IdentityMapping,
}

#: what a route's `mapping:` holds: a name (builtin or `package.module:attribute`) or a
#: declarative mapping (section 11)
MappingSpec = str | DeclarativeSpec

#: the builtin `servers` mapping, declaratively (a property test proves them identical)
SERVERS_SPEC = DeclarativeSpec.model_validate(
    {"key": {"PK": "SERVER#{id}", "SK": "METADATA"}, "set": {"Type": "Server"}}
)

__all__ = [
    "BUILTIN",
    "PK_SK",
    "SERVERS_SPEC",
    "DeclarativeSpec",
    "KeySchema",
    "Mapping",
    "MappingSpec",
    "build_mapping",
    "is_identity",
    "key_space_clash",
    "known_key_space",
]


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
    except Exception as exc:  # the user's module fails as it runs (a typo: NameError, ...)
        raise ConfigError(
            f"mapping {spec!r}: importing {module_name} failed: {type(exc).__name__}: {exc}"
        ) from exc
    try:
        target = getattr(module, attribute)
    except AttributeError as exc:
        raise ConfigError(f"mapping {spec!r}: {module_name} has no attribute {attribute}") from exc
    if not (inspect.isclass(target) and issubclass(target, Mapping)):
        raise ConfigError(f"mapping {spec!r}: {attribute} is not a dualwrite.mapping.Mapping class")
    if inspect.isabstract(target):
        missing = ", ".join(sorted(target.__abstractmethods__))
        raise ConfigError(f"mapping {spec!r}: {attribute} does not define {missing}")
    return target


def mapping_class(spec: str) -> type[Mapping]:
    """The class for a mapping name or a custom `package.module:attribute`."""
    if spec in BUILTIN:
        return BUILTIN[spec]
    return _load_custom(spec)


def build_mapping(
    spec: MappingSpec, source_key: KeySchema, target_key: KeySchema | None = None
) -> Mapping:
    """A mapping bound to its source's key schema and, once the target exists (or is
    declared), to the target's: a declarative `key:` is a YAML mapping whose order means
    nothing, so which of its attributes is the partition key (2048-byte limit) and which the
    sort key (1024) is the table's to say."""
    if isinstance(spec, DeclarativeSpec):
        return DeclarativeMapping(source_key, spec, target_key)
    cls = mapping_class(spec)
    if spec in BUILTIN:
        return cls(source_key)
    try:
        return cls(source_key)
    except Exception as exc:  # the user's constructor refuses the source's key schema
        raise ConfigError(
            f"mapping {spec!r}: building it on the source key {source_key.describe()} failed: "
            f"{type(exc).__name__}: {exc}"
        ) from exc


def checked_mapping(
    route: str, spec: MappingSpec, source_key: KeySchema, target_key: KeySchema | None = None
) -> Mapping:
    """build_mapping, refused (ConfigError, exit 2, naming the route) when the mapping cannot
    work on its source's key schema (a declarative placeholder that is no key attribute, a
    builtin on the wrong table): what every command asks before it reads or writes a route's
    items, since only the tables know the key schema."""
    mapping = build_mapping(spec, source_key, target_key)
    problem = mapping.schema_problem()
    if problem:
        raise ConfigError(f"route {route}: {problem}")
    return mapping


def known_key_space(spec: MappingSpec) -> KeySpace | None:
    """A mapping's key space without its source (the migration file's check of routes that
    share a target): declarative and builtin mappings; None for a custom class."""
    if isinstance(spec, DeclarativeSpec):
        return spec.templates
    if spec in BUILTIN:
        return BUILTIN[spec](PK_SK).key_space()  # no builtin's key space depends on its source
    return None


def key_space_clash(
    spec: MappingSpec, mapping: Mapping, others: list[tuple[str, MappingSpec, Mapping]]
) -> str | None:
    """Why a route's mapping could write a key that another route on its target owns, or
    None. For a custom class that declares `key_space` (the migration file's load checked the
    builtin and declarative routes against each other already)."""
    mine = mapping.key_space()
    if mine is None:
        return None
    for other_name, other_spec, other in others:
        if known_key_space(spec) is not None and known_key_space(other_spec) is not None:
            continue
        theirs = other.key_space()
        if theirs is not None and spaces_overlap(mine, theirs):
            return (
                f"mapping {spec} could write keys ({describe_space(mine)}) that route "
                f"{other_name} owns ({describe_space(theirs)})"
            )
    return None


def is_identity(spec: MappingSpec) -> bool:
    if isinstance(spec, DeclarativeSpec):
        return False
    return spec == "identity" or (
        spec not in BUILTIN and issubclass(mapping_class(spec), IdentityMapping)
    )
