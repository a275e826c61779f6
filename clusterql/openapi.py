"""`/openapi.json`: the REST API described in OpenAPI 3.1 (SPEC §4, §5, §10), generated.

Nothing in it is written twice: the body's schema is the pydantic model the REST layer validates
every request with (`rest_shim.list_request`), the answers' schemas are the models of the
vendor's objects whose keys the operations select (`rest_shim.answers`), the paths are the route
table's (`rest_shim.routes`), and the refusals' messages are those the middleware sends. The
document is built once per app (the body limit is a setting) and served as bytes.

It holds no secret and no data, so it is public like `/healthz` (README, "The REST description").
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from pydantic.json_schema import models_json_schema
from starlette.requests import Request
from starlette.responses import Response

from clusterql.auth import UNAUTHENTICATED
from clusterql.overload import OVERLOADED
from graph.errors import UNAVAILABLE_MESSAGE
from graph.permissions import IsAdmin
from models.limits import MAX_PAGE
from rest_shim.answers import ClusterAnswer, ClustersPage, ErrorBody
from rest_shim.list_request import ListClustersBody
from rest_shim.routes import GET_PATHS, LIST_PATHS, PREFIX

OPENAPI_URL = "/openapi.json"
VERSION = "3.1.0"
_SCHEMAS = "#/components/schemas/{model}"
_JSON = "application/json"

_DESCRIPTION = f"""\
The vendor's Runtime REST API, served by clusterql: every cluster the runtime controllers
monitor, and the health of its nodes. The same data is served over GraphQL at `/graphql`.

Every request carries `Authorization: Bearer <token>`; listing and reading clusters needs a token
with the `Admin` permission. Every answer other than 200 is `application/json` with exactly
`{{"error": "<what to fix>"}}`.

| status | when |
|---|---|
| 400 | the body does not fit its schema (the message names the field), its JSON is invalid \
(the message says where), a header came twice, or `next_key` is not a key of this service \
or of this filter and order |
| 401 | no token, or one that is malformed, unknown, expired or revoked (`WWW-Authenticate` set) |
| 403 | a valid token without the `Admin` permission |
| 404 | no such cluster; a `next_key` naming a cluster id never assigned; an unknown path |
| 405 | another method on an endpoint's path (`Allow` names the one accepted) |
| 413 | a body over the limit |
| 415 | a non-empty body whose content type is not JSON |
| 429 | the caller's request rate is exceeded (`Retry-After` set) |
| 500 | an unexpected failure: a generic message with the request id, details in the server log |
| 503 | the database is unavailable or the service overloaded (`Retry-After` set) |

Pages hold 1 to {MAX_PAGE} clusters. With the default order and no filter `next_key` is the id
of the last cluster of the page; otherwise it is an opaque cursor bound to the filters and order.

