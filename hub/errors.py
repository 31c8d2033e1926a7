"""The hub's errors: a small hierarchy whose messages a village technician can act on."""

from __future__ import annotations


class HubError(Exception):
    """Base of every error the hub raises on purpose."""


class ConfigError(HubError, ValueError):
    """A configuration file or override is wrong: ``file: key: reason``."""

    def __init__(self, source: str, key: str, reason: str) -> None:
        self.source, self.key, self.reason = source, key, reason
        super().__init__(f"{source}: {key}: {reason}")


class StoreError(HubError, RuntimeError):
    """The database cannot be opened or migrated."""


class AuthError(HubError, PermissionError):
    """Wrong credentials, expired token or missing role."""
