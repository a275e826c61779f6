"""A request's objects are freed by reference counting when it ends: none of them is left in a
reference cycle for the garbage collector (`graph.execution.PlannedExecutor.build_response`,
`graph.query._within`). A cycle anywhere in the request's graph keeps its context, its
loaders' futures and every driver row they hold (2,000 tuples for a page of 100 clusters with
nodes) alive until a collection, which then walks them all; and the served app's young
generation is sized for requests that leave no such garbage (`clusterql.app`)."""

from __future__ import annotations

import collections
import gc
from collections.abc import Iterator

import orjson
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from rest_shim.operations import LIST_CLUSTERS
from tests import asgi, factories

PAGE: dict[str, object] = {"limit": 10, "return_nodes": True}
GRAPHQL: dict[str, object] = {
    "query": LIST_CLUSTERS,
    "variables": {
        "limit": 10,
        "nextKey": None,
        "withNodes": True,
        "filter": None,
        "orderBy": "ID",
        "direction": "ASC",
    },
}
# Each kind of request: those the vendor's clients send, and the same page over GraphQL, with a
# fragment (whose spread `_within` follows) and without.
REQUESTS: dict[str, tuple[str, dict[str, object]]] = {
    "REST list": ("/runtime/api/v1/clusters", PAGE),
    "GraphQL list": ("/graphql", GRAPHQL),
    "GraphQL fragment": (
        "/graphql",
        {
            "query": "query { clusters(limit: 10) { ...Page } } "
            "fragment Page on ClusterPage { totalCount clusters { id nodes { name } } }"
        },
    ),
}


def collect_for_good() -> None:
    """Free every unreachable object now (saved ones too: a cycle taken out of `gc.garbage` is
    garbage again), then save what later collections find."""
    gc.set_debug(0)
    gc.garbage.clear()
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)


@pytest.fixture
def saved_garbage() -> Iterator[list[object]]:
    """The collector off; what a collection finds is kept in `gc.garbage` (returned)."""
    gc.disable()
    collect_for_good()
    try:
        yield gc.garbage
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


async def post(app: Starlette, secret: str, path: str, body: dict[str, object]) -> bytes:
    """One POST straight through the app's ASGI interface (an HTTP client's own objects would
    be garbage of their own); the answer's body, status 200."""
    status, answer = await asgi.post(app, path, orjson.dumps(body), secret)
    assert status == 200, answer
    return answer


@pytest.mark.parametrize("kind", list(REQUESTS))
async def test_a_request_leaves_nothing_in_reference_cycles(
    kind: str, app: Starlette, engine: AsyncEngine, admin_secret: str, saved_garbage: list[object]
) -> None:
    await factories.insert(engine, [factories.cluster(node_count=20) for _ in range(10)])
    path, body = REQUESTS[kind]
    for _ in range(5):  # what the first requests make and keep (plans, caches) is not garbage
        answer = orjson.loads(await post(app, admin_secret, path, body))
    assert "errors" not in answer, answer
    assert len(answer.get("clusters") or answer["data"]["clusters"]["clusters"]) == 10
    collect_for_good()

    for _ in range(3):
        await post(app, admin_secret, path, body)
    found = gc.collect()

    kinds = collections.Counter(type(o).__qualname__ for o in saved_garbage)
    assert found == 0, f"left in reference cycles by 3 requests: {dict(kinds.most_common(12))}"
