"""HTTP-level refusals, each shaped by the boundary that refuses: the one place for those shapes.

Two boundaries answer requests that fail before (or outside) an operation: the REST API, whose
contract is `{"error": "<what to fix>"}` (SPEC §4), and `/graphql`, where GraphQL clients and
tools expect `{"errors": [{"message": ..., "extensions": {"code": ...}}]}` (SPEC §3) and show
nothing useful otherwise. Each API's gate (`clusterql.api_gate`) is given its `Boundary`; what
refuses a request refuses through it and never decides a shape from the request's path.
`refusal_for` turns what escapes a boundary's endpoints (Starlette's 404/405, an unavailable
database, an unexpected exception) into that boundary's refusal.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import orjson
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import Scope

from graph.errors import RETRY_LATER, UNAVAILABLE_MESSAGE, Code
from models.faults import is_unavailable
from rest_shim.problems import error_body

log = logging.getLogger("clusterql.app")

# The GraphQL code of an HTTP-level refusal. Everything in 4xx not listed is the caller's to fix.
CODE_BY_STATUS = {
    401: Code.UNAUTHENTICATED,
    403: Code.FORBIDDEN,
    404: Code.NOT_FOUND,
    429: Code.RATE_LIMITED,
    500: Code.INTERNAL_SERVER_ERROR,
    503: Code.SERVICE_UNAVAILABLE,
}


def _graphql_body(status: int, message: str) -> bytes:
    code = CODE_BY_STATUS.get(status, Code.BAD_USER_INPUT)
    return orjson.dumps({"errors": [{"message": message, "extensions": {"code": code}}]})


def _rest_body(status: int, message: str) -> bytes:
    return error_body(message)


@dataclass(frozen=True, slots=True)
class Boundary:
    """Where a request is refused, and so in which shape."""

    name: str
    body: Callable[[int, str], bytes]

    def refuse(
        self, status: int, message: str, headers: Mapping[str, str] | None = None
    ) -> Response:
        return Response(
            self.body(status, message),
            status_code=status,
            media_type="application/json",
            headers=dict(headers or {}),
        )

    def unavailable(self) -> Response:
        """503 with `Retry-After`: the database cannot be reached or used right now."""
        return self.refuse(503, UNAVAILABLE_MESSAGE, RETRY_LATER)

    def internal(self, request_id: str | None) -> Response:
        return self.refuse(500, f"internal server error (request id {request_id})")


REST = Boundary("rest", _rest_body)
GRAPHQL = Boundary("graphql", _graphql_body)


def note(scope: Scope, reason: str) -> None:
    """Say which limit refused the request (`clusterql.access` counts refusals by it)."""
    scope.setdefault("state", {})["refusal"] = reason


def _not_found(scope: Scope) -> str:
    return f"no such endpoint: {scope.get('method')} {scope.get('path')}"


def refusal_for_http_error(boundary: Boundary, scope: Scope, exc: HTTPException) -> Response:
    """Starlette's own 404 and 405 (and any HTTPException), in the boundary's shape."""
    messages = {
        404: _not_found(scope),
        405: f"method {scope.get('method')} is not allowed here",
    }
    return boundary.refuse(
        exc.status_code, messages.get(exc.status_code, str(exc.detail)), exc.headers
    )


def refusal_for_exception(boundary: Boundary, scope: Scope, exc: Exception) -> Response:
    """503 for an unavailable database, else a logged, masked 500."""
    request_id = scope.get("state", {}).get("request_id")
    if is_unavailable(exc):
        log.warning(
            "database unavailable: %s", type(exc).__name__, extra={"request_id": request_id}
        )
        return boundary.unavailable()
    log.error("unhandled exception", exc_info=exc, extra={"request_id": request_id})
    return boundary.internal(request_id)


def refusal_for(boundary: Boundary, scope: Scope, exc: Exception) -> Response:
    """What escaped a boundary's endpoints before their answer started, as its refusal."""
    if isinstance(exc, HTTPException):
        return refusal_for_http_error(boundary, scope, exc)
    return refusal_for_exception(boundary, scope, exc)
