"""`clustersConnection`, the Relay connection (https://relay.dev/graphql/connections.htm): walks
forward and backward give every match once, in order, and its arguments are checked."""

from __future__ import annotations

import random
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests import walks

CONNECTION = """
query Walk($first: Int, $after: String, $last: Int, $before: String, $filter: ClusterFilter,
           $orderBy: ClusterOrderField!, $direction: OrderDirection!) {
  clustersConnection(first: $first, after: $after, last: $last, before: $before, filter: $filter,
                     orderBy: $orderBy, direction: $direction) {
    totalCount
    edges { cursor node { id } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""


async def _connection(admin: httpx.AsyncClient, **variables: Any) -> dict[str, Any]:
    response = await admin.post("/graphql", json={"query": CONNECTION, "variables": variables})
    payload = response.json()
    assert "errors" not in payload, payload
    return payload["data"]["clustersConnection"]


@pytest.mark.parametrize(
    ("order", "direction"),
    [("ID", "ASC"), ("NAME", "DESC"), ("FAILED_NODES_COUNT", "ASC"), ("MONITORED_AT", "DESC")],
)
async def test_relay_walks_forward_and_backward_give_the_same_set_reversed(
    admin: httpx.AsyncClient, engine: AsyncEngine, order: str, direction: str
) -> None:
    await walks.fleet(engine)
    everything = await walks.everything(admin)
    rng = random.Random(order)
    for f in walks.FILTERS[:4]:
        graphql_filter = {
            ("hasUnhealthyNodes" if k == "has_unhealthy_nodes" else k): v for k, v in f.items()
        }
        common = {"filter": graphql_filter or None, "orderBy": order, "direction": direction}
        forward: list[str] = []
        after = None
        previous = False
        while True:
            page = await _connection(admin, first=rng.randint(1, 9), after=after, **common)
            forward += [e["node"]["id"] for e in page["edges"]]
            assert page["pageInfo"]["hasPreviousPage"] is previous
            previous = bool(page["edges"]) or previous
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
            assert after == page["edges"][-1]["cursor"]
        backward: list[str] = []
        before = None
        while True:
            page = await _connection(admin, last=rng.randint(1, 9), before=before, **common)
            backward = [e["node"]["id"] for e in page["edges"]] + backward
            if not page["pageInfo"]["hasPreviousPage"]:
                break
            before = page["pageInfo"]["startCursor"]
        expected = walks.expected(everything, f, order.lower(), direction.lower())
        assert forward == expected, f
        assert backward == expected, f
        assert page["totalCount"] == len(expected)


async def test_first_and_last_together_or_past_the_page_size_are_bad_user_input(
    admin: httpx.AsyncClient,
) -> None:
    bad = (
        await admin.post(
            "/graphql", json={"query": "{ clustersConnection(first: 1, last: 1) { totalCount } }"}
        )
    ).json()
    assert bad["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    bad = (
        await admin.post(
            "/graphql", json={"query": "{ clustersConnection(first: 101) { totalCount } }"}
        )
    ).json()
    assert "between 1 and 100" in bad["errors"][0]["message"]
