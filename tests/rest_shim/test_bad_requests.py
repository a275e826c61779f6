"""Every way a Get Clusters List body can be wrong is a 400 (or 413/415) that says what to fix."""

from __future__ import annotations

import json

import httpx
import pytest

URL = "/runtime/api/v1/clusters"
JSON = {"content-type": "application/json"}


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b'{ "limit": "50", "last_key": "id123", }', ["line 1, column 39", "trailing comma"]),
        (b'{"limit": 5, "colour": "red", "size": 1}', ["'colour'", "'size'", "limit"]),
        (b'{"limit": 5, "limit": 6}', ["duplicate", "'limit'"]),
        (b"5", ["JSON object", "int"]),
        (b"null", ["JSON object", "null"]),
        (b"[]", ["JSON object", "array"]),
        (b'"text"', ["JSON object", "string"]),
        (b'{"limit": true}', ["limit", "integer"]),
        (b'{"limit": 50.5}', ["limit", "integer"]),
        (b'{"limit": 0}', ["limit", "1 to 100"]),
        (b'{"limit": 101}', ["limit", "1 to 100"]),
        (b'{"limit": "abc"}', ["limit", "integer"]),
        (b'{"limit": "500"}', ["limit", "1 to 100"]),
        (b'{"limit": -1}', ["limit"]),
        (b'{"limit": NaN}', ["NaN"]),
        (b'{"limit": Infinity}', ["Infinity"]),
        (b'{"limit": -Infinity}', ["Infinity"]),
        (b'{"limit": 1e999}', ["out of range"]),
        (b'{"limit": ' + b"9" * 5000 + b"}", ["5000 digits"]),
        (b'{"a":' * 10_000 + b"1" + b"}" * 10_000, ["nested too deeply"]),
        (b"[" * 60_000, ["nested too deeply"]),
        (b'{"limit": 5, "next_key": "\xff"}', ["UTF-8", "byte offset 26"]),
        (b'{"next_key": true}', ["next_key", "string"]),
        (b'{"next_key": -3}', ["next_key", "string"]),
        (b'{"next_key": 1.5}', ["next_key", "string"]),
        (b'{"next_key": ["1"]}', ["next_key", "string"]),
        (b'{"next_key": "1", "last_key": "2"}', ["next_key", "last_key"]),
        (b'{"return_nodes": "yes"}', ["return_nodes", "true or false"]),
        (b'{"return_nodes": 1}', ["return_nodes", "true or false"]),
        (b'{"next_key": "abc"}', ["next key", "'abc'"]),
        (b'{"next_key": "-1"}', ["next key"]),
        (b'{"next_key": "007"}', ["next key"]),
        (b'{"limit": 5', ["line 1"]),
        (b"{'limit': 5}", ["double quotes"]),
    ],
)
async def test_bad_bodies_get_400_naming_the_problem(
    admin: httpx.AsyncClient, body: bytes, words: list[str]
) -> None:
    response = await admin.post(URL, content=body, headers=JSON)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/json"
    payload = response.json()
    assert list(payload) == ["error"]
    for word in words:
        assert word in payload["error"], (word, payload["error"])
    assert "Traceback" not in payload["error"]


async def test_a_body_over_64_kib_is_413(admin: httpx.AsyncClient) -> None:
    body = b'{"next_key": "' + b"1" * (65 * 1024) + b'"}'
    response = await admin.post(URL, content=body, headers=JSON)
    assert response.status_code == 413
    assert "64 KiB" in response.json()["error"]


async def test_a_body_that_is_not_json_is_415(admin: httpx.AsyncClient) -> None:
    response = await admin.post(URL, content=b"limit=5", headers={"content-type": "text/plain"})
    assert response.status_code == 415
    assert "application/json" in response.json()["error"]
    form = await admin.post(URL, data={"limit": "5"})
    assert form.status_code == 415


async def test_an_empty_body_without_content_type_is_the_first_page(
    admin: httpx.AsyncClient,
) -> None:
    response = await admin.post(URL)
    assert response.status_code == 200
    assert response.json()["pagination"] == {"limit": 10}


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
async def test_other_methods_are_405_with_allow(admin: httpx.AsyncClient, method: str) -> None:
    response = await admin.request(method, URL)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert list(response.json()) == ["error"]


async def test_unknown_paths_are_404_json(admin: httpx.AsyncClient) -> None:
    response = await admin.post("/runtime/api/v1/clustrs")
    assert response.status_code == 404
    assert list(response.json()) == ["error"]


@pytest.mark.parametrize(
    "body",
    [
        b'{"filters": {"name": "\\ud800"}}',
        b'{"next_key": "\\udfff"}',
        b'{"filters": {"providers": ["aws", "x\\uDBFFy"]}}',
        b'{"\\ud800": 1}',
    ],
)
async def test_lone_surrogate_escapes_are_400_not_500(
    admin: httpx.AsyncClient, body: bytes
) -> None:
    response = await admin.post(URL, content=body, headers=JSON)
    assert response.status_code == 400, response.text
    assert "surrogate" in response.json()["error"]


async def test_a_proper_surrogate_pair_is_text_like_any_other(admin: httpx.AsyncClient) -> None:
    response = await admin.post(
        URL, content=b'{"filters": {"name": "\\ud83d\\ude80"}}', headers=JSON
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "payload",
    [
        {
            "query": "query($n: String) { clusters(filter: {name: $n}) { totalCount } }",
            "variables": {"n": "\ud800"},
        },
        {"query": '{ clusters(filter: {name: "\\ud800"}) { totalCount } }'},
        {"query": '{ cluster(id: "\\udc00") { id } }'},
    ],
)
async def test_lone_surrogates_in_graphql_are_bad_user_input(
    admin: httpx.AsyncClient, payload: dict[str, object]
) -> None:
    body = json.dumps(payload).encode()  # ensure_ascii: the surrogate travels as an escape
    response = await admin.post("/graphql", content=body, headers=JSON)
    assert response.status_code in (200, 400), response.text
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
