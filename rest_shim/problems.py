"""REST errors: every non-2xx answer is `{"error": "<what to fix>"}`, mapped here and only here."""

from __future__ import annotations

from collections.abc import Mapping

import orjson
from graphql import GraphQLError
from starlette.responses import Response

# extensions.code of a GraphQL error -> HTTP status of the REST answer
_STATUS_BY_CODE = {
    "BAD_USER_INPUT": 400,
    "UNAUTHENTICATED": 401,
    "FORBIDDEN": 403,
    "NOT_FOUND": 404,
}


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


def from_graphql(errors: list[GraphQLError]) -> RestError:
    """The REST error for a failed operation: the first error decides."""
    error = errors[0]
    code = (error.extensions or {}).get("code")
    return RestError(_STATUS_BY_CODE.get(str(code), 500), error.message)
