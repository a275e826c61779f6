"""Security headers on every kind of answer, and headers that may be sent only once (SPEC §10)."""

from __future__ import annotations

import httpx
import pytest

URL = "/runtime/api/v1/clusters"
QUERY = {"query": "{ clusters { totalCount } }"}


async def test_every_kind_of_answer_carries_nosniff_and_no_referrer(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    answers = [
        await admin.post(URL, json={}),  # REST 200
        await admin.post(URL, json={"limit": 0}),  # REST 400
        await client.post(URL, json={}),  # REST 401
        await admin.post("/graphql", json=QUERY),  # GraphQL 200
        await client.post("/graphql", json=QUERY),  # GraphQL 401
        await client.get("/graphql", headers={"Accept": "text/html"}),  # GraphiQL's page
        await client.get("/healthz"),
        await client.get("/openapi.json"),
        await client.get("/docs"),
        await client.get("/nowhere"),  # 404
    ]
    for answer in answers:
        assert answer.headers["x-content-type-options"] == "nosniff", answer.request.url
        assert answer.headers["referrer-policy"] == "no-referrer", answer.request.url


async def test_api_answers_are_not_stored_by_caches(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    for answer in (
        await admin.post(URL, json={}),
        await admin.get("/runtime/api/v1/cluster/1"),
        await admin.post("/graphql", json=QUERY),
        await client.post("/graphql", json=QUERY),
    ):
        assert answer.headers["cache-control"] == "no-store", answer.request.url


@pytest.mark.parametrize(("path", "accept"), [("/graphql", "text/html"), ("/docs", "*/*")])
async def test_the_pages_may_not_be_framed(
    client: httpx.AsyncClient, path: str, accept: str
) -> None:
    page = await client.get(path, headers={"Accept": accept})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy
    assert "default-src 'self'" in policy


@pytest.mark.parametrize("header", ["Authorization", "Host"])
@pytest.mark.parametrize(("path", "shape"), [(URL, "error"), ("/graphql", "errors")])
async def test_a_header_sent_twice_is_400_in_the_apis_shape(
    admin: httpx.AsyncClient, header: str, path: str, shape: str
) -> None:
    # given a request whose Authorization (or Host) comes twice: once right, once not
    value = admin.headers["authorization"] if header == "Authorization" else "clusterql.test"
    request = admin.build_request("POST", path, json=QUERY if shape == "errors" else {})
    request.headers = httpx.Headers(
        [*request.headers.multi_items(), (header, value if header == "Host" else "Bearer x")]
    )
    # when it is sent
    answer = await admin.send(request)
    # then it is refused, saying which header
    assert answer.status_code == 400
    body = answer.json()
    message = body["error"] if shape == "error" else body["errors"][0]["message"]
    assert f"{header} header once" in message
