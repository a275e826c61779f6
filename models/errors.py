"""Domain errors: raised by storage and resolvers, mapped to API codes in one place above."""


class DomainError(Exception):
    """An error the caller can act on; its message is safe to show."""


class InvalidInput(DomainError):
    """The caller sent something the product does not accept."""


class NotFound(DomainError):
    """The caller named something that does not exist."""


class Forbidden(DomainError):
    """The caller is authenticated but may not do this."""


class Conflict(DomainError):
    """The request collides with stored state (e.g. a name already taken)."""
