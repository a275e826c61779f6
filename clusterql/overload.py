"""Overload (SPEC §10): a bounded number of API requests in flight per process, 503 beyond.

Past the bound a request is answered at once, 503 with `Retry-After` in its API's shape, instead
of queueing behind the others (for the database pool, or the CPU) until clients time out and send
it again. One count serves both APIs of a process; with N processes the service holds N times it.
"""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Receive, Scope, Send

from clusterql.refusals import Boundary, note

log = logging.getLogger("clusterql.app")

RETRY_AFTER_S = 1
OVERLOADED = "the service is overloaded right now: try again in a second"


class InFlight:
    """How many API requests this process is serving, and how many it may (0: no bound)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0


class InFlightBound:
    """ASGI middleware: at most `in_flight.limit` requests at once behind it, 503 beyond."""

    def __init__(self, app: ASGIApp, boundary: Boundary, in_flight: InFlight) -> None:
        self.app = app
        self.boundary = boundary
        self.in_flight = in_flight

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        in_flight = self.in_flight
        if scope["type"] != "http" or not in_flight.limit:
            await self.app(scope, receive, send)
            return
        if in_flight.count >= in_flight.limit:
            log.warning(
                "overloaded: %d requests in flight, 503",
                in_flight.count,
                extra={"request_id": scope.get("state", {}).get("request_id")},
            )
            note(scope, "in_flight")
            headers = {"Retry-After": str(RETRY_AFTER_S)}
            await self.boundary.refuse(503, OVERLOADED, headers)(scope, receive, send)
            return
        in_flight.count += 1
        try:
            await self.app(scope, receive, send)
        finally:
            in_flight.count -= 1
