"""Refusals before any operation runs are shaped by the API asked (SPEC §3, §4).

`/graphql` answers `{"errors": [{"message", "extensions": {"code"}}]}` so that GraphQL clients
and tools show the message; the REST API answers exactly `{"error": "..."}`. The 503s of an
unavailable database are in test_unavailable.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, MutableMapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from clusterql import graphql_view
from clusterql.database import resources
from clusterql.settings import Settings
from models.tokens import Permission
from tests import factories
from tests.conftest import in_process
from tests.databases import migrated_database_url
from tests.documents import COUNT

QUERY = {"query": COUNT}
GRAPHQL_LIMIT = 65536  # the smallest the settings allow
REST_LIMIT = 4096


@pytest.fixture
async def settings(tmp_path: Path) -> Settings:
    return Settings(
        database_url=await migrated_database_url(tmp_path),
        max_graphql_body_bytes=GRAPHQL_LIMIT,
        max_body_bytes=REST_LIMIT,
    )


@pytest.fixture
async def caller(app: Starlette, admin_secret: str) -> AsyncIterator[httpx.AsyncClient]:
    async with in_process(app, admin_secret, raise_app_exceptions=False) as client:
        yield client


def graphql_refusal(response: httpx.Response, status: int, code: str) -> str:
    """The refusal's message, once its status, shape and code are checked."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    payload = response.json()
    assert list(payload) == ["errors"], payload
    [error] = payload["errors"]
    assert error == {"message": error["message"], "extensions": {"code": code}}
    assert error["message"]
    return str(error["message"])


def rest_refusal(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    payload = response.json()
    assert list(payload) == ["error"], payload
    return str(payload["error"])


def _post(client: httpx.AsyncClient, url: str, body: bytes, content_type: str) -> Any:
    return client.post(url, content=body, headers={"Content-Type": content_type})


async def test_401_at_graphql_is_graphql_shaped_with_the_challenge(
    caller: httpx.AsyncClient,
) -> None:
    response = await caller.post("/graphql", json=QUERY, headers={"Authorization": "Bearer x"})
    message = graphql_refusal(response, 401, "UNAUTHENTICATED")
    assert response.headers["www-authenticate"] == 'Bearer realm="clusterql"'
    assert "Authorization: Bearer" in message


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b'{"query": "{ __typename }",}', ["line 1", "trailing comma"]),
        (b"5", ["JSON object"]),
        (b"null", ["JSON object"]),
        (b'{"query": "{ __typename }", "query": "{ x }"}', ["duplicate key"]),
        (b"\xff\xfe", ["UTF-8"]),
    ],
)
async def test_bad_json_at_graphql_is_400_bad_user_input_saying_what_is_wrong(
    caller: httpx.AsyncClient, body: bytes, words: list[str]
) -> None:
    response = await _post(caller, "/graphql", body, "application/json")
    message = graphql_refusal(response, 400, "BAD_USER_INPUT")
    for word in words:
        assert word in message


@pytest.mark.parametrize(
    "content_type", ["text/plain", "multipart/form-data; boundary=x", "application/graphql"]
)
async def test_a_body_that_is_not_json_at_graphql_is_415(
    caller: httpx.AsyncClient, content_type: str
) -> None:
    response = await _post(caller, "/graphql", b"{ __typename }", content_type)
    assert "Content-Type: application/json" in graphql_refusal(response, 415, "BAD_USER_INPUT")


async def test_too_large_a_body_at_graphql_is_413_declared_or_streamed(
    caller: httpx.AsyncClient,
) -> None:
    big = b'{"query": "' + b" " * GRAPHQL_LIMIT + b'{ __typename }"}'
    response = await _post(caller, "/graphql", big, "application/json")
    assert "64 KiB" in graphql_refusal(response, 413, "BAD_USER_INPUT")

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
        for _ in range(GRAPHQL_LIMIT // 1024 + 1):
            yield b" " * 1024

    streamed = await caller.post(
        "/graphql", content=chunks(), headers={"Content-Type": "application/json"}
    )
    graphql_refusal(streamed, 413, "BAD_USER_INPUT")


async def test_another_method_at_graphql_is_405_graphql_shaped(caller: httpx.AsyncClient) -> None:
    graphql_refusal(await caller.put("/graphql", json=QUERY), 405, "BAD_USER_INPUT")
    response = await caller.get("/graphql", headers={"Accept": "application/json"})
    graphql_refusal(response, 405, "BAD_USER_INPUT")
    assert response.headers["allow"] == "POST"


async def test_an_unexpected_failure_is_500_masked_in_each_apis_shape(
    caller: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("secret detail")

    monkeypatch.setattr(graphql_view, "build_context", broken)
    message = graphql_refusal(
        await caller.post("/graphql", json=QUERY), 500, "INTERNAL_SERVER_ERROR"
    )
    assert "request id" in message
    assert "secret" not in message
    rest = rest_refusal(await caller.post("/runtime/api/v1/clusters", json={}), 500)
    assert "request id" in rest
    assert "secret" not in rest


async def test_rest_refusals_keep_the_contracts_shape(caller: httpx.AsyncClient) -> None:
    url = "/runtime/api/v1/clusters"
    rest_refusal(await caller.post(url, json={}, headers={"Authorization": "Bearer x"}), 401)
    rest_refusal(await _post(caller, url, b"{,}", "application/json"), 400)
    rest_refusal(await _post(caller, url, b"limit=5", "text/plain"), 415)
    rest_refusal(await _post(caller, url, b" " * (REST_LIMIT + 1), "application/json"), 413)
    rest_refusal(await caller.put(url, json={}), 405)
    assert "no such endpoint" in rest_refusal(await caller.get("/runtime/api/v1/nope"), 404)
    assert "no such endpoint" in rest_refusal(await caller.get("/elsewhere"), 404)


@pytest.mark.parametrize("path", ["/runtime/api/v1/clusters", "/graphql"])
async def test_a_client_that_hangs_up_before_its_body_is_no_error(
    app: Starlette, caplog: pytest.LogCaptureFixture, path: str
) -> None:
    # given: a request with a token, whose client disconnects before sending the body
    secret = await factories.token(resources(app).engine, Permission.ADMIN)
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
        "query_string": b"", "server": ("127.0.0.1", 8000), "client": ("127.0.0.1", 5000),
        "headers": [
            (b"authorization", f"Bearer {secret}".encode()),
            (b"content-type", b"application/json"),
            (b"content-length", b"100"),
        ],
    }  # fmt: skip
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    # when it reaches the app
    await app(scope, receive, send)
    # then: nothing is answered to nobody, and nothing is logged as an error
    assert sent == []
    assert [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")] == []