This document is generated from the models the service validates requests with.
"""

_EXAMPLE_CLUSTER = {
    "monitored_at": "2024-12-25T12:28:13.438479Z", "id": 2, "name": "z0runtime",
    "controller_version": "0.0.0", "controller_status": "running",
    "controller_last_updated": "2024-12-31T11:32:10.367653Z", "provider": "kubernetes",
    "regions": ["eu-west-1"], "nodes_count": 1, "running_nodes_count": 1,
    "failed_nodes_count": 0, "failed_to_install_nodes_count": 0, "disabled_nodes_count": 0,
}  # fmt: skip
_EXAMPLE_NODE = {
    "id": 7, "monitored_at": "2024-12-25T12:28:13.438479Z", "name": "ip-10-0-1-7",
    "sensor_installed": True, "sensor_last_updated": "2024-12-31T11:32:10.367653Z",
    "sensor_version": "5.4.1", "region": "eu-west-1", "architecture": "amd64",
    "hostname": "ip-10-0-1-7.ec2.internal", "internal_dns": "ip-10-0-1-7.ec2.internal",
    "internal_ip": "10.0.1.7", "status": "monitored_with_sensor",
}  # fmt: skip

_HEADERS = {
    "RetryAfter": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "integer", "minimum": 1},
    },
    "WWWAuthenticate": {
        "description": "The scheme and realm to authenticate with.",
        "schema": {"type": "string", "const": 'Bearer realm="clusterql"'},
    },
    "Allow": {
        "description": "The method the path accepts.",
        "schema": {"type": "string"},
    },
    "RequestId": {
        "description": "The request's id (the caller's `X-Request-ID` when it was 1 to 128 "
        "characters of letters, digits and `._:-`), also in the server's log lines.",
        "schema": {"type": "string"},
    },
}


def _header(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/headers/{name}"}


def refusals(max_body_bytes: int) -> dict[str, dict[str, Any]]:
    """Each refusal's status -> (name in components, description, example messages, headers)."""
    return {
        "400": {
            "name": "BadRequest",
            "description": "The request is invalid; the message says what to fix.",
            "examples": {
                "unknown_field": "unknown field(s) 'colour'; accepted: limit, next_key, "
                "last_key, return_nodes, filters, order_by, direction",
                "out_of_range": f"limit: must be from 1 to {MAX_PAGE}, got 500",
                "invalid_json": "invalid JSON at line 1, column 39: a trailing comma before '}' "
                "or a key not in double quotes",
                "bad_cursor": "next key is not a cursor of this service (altered, "
                "truncated or from elsewhere): pass the previous page's key unchanged, or "
                "start again without one",
                "header_twice": "send the Authorization header once, not twice",
            },
        },
        "401": {
            "name": "Unauthenticated",
            "description": "No valid token: send `Authorization: Bearer <token>`.",
            "examples": {"unauthenticated": UNAUTHENTICATED},
            "headers": {"WWW-Authenticate": _header("WWWAuthenticate")},
        },
        "403": {
            "name": "Forbidden",
            "description": "The token lacks the `Admin` permission.",
            "examples": {"forbidden": IsAdmin.message},
        },
        "404": {
            "name": "NotFound",
            "description": "No such cluster (or page start, or path).",
            "examples": {
                "no_cluster": "no cluster with id 999",
                "never_assigned": "next key 999 is not the id of any cluster",
                "no_endpoint": "no such endpoint: POST /runtime/api/v1/clustrs",
            },
        },
        "405": {
            "name": "MethodNotAllowed",
            "description": "Another method on an endpoint's path.",
            "examples": {"method": "method PUT is not allowed here"},
            "headers": {"Allow": _header("Allow")},
        },
        "413": {
            "name": "TooLarge",
            "description": f"The body is over {max_body_bytes} bytes.",
            "examples": {
                "too_large": f"the body is too large: the limit is {max_body_bytes // 1024} KiB"
            },
        },
        "415": {
            "name": "UnsupportedMediaType",
            "description": "A non-empty body must be sent as `application/json`.",
            "examples": {
                "media_type": "the body must be JSON: send it with Content-Type: application/json"
            },
        },
        "429": {
            "name": "RateLimited",
            "description": "Too many requests from this token (or failed ones from this address).",
            "examples": {"rate_limited": "too many requests for this token: try again in 1 s"},
            "headers": {"Retry-After": _header("RetryAfter")},
        },
        "500": {
            "name": "InternalError",
            "description": "An unexpected failure; the server's log has the details.",
            "examples": {
                "internal": "internal server error (request id 3f2a9c1e6b7d4a58)",
            },
        },
        "503": {
            "name": "Unavailable",
            "description": "The database is unavailable, or the service overloaded: try again.",
            "examples": {"database": UNAVAILABLE_MESSAGE, "overloaded": OVERLOADED},
            "headers": {"Retry-After": _header("RetryAfter")},
        },
    }


def _response(refusal: dict[str, Any]) -> dict[str, Any]:
    return {
        "description": refusal["description"],
        "headers": {"X-Request-ID": _header("RequestId"), **refusal.get("headers", {})},
        "content": {
            _JSON: {
                "schema": {"$ref": _SCHEMAS.format(model="ErrorBody")},
                "examples": {
                    name: {"value": {"error": message}}
                    for name, message in refusal["examples"].items()
                },
            }
        },
    }


def _ok(model: str, description: str, example: dict[str, Any]) -> dict[str, Any]:
    return {
        "description": description,
        "headers": {"X-Request-ID": _header("RequestId")},
        "content": {_JSON: {"schema": {"$ref": _SCHEMAS.format(model=model)}, "example": example}},
    }


def _refs(statuses: tuple[str, ...], names: dict[str, str]) -> dict[str, Any]:
    return {status: {"$ref": f"#/components/responses/{names[status]}"} for status in statuses}


