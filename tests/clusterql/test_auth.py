"""Authentication and permissions (SPEC §3) on both APIs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from clusterql import graphiql
from models import tokens
from models.engine import write_transaction
from models.tokens import Permission, new_secret
from tests import factories
from tests.documents import COUNT

LIST = ("POST", "/runtime/api/v1/clusters")
GET = ("GET", "/runtime/api/v1/cluster/1")
GRAPHQL = ("POST", "/graphql")


async def _call(
    client: httpx.AsyncClient,
    target: tuple[str, str],
    secret: str | None,
    header: str | None = None,
) -> httpx.Response:
    method, url = target
    headers = {}
    if header is not None:
        headers["Authorization"] = header
    elif secret is not None:
        headers["Authorization"] = f"Bearer {secret}"
    body = {"query": COUNT} if url == "/graphql" else None
    return await client.request(method, url, json=body, headers=headers)


def _assert_401(response: httpx.Response, message: str | None = None) -> str:
    """401 with the challenge, in the shape of the API asked: REST's or GraphQL's."""
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="clusterql"'
    payload = response.json()
    if response.url.path == "/graphql":
        [error] = payload["errors"]
        assert payload == {"errors": [error]}
        assert error["extensions"] == {"code": "UNAUTHENTICATED"}
        text = str(error["message"])
    else:
        assert list(payload) == ["error"]
        text = str(payload["error"])
    assert message is None or text == message
    return text


@pytest.mark.parametrize("target", [LIST, GET, GRAPHQL])
async def test_every_cause_of_401_gets_the_same_answer(
    client: httpx.AsyncClient, engine: AsyncEngine, target: tuple[str, str]
) -> None:
    expired = await factories.token(
        engine, Permission.ADMIN, expires_at=datetime.now(UTC) - timedelta(seconds=1)
    )
    revoked_name = f"revoked-{target[0]}-{len(target[1])}"
    revoked = await factories.token(engine, Permission.ADMIN, name=revoked_name)
    async with write_transaction(engine) as conn:
        await tokens.revoke(conn, revoked_name, datetime.now(UTC))
    message = _assert_401(await _call(client, target, None))
    for header in ("", "Bearer", "Basic dXNlcjpwYXNz", f"Token {new_secret()}", "Bearer cql_short"):
        _assert_401(await _call(client, target, None, header), message)
    for secret in (new_secret(), expired, revoked):
        _assert_401(await _call(client, target, secret), message)


async def test_revocation_takes_effect_on_the_next_request(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    secret = await factories.token(engine, Permission.ADMIN, name="soon-revoked")
    before = await _call(client, LIST, secret)
    assert before.status_code == 200
    assert before.json() == {"total_count": 0, "pagination": {"limit": 10}, "clusters": []}
    async with write_transaction(engine) as conn:
        await tokens.revoke(conn, "soon-revoked", datetime.now(UTC))
    _assert_401(await _call(client, LIST, secret))


async def test_a_token_without_admin_gets_403_on_rest(
    client: httpx.AsyncClient, controller_secret: str
) -> None:
    for target in (LIST, GET):
        response = await _call(client, target, controller_secret)
        assert response.status_code == 403
        assert response.json() == {"error": "this token lacks the Admin permission"}


@pytest.mark.parametrize(
    "query",
    [
        "{ clusters { totalCount } }",
        "{ c: clusters(limit: 1) { totalCount } }",
        '{ cluster(id: "1") { id } }',
        "{ ...Q } fragment Q on Query { clusters { clusters { id } } }",
        'query { ... on Query { x: cluster(id: "1") { name } } }',
    ],
)
async def test_a_token_without_admin_gets_forbidden_and_no_data_on_graphql(
    client: httpx.AsyncClient, engine: AsyncEngine, controller_secret: str, query: str
) -> None:
    await factories.insert(engine, [factories.cluster()])
    response = await client.post(
        "/graphql", json={"query": query}, headers={"Authorization": f"Bearer {controller_secret}"}
    )
    payload = response.json()
    assert response.status_code == 200
    assert {(e["message"], e["extensions"]["code"]) for e in payload["errors"]} == {
        ("this token lacks the Admin permission", "FORBIDDEN")
    }
    data = payload.get("data")
    assert data is None or all(v is None for v in data.values())


async def test_the_graphiql_page_itself_needs_no_token(client: httpx.AsyncClient) -> None:
    response = await client.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "www-authenticate" not in response.headers
    assert response.text == graphiql.page()  # the page itself, not a refusal


async def test_graphql_operations_over_get_are_refused_even_with_a_token(
    admin: httpx.AsyncClient,
) -> None:
    response = await admin.get("/graphql", params={"query": "{ clusters { totalCount } }"})
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.json() == {
        "errors": [
            {
                "message": "send GraphQL operations with POST",
                "extensions": {"code": "BAD_USER_INPUT"},
            }
        ]
    }
