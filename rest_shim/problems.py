"""REST errors, here and only here: `{"error": "<what to fix>"}` with a status by GraphQL error
code (SPEC §4). Refusals before any operation runs are built by `clusterql.refusals`.
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson
from graphql import GraphQLError
from starlette.responses import Response

from graph.errors import RETRY_LATER, Code

# extensions.code of a GraphQL error -> HTTP status of the REST answer
# (no UNAUTHENTICATED: the token is checked before any operation runs, by clusterql.auth)
_STATUS_BY_CODE: dict[str, int] = {
    Code.BAD_USER_INPUT: 400,
    Code.FORBIDDEN: 403,
    Code.NOT_FOUND: 404,
    Code.SERVICE_UNAVAILABLE: 503,
}


class RestError(Exception):
    """A REST answer other than 200, with a message for the caller."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


def error_body(message: str) -> bytes:
    """The contract's error body: exactly `{"error": message}`."""
    return orjson.dumps({"error": message})


def error_response(status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    return Response(
        error_body(message),
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
    error = next((e for e in errors if _code(e) == Code.SERVICE_UNAVAILABLE), errors[0])
    status = _STATUS_BY_CODE.get(_code(error), 500)
    return RestError(status, error.message, RETRY_LATER if status == 503 else None)
