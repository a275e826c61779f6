"""Overload (SPEC §10): a bounded number of API requests in flight per process, 503 beyond.

Past the bound a request is answered at once, 503 with `Retry-After` in its API's shape, instead
of queueing behind the others (for the database pool, or the CPU) until clients time out and send
it again. One count serves both APIs of a process; with N processes the service holds N times it.
"""

from __future__ import annotations

import logging

from starlette.responses import Response
from starlette.types import Scope

from clusterql.refusals import Boundary, note

log = logging.getLogger("clusterql.app")

RETRY_AFTER_S = 1
OVERLOADED = "the service is overloaded right now: try again in a second"


class InFlight:
    """How many API requests this process is serving, and how many it may (0: no bound).
    Each API's gate (`clusterql.api_gate`) counts its requests in and out."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0

    @property
    def full(self) -> bool:
        return bool(self.limit) and self.count >= self.limit


def overloaded(boundary: Boundary, scope: Scope, in_flight: InFlight) -> Response:
    """The 503 of a request past the bound (`InFlight.full`)."""
    log.warning(
        "overloaded: %d requests in flight, 503",
        in_flight.count,
        extra={"request_id": scope.get("state", {}).get("request_id")},
    )
    note(scope, "in_flight")
    return boundary.refuse(503, OVERLOADED, {"Retry-After": str(RETRY_AFTER_S)})
