"""A fleet full of ties, and the walks through it that the filters and orders must give, for the
REST walks (tests/rest_shim) and the Relay ones (tests/graph) alike."""

from __future__ import annotations

import random
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from models.records import ControllerStatus, NodeStatus
from tests import factories

URL = "/runtime/api/v1/clusters"
FILTERS: list[dict[str, Any]] = [
    {},
    {"providers": ["aws", "gcp"]},
    {"name": "PROD"},
    {"regions": ["eu-west-1"], "has_unhealthy_nodes": True},
    {"controller_statuses": ["stopped"], "has_unhealthy_nodes": False},
    # ids as JSON numbers (as REST answers them) or as strings (as next_key is)
    {"ids": [3, "5", 8, "13", 21, "34"], "providers": ["aws", "gcp", "azure"]},
]


async def fleet(engine: AsyncEngine) -> None:
    """60 clusters in 3 batches (so timestamps tie within a batch), with many ties in counts."""
    rng = random.Random(5)
    for batch in range(3):
        states = []
        for i in range(20):
            statuses = rng.choice(
                [
                    [NodeStatus.MONITORED],
                    [NodeStatus.MONITORED, NodeStatus.FAILED],
                    list(NodeStatus),
                ]
            )
            states.append(
                factories.cluster(
                    "-".join(
                        [
                            rng.choice(["prod", "Prod", "staging", "dev"]),
                            rng.choice("aBc"),
                            f"{batch}{i:02d}",
                        ]
                    ),
                    node_states=factories.nodes(rng.choice([0, 1, 3, 3, 8]), statuses=statuses),
                    provider=rng.choice(["aws", "gcp", "azure", "kubernetes"]),
                    regions=rng.sample(
                        ["eu-west-1", "us-east-1", "ap-south-1"], k=rng.randint(0, 2)
                    ),
                    status=rng.choice([ControllerStatus.RUNNING, ControllerStatus.STOPPED]),
                )
            )
        await factories.insert(engine, states)


async def everything(admin: httpx.AsyncClient) -> list[dict[str, Any]]:
    page = (await admin.post(URL, json={"limit": 100, "return_nodes": True})).json()
    assert "next_key" not in page["pagination"]
    return page["clusters"]


def _matches(c: dict[str, Any], f: dict[str, Any]) -> bool:
    unhealthy = (
        c["failed_nodes_count"] + c["failed_to_install_nodes_count"] + c["disabled_nodes_count"] > 0
    )
    return (
        ("ids" not in f or str(c["id"]) in {str(i) for i in f["ids"]})
        and ("name" not in f or f["name"].lower() in c["name"].lower())
        and ("providers" not in f or c["provider"] in f["providers"])
        and ("controller_statuses" not in f or c["controller_status"] in f["controller_statuses"])
        and ("regions" not in f or bool(set(c["regions"]) & set(f["regions"])))
        and ("has_unhealthy_nodes" not in f or unhealthy == f["has_unhealthy_nodes"])
    )


def expected(
    clusters: list[dict[str, Any]], f: dict[str, Any], order: str, direction: str
) -> list[str]:
    chosen = [c for c in clusters if _matches(c, f)]
    chosen.sort(
        key=lambda c: (c[order] if order != "id" else int(c["id"]), int(c["id"])),
        reverse=direction == "desc",
    )
    return [str(c["id"]) for c in chosen]  # as GraphQL's IDs and REST's plain next_key are