_LIST_REFUSALS = ("400", "401", "403", "404", "413", "415", "429", "500", "503")
_GET_REFUSALS = ("400", "401", "403", "404", "429", "500", "503")
_BODY_EXAMPLES = {
    "vendor_client": {"summary": "As the vendor's client sends it", "value": {"limit": 50}},
    "vendor_example": {
        "summary": "The vendor's example: limit as a string, last_key",
        "value": {"limit": "50", "last_key": "10"},
    },
    "filtered": {
        "summary": "Unhealthy AWS clusters in eu-west-1, worst first, with nodes",
        "value": {
            "filters": {
                "providers": ["aws"],
                "regions": ["eu-west-1"],
                "has_unhealthy_nodes": True,
            },
            "order_by": "failed_nodes_count",
            "direction": "desc",
            "limit": 20,
            "return_nodes": True,
        },
    },
}


def _list_operation(path: str, names: dict[str, str]) -> dict[str, Any]:
    canonical = path == LIST_PATHS[0]
    page = {"total_count": 57, "pagination": {"limit": 1, "next_key": "2"}}
    return {
        "operationId": "listClusters" if canonical else "listClustersSlash",
        "tags": ["clusters"],
        "summary": "Get Clusters List" + ("" if canonical else " (with a trailing slash)"),
        "description": "A page of live clusters matching the filters, in the order asked for; "
        "`pagination.next_key` is present exactly when more follow. One answer is one "
        "consistent snapshot. An empty body means `{}`.",
        "requestBody": {
            "required": False,
            "content": {
                _JSON: {
                    "schema": {"$ref": _SCHEMAS.format(model="ListClustersBody")},
                    "examples": _BODY_EXAMPLES,
                }
            },
        },
        "responses": {
            "200": _ok(
                "ClustersPage",
                "A page of clusters.",
                {**page, "clusters": [_EXAMPLE_CLUSTER]},
            ),
            **_refs(_LIST_REFUSALS, names),
        },
    }


def _get_operation(path: str, names: dict[str, str]) -> dict[str, Any]:
    n = GET_PATHS.index(path)
    ids = ("getCluster", "getClusterSlash", "getClusterPlural", "getClusterPluralSlash")
    forms = (
        "",
        " (with a trailing slash)",
        " (the plural form)",
        " (as the vendor's client calls it)",
    )
    return {
        "operationId": ids[n],
        "tags": ["clusters"],
        "summary": "Get Cluster" + forms[n],
        "description": "One live cluster with all its nodes, ordered by id. An unknown or "
        "removed id is 404.",
        "parameters": [
            {
                "name": "id",
                "in": "path",
                "required": True,
                "description": "The cluster's id, in decimal (`2`); anything else is 404.",
                "schema": {"type": "string", "pattern": "^(0|[1-9][0-9]*)$"},
                "example": "2",
            }
        ],
        "responses": {
            "200": _ok(
                "ClusterAnswer",
                "The cluster and its nodes.",
                {"cluster": {**_EXAMPLE_CLUSTER, "nodes": [_EXAMPLE_NODE]}},
            ),
            **_refs(_GET_REFUSALS, names),
        },
    }


def _schemas() -> dict[str, Any]:
    _, top = models_json_schema(
        [
            (ListClustersBody, "validation"),
            (ClustersPage, "serialization"),
            (ClusterAnswer, "serialization"),
            (ErrorBody, "serialization"),
        ],
        ref_template=_SCHEMAS,
    )
    return dict(top["$defs"])


def document(max_body_bytes: int, version: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the REST API."""
    known = refusals(max_body_bytes)
    names = {status: refusal["name"] for status, refusal in known.items()}
    paths: dict[str, Any] = {}
    for path in LIST_PATHS:
        paths[PREFIX + path] = {"post": _list_operation(path, names)}
    for path in GET_PATHS:
        paths[PREFIX + path] = {"get": _get_operation(path, names)}
    return {
        "openapi": VERSION,
        "info": {
            "title": "clusterql REST API (the vendor's Runtime API)",
            "version": version,
            "description": _DESCRIPTION,
        },
        "security": [{"bearerAuth": []}],
        "tags": [{"name": "clusters", "description": "Clusters and the health of their nodes."}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "cql_ followed by 43 URL-safe characters",
                    "description": "An API token's secret, as `clusterql token create` prints it.",
                }
            },
            "schemas": _schemas(),
            "responses": {refusal["name"]: _response(refusal) for refusal in known.values()},
            "headers": _HEADERS,
        },
    }


def endpoint(max_body_bytes: int, version: str) -> Callable[[Request], Awaitable[Response]]:
    """The endpoint serving the document, built once."""
    body = orjson.dumps(document(max_body_bytes, version))

    async def openapi_json(request: Request) -> Response:
        return Response(body, media_type=_JSON)

    return openapi_json
