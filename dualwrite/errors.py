"""The one error hierarchy. Each error carries the CLI exit code it maps to."""

from __future__ import annotations


class DualwriteError(Exception):
    """Base of every error dualwrite raises on purpose."""

    exit_code = 1


class ConfigError(DualwriteError):
    """Bad usage or bad configuration: a missing table, a bad file, a wrong stream type."""

    exit_code = 2


class SafetyGateError(DualwriteError):
    """A safety gate refused (cutover, decommission)."""

    exit_code = 4


class DriftError(DualwriteError):
    """The reconciler found drift."""

    exit_code = 3


class AwsError(DualwriteError):
    """An AWS call failed in a way we do not retry; carries the AWS error code."""

    def __init__(self, message: str, code: str = "", operation: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.operation = operation


class NotFoundError(AwsError):
    """A table, stream, function or backup does not exist."""


class ConditionFailedError(AwsError):
    """A conditional write found the target changed since it was read."""


class ThrottledError(AwsError):
    """Throttling persisted beyond our retry budget."""


class EndpointError(DualwriteError):
    """The endpoint cannot be reached at all."""


class UnmappableError(DualwriteError):
    """An item the mapping must not guess at; it is quarantined with this reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BackfillIncompleteError(DualwriteError):
    """A route cannot be marked backfilled: some of its scan segments are not done."""


class StopRequested(DualwriteError):
    """A wait was cut short because the run is stopping (Ctrl-C, SIGTERM, a failed worker)."""
