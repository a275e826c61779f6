"""What each request was (SPEC §10): once it is answered (`clusterql.edge` sees that), it is
counted (`clusterql.metrics`) and its access line written, one JSON line on the
`clusterql.access` logger.

The line has the method, the route template (never the path as sent nor its query string, which
may carry secrets), the status, the duration, the request id (the formatter's), the token's name
(never its secret), the GraphQL operation's name and type, the client's address and its user
agent. Errors are logged where they happen, once, with the request id; the access line only
says what was answered.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.types import Scope

from clusterql import metrics
from clusterql.refusals import CODE_BY_STATUS
from graph.errors import Code
from graph.outcome import Outcome
from models.tokens import Principal

log = logging.getLogger("clusterql.access")

UNMATCHED = "unmatched"  # the route of a path that matches none (its text is never kept)
MAX_USER_AGENT = 200


def route_templates(routes: Iterable[BaseRoute]) -> dict[int, str]:
    """Each route of an app (by identity) and its full template: a mount's routes under its
    path; a mount of files as `{path}` under it."""
    templates: dict[int, str] = {}
    for route in routes:
        if isinstance(route, Mount):
            children = route.routes
            if not children:
                templates[id(route)] = f"{route.path}/{{path}}"
            for child in children:
                if isinstance(child, Route):
                    templates[id(child)] = route.path + child.path
        elif isinstance(route, Route):
            templates[id(route)] = route.path
    return templates


@dataclass(frozen=True, slots=True)
class Watch:
    """What the middleware knows of the app: its routes' templates, the one route whose answers
    are GraphQL's, and whether metrics are counted."""

    templates: dict[int, str]
    graphql_route: str
    counting: bool

    def route(self, scope: Scope) -> str:
        """The template of the route that answered. A request refused before a mount's own
        routing (by the middleware of its API) has the mount as its route: the route under
        it is the one its path matches."""
        route = scope.get("route")
        found = self.templates.get(id(route))
        if found is not None:
            return found
        if isinstance(route, Mount):
            for child in route.routes:
                if child.matches(scope)[0] is not Match.NONE:
                    return self.templates.get(id(child), UNMATCHED)
        return UNMATCHED


class Access:
    """Counts and logs each HTTP request once answered (`clusterql.edge` calls it, inside the
    request id, so that its lines carry it)."""

    def __init__(self, watch: Watch) -> None:
        self.watch = watch

    def started(self) -> float:
        """A request came in: its start, for `seen`."""
        if self.watch.counting:
            metrics.IN_FLIGHT.inc()
        return time.perf_counter()

    def seen(self, scope: Scope, status: int, started: float) -> None:
        """The request that `started` then was answered `status` (500: it failed unanswered)."""
        seconds = time.perf_counter() - started
        if self.watch.counting:
            metrics.IN_FLIGHT.dec()
        self._seen(scope, status, seconds)

    def _seen(self, scope: Scope, status: int, seconds: float) -> None:
        state = scope.get("state", {})
        route = self.watch.route(scope)
        outcome: Outcome | None = state.get("outcome")
        if self.watch.counting:
            codes = self._graphql_codes(route, status, outcome)
            metrics.count(
                route,
                scope["method"],
                status,
                seconds,
                outcome=outcome,
                refusal=state.get("refusal"),
                graphql_codes=codes,
            )
        if log.isEnabledFor(logging.INFO):
            _log_line(scope, route, status, seconds, state.get("principal"), outcome)

    def _graphql_codes(self, route: str, status: int, outcome: Outcome | None) -> list[str]:
        """The codes of the errors a /graphql answer holds: its operation's, or the one of a
        refusal at the HTTP level (GraphQL-shaped, `clusterql.refusals`)."""
        if route != self.watch.graphql_route:
            return []
        if outcome is not None and outcome.codes:
            return outcome.codes
        if status >= 400:
            return [CODE_BY_STATUS.get(status, Code.BAD_USER_INPUT)]
        return []


def _log_line(
    scope: Scope,
    route: str,
    status: int,
    seconds: float,
    principal: Principal | None,
    outcome: Outcome | None,
) -> None:
    method = scope["method"]
    user_agent = dict(scope["headers"]).get(b"user-agent", b"")[:MAX_USER_AGENT]
    client = scope.get("client")
    # Made and handled as `log.info` would, without looking for the caller's file and line,
    # which no line shows and which `info` finds by walking the stack: one line per request.
    record = log.makeRecord(
        log.name,
        logging.INFO,
        "",
        0,
        "%s %s %d",
        (method, route, status),
        None,
        extra={
            "kind": "access",
            "method": method,
            "route": route,
            "status": status,
            "duration_ms": round(seconds * 1000, 3),
            "token": principal.name if principal else None,
            "operation_name": outcome.name if outcome else None,
            "operation_type": outcome.type if outcome else None,
            "client": client[0] if client else None,
            "user_agent": user_agent.decode("latin-1") or None,
        },
    )
    log.handle(record)
