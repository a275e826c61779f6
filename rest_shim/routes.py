"""The REST endpoints (SPEC §4 and §5), each one GraphQL operation run in-process."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from strawberry import Schema

from graph.context import Context
from graph.scalars import parse_cluster_id
from rest_shim.body import read_json
from rest_shim.list_request import parse_list_request
from rest_shim.operations import (
    GET_CLUSTER,
    LIST_CLUSTERS,
    REST_WIRE,
    rest_clusters,
    rest_page,
)
from rest_shim.problems import RestError, error_response, from_graphql

ContextFactory = Callable[[Request], Context]
PREFIX = "/runtime/api/v1"
# Every path form each endpoint answers at, relative to PREFIX: the routes and /openapi.json's
# paths are both made from these. The vendor's own clients call Get Cluster at the plural form
# with a trailing slash (SPEC §5).
LIST_PATHS = ("/clusters", "/clusters/")
GET_PATHS = ("/cluster/{id}", "/cluster/{id}/", "/clusters/{id}", "/clusters/{id}/")


def _json(payload: dict[str, Any]) -> Response:
    return Response(orjson.dumps(payload), media_type="application/json")


class RestShim:
    """The REST API on top of `schema`, using the same context factory as `/graphql`."""

    def __init__(self, schema: Schema, context_for: ContextFactory) -> None:
        self._schema = schema
        self._context_for = context_for

    async def _run(self, request: Request, query: str, variables: dict[str, Any]) -> Any:
        context = self._context_for(request)
        context.wire = REST_WIRE
        result = await self._schema.execute(query, variable_values=variables, context_value=context)
        if result.errors:
            raise from_graphql(result.errors)
        return result.data

    async def list_clusters(self, request: Request) -> Response:
        try:
            req = parse_list_request(await read_json(request))
            data = await self._run(
                request,
                LIST_CLUSTERS,
                {
                    "limit": req.limit,
                    "nextKey": req.next_key,
                    "withNodes": req.return_nodes,
                    "filter": req.filter or None,
                    "orderBy": req.order_by,
                    "direction": req.direction,
                },
            )
        except RestError as exc:
            return error_response(exc.status, exc.message, exc.headers)
        return _json(rest_page(data["clusters"]))

    async def get_cluster(self, request: Request) -> Response:
        raw_id = request.path_params["id"]
        try:
            if parse_cluster_id(raw_id) is None:
                raise RestError(404, f"no cluster with id {raw_id!r}: ids are decimal strings")
            data = await self._run(request, GET_CLUSTER, {"id": raw_id})
            if data["cluster"] is None:
                raise RestError(404, f"no cluster with id {raw_id}")
        except RestError as exc:
            return error_response(exc.status, exc.message, exc.headers)
        return _json({"cluster": rest_clusters([data["cluster"]])[0]})

    def routes(self) -> list[BaseRoute]:
        """The endpoints, relative to `PREFIX` (where the app mounts them)."""
        return [
            *(Route(path, self.list_clusters, methods=["POST"]) for path in LIST_PATHS),
            *(Route(path, self.get_cluster, methods=["GET"]) for path in GET_PATHS),
        ]
