"""The one place that turns exceptions into GraphQL error codes (`Code`), and masks the unexpected.

Parse, validation and variable errors keep their text (they help the
caller) and get BAD_USER_INPUT; domain errors keep their text and get their code; a database
that cannot be reached or used now (`models.faults.is_unavailable`) gives SERVICE_UNAVAILABLE
with a fixed message (never the driver's text); anything else is logged with the request id and
replaced by a generic message.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from enum import StrEnum

from graphql import GraphQLError

from models.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound
from models.faults import is_unavailable

log = logging.getLogger("clusterql.graph")


class Code(StrEnum):
    """`extensions.code` of an error: the contract's codes (SPEC §6), and SERVICE_UNAVAILABLE for
    a database that cannot be reached or used now (HTTP 503)."""

    BAD_USER_INPUT = "BAD_USER_INPUT"
    UNAUTHENTICATED = "UNAUTHENTICATED"  # only at the HTTP level: the token is checked first
    FORBIDDEN = "FORBIDDEN"
    NOT_FOUND = "NOT_FOUND"
    SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
    RATE_LIMITED = "RATE_LIMITED"  # only at the HTTP level (429): clusterql.rate_limit
    INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"


UNAVAILABLE_MESSAGE = "the database is unavailable right now: try again in a few seconds"
# Seconds a client should wait before trying again after SERVICE_UNAVAILABLE (HTTP 503): about
# what a PostgreSQL restart or failover takes. Short on purpose: the service recovers by itself
# as soon as the database does.
RETRY_AFTER_S = 2
RETRY_LATER = {"Retry-After": str(RETRY_AFTER_S)}

_DOMAIN_CODES: dict[type[DomainError], Code] = {
    InvalidInput: Code.BAD_USER_INPUT,
    Conflict: Code.BAD_USER_INPUT,
    NotFound: Code.NOT_FOUND,
    Forbidden: Code.FORBIDDEN,
}


def code_of(error: GraphQLError) -> str | None:
    """The code an error should carry, or None when it is unexpected (to be masked)."""
    if error.extensions and "code" in error.extensions:
        return str(error.extensions["code"])
    original = error.original_error
    if original is None:
        return Code.BAD_USER_INPUT  # syntax, validation, variable coercion
    if isinstance(original, GraphQLError):
        # Raised by graphql-core while executing (it has a path): a stored value its type
        # cannot represent, or a resolver's result of the wrong shape. Not the caller's fault.
        return None if error.path is not None else Code.BAD_USER_INPUT
    for kind, code in _DOMAIN_CODES.items():
        if isinstance(original, kind):
            return code
    if is_unavailable(original):
        return Code.SERVICE_UNAVAILABLE
    return None


def log_unexpected(errors: list[GraphQLError], request_id: str | None) -> None:
    for error in errors:
        code = code_of(error)
        if code is None:
            log.error(
                "unexpected error in GraphQL execution",
                exc_info=error.original_error,
                extra={"request_id": request_id, "path": error.path},
            )
        elif code == Code.SERVICE_UNAVAILABLE and error.original_error is not None:
            # Expected while the database restarts: one line, no traceback.
            log.warning(
                "database unavailable: %s",
                type(error.original_error).__name__,
                extra={"request_id": request_id, "path": error.path},
            )


def _rebuilt(
    error: GraphQLError, message: str, extensions: Mapping[str, object], *, keep_cause: bool
) -> GraphQLError:
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=error.original_error if keep_cause else None,
        extensions=dict(extensions),
    )


def _coded(error: GraphQLError, request_id: str | None) -> GraphQLError:
    code = code_of(error)
    if code is None:
        message = f"internal server error (request id {request_id})"
        masked = {"code": Code.INTERNAL_SERVER_ERROR, "request_id": request_id}
        return _rebuilt(error, message, masked, keep_cause=False)
    if code == Code.SERVICE_UNAVAILABLE and error.original_error is not None:
        fixed = {"code": Code.SERVICE_UNAVAILABLE, "request_id": request_id}
        return _rebuilt(error, UNAVAILABLE_MESSAGE, fixed, keep_cause=False)
    if error.extensions and error.extensions.get("code") == code:
        return error
    coded = {**(error.extensions or {}), "code": code}
    return _rebuilt(error, error.message, coded, keep_cause=True)


def with_codes(errors: list[GraphQLError], request_id: str | None) -> list[GraphQLError]:
    """Every error with its `extensions.code`; unexpected ones masked."""
    return [_coded(e, request_id) for e in errors]
