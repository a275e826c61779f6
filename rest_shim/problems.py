"""Errors to HTTP, here and only here: REST answers `{"error": "<what to fix>"}` with a status by
GraphQL error code; `/graphql` answers 503 (not 200) when the database is unavailable.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from graphql import GraphQLError
from starlette.responses import Response

from graph.errors import SERVICE_UNAVAILABLE, UNAVAILABLE_MESSAGE

# extensions.code of a GraphQL error -> HTTP status of the REST answer
_STATUS_BY_CODE = {
    "BAD_USER_INPUT": 400,
    "UNAUTHENTICATED": 401,
    "FORBIDDEN": 403,
    "NOT_FOUND": 404,
    SERVICE_UNAVAILABLE: 503,
}
# Seconds a client should wait before trying again after a 503: about what a PostgreSQL restart
# or failover takes. Short on purpose: the service recovers by itself as soon as the database does.
RETRY_AFTER_S = 2
RETRY_LATER = {"Retry-After": str(RETRY_AFTER_S)}


class RestError(Exception):
    """A REST answer other than 200, with a message for the caller."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


def error_response(status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps({"error": message}),
        status_code=status,
        media_type="application/json",
        headers=dict(headers or {}),
    )


def unavailable(*, graphql: bool = False) -> Response:
    """503 with `Retry-After`: the database cannot be reached or used right now.

    `graphql`: shaped as a GraphQL answer, `{"errors": [...]}` with SERVICE_UNAVAILABLE, for
    failures on /graphql before any operation ran (the token lookup).
    """
    if not graphql:
        return error_response(503, UNAVAILABLE_MESSAGE, RETRY_LATER)
    return graphql_error_response(503, UNAVAILABLE_MESSAGE, SERVICE_UNAVAILABLE, RETRY_LATER)


def graphql_error_response(
    status: int, message: str, code: str, headers: Mapping[str, str] | None = None
) -> Response:
    """A /graphql failure before any operation ran, in GraphQL's shape: `{"errors": [...]}`."""
    error = {"message": message, "extensions": {"code": code}}
    return Response(
        orjson.dumps({"errors": [error]}),
        status_code=status,
        media_type="application/json",
        headers=dict(headers or {}),
    )


def _code(error: GraphQLError) -> str:
    return str((error.extensions or {}).get("code"))


def from_graphql(errors: list[GraphQLError]) -> RestError:
    """The REST error for a failed operation: the first error decides, except that an
    unavailable database (503, try again) outranks the errors it may have caused.
    """
    error = next((e for e in errors if _code(e) == SERVICE_UNAVAILABLE), errors[0])
    status = _STATUS_BY_CODE.get(_code(error), 500)
    return RestError(status, error.message, RETRY_LATER if status == 503 else None)


def graphql_status(payloads: Iterable[Mapping[str, Any]]) -> tuple[int, dict[str, str]]:
    """The HTTP status and extra headers of a /graphql answer made of `payloads` (one per
    operation of a batch): 200, as GraphQL over HTTP has it, except 503 with `Retry-After` when
    an error says the database is unavailable, so that clients and load balancers back off.
    """
    codes = {
        (error.get("extensions") or {}).get("code")
        for payload in payloads
        for error in payload.get("errors") or ()
    }
    return (503, RETRY_LATER) if SERVICE_UNAVAILABLE in codes else (200, {})
