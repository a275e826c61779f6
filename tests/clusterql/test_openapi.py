"""`/openapi.json` (SPEC §10): a valid OpenAPI 3.1 document, public, describing every REST route,
and its example refusals are what the service really answers."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate
from starlette.applications import Starlette
from starlette.routing import Mount, Route

from clusterql.openapi import OPENAPI_URL
from tests.conftest import in_process

URL = "/runtime/api/v1/clusters"
JSON = {"content-type": "application/json"}


@pytest.fixture
async def described(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get(OPENAPI_URL)  # no token: the document is public
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    document: dict[str, Any] = response.json()
    return document


def test_the_document_is_valid_openapi_3_1(described: dict[str, Any]) -> None:
    validate(described)  # raises on the first problem
    assert described["openapi"] == "3.1.0"
    assert described["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "cql_ followed by 43 URL-safe characters",
        "description": "An API token's secret, as `clusterql token create` prints it.",
    }
    assert described["security"] == [{"bearerAuth": []}]


def test_every_rest_route_is_described_with_its_method(
    app: Starlette, described: dict[str, Any]
) -> None:
    served: set[tuple[str, str]] = set()
    for mount in app.routes:
        if isinstance(mount, Mount) and mount.path.startswith("/runtime/"):
            for route in mount.routes:
                assert isinstance(route, Route)
                served |= {(mount.path + route.path, m.lower()) for m in route.methods or ()}
    served = {(path, method) for path, method in served if method != "head"}
    documented = {(path, method) for path, item in described["paths"].items() for method in item}
    assert documented == served
    assert len(documented) == 6  # two path forms of Get Clusters List, four of Get Cluster


def test_every_status_of_the_contract_has_a_body_schema_and_an_example(
    described: dict[str, Any],
) -> None:
    responses = described["components"]["responses"]
    operations = [op for item in described["paths"].values() for op in item.values()]
    statuses = {status for op in operations for status in op["responses"]}
    assert statuses == {"200", "400", "401", "403", "404", "413", "415", "429", "500", "503"}
    assert "MethodNotAllowed" in responses  # 405 belongs to no operation: methods not served
    for response in responses.values():
        content = response["content"]["application/json"]
        assert content["schema"] == {"$ref": "#/components/schemas/ErrorBody"}
        assert content["examples"]
    for op in operations:
        assert "example" in op["responses"]["200"]["content"]["application/json"]


def _example(described: dict[str, Any], name: str, example: str) -> str:
    content = described["components"]["responses"][name]["content"]["application/json"]
    message: str = content["examples"][example]["value"]["error"]
    return message


async def test_the_example_refusals_are_the_real_ones(
    app: Starlette,
    admin: httpx.AsyncClient,
    client: httpx.AsyncClient,
    controller_secret: str,
    described: dict[str, Any],
) -> None:
    # given the refusals each example shows, provoked for real
    twice = admin.build_request("POST", URL, json={})
    twice.headers = httpx.Headers([*twice.headers.multi_items(), ("Authorization", "Bearer x")])
    async with in_process(app, controller_secret) as controller:
        answers = {
            ("BadRequest", "unknown_field"): await admin.post(URL, json={"colour": "red"}),
            ("BadRequest", "out_of_range"): await admin.post(URL, json={"limit": "500"}),
            ("BadRequest", "invalid_json"): await admin.post(
                URL, content=b'{ "limit": "50", "last_key": "id123", }', headers=JSON
            ),
            ("BadRequest", "bad_cursor"): await admin.post(
                URL, json={"order_by": "name", "next_key": "1.abc.def"}
            ),
            ("BadRequest", "header_twice"): await admin.send(twice),
            ("Unauthenticated", "unauthenticated"): await client.post(URL, json={}),
            ("Forbidden", "forbidden"): await controller.post(URL, json={}),
            ("NotFound", "no_cluster"): await admin.get("/runtime/api/v1/cluster/999"),
            ("NotFound", "never_assigned"): await admin.post(URL, json={"next_key": "999"}),
            ("NotFound", "no_endpoint"): await admin.post("/runtime/api/v1/clustrs"),
            ("MethodNotAllowed", "method"): await admin.put(URL),
            ("TooLarge", "too_large"): await admin.post(URL, content=b" " * 70_000, headers=JSON),
            ("UnsupportedMediaType", "media_type"): await admin.post(URL, content=b"limit=5"),
        }
    # then each answer's message is its example's, word for word
    for (name, example), answer in answers.items():
        status = next(
            s
            for op in described["paths"][URL].values()
            for s, r in op["responses"].items()
            if r.get("$ref", "").endswith(f"/{name}")
        ) if name != "MethodNotAllowed" else "405"  # fmt: skip
        assert str(answer.status_code) == status, (name, answer.text)
        assert answer.json() == {"error": _example(described, name, example)}, name
