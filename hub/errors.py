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


# Domain errors: the services raise these, never an HTTP status. The API and the pages
# map them to a status in one place (hub/api/errors.py); each also subclasses a builtin.


class Invalid(HubError, ValueError):
    """The request is understood but wrong: a field, a time, a zone (422)."""


class NotFound(HubError, LookupError):
    """No such thing, or not visible to this caller (404)."""


class Conflict(HubError, RuntimeError):
    """The thing is in a state that refuses the change: cancelled, already approved (409)."""


class Forbidden(HubError, PermissionError):
    """Allowed to ask, not allowed to do: a second person must approve, a role is short (403)."""


class TooLarge(HubError, ValueError):
    """An upload or body over its limit (413)."""


class Unsupported(HubError, ValueError):
    """A file of a kind the hub cannot read (415)."""


class Throttled(HubError, RuntimeError):
    """Too many attempts; ``retry_after`` seconds until the next one is heard (429)."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class StorageFull(HubError, OSError):
    """The data folder is full: nothing more can be saved until there is space (507)."""


class StorageFailed(HubError, OSError):
    """The database refuses writes for another reason (an I/O error, locked, read-only):
    try again in ``retry_after`` seconds (503)."""

    def __init__(self, message: str, retry_after: float = 30.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after
