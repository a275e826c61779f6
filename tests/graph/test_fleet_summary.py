"""`fleetSummary` (SPEC §11): the counts agree with the rows, with each other, and with what a
full walk of the REST API returns, while controllers report."""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from clusterql.fleet import changed, plausible_cluster
from clusterql.settings import Settings
from clusterql.simulate import as_report
from models.engine import read_transaction
from models.listing import ClusterFilter
from models.records import ClusterState, ControllerStatus
from models.summary import counted, summary
from tests import documents, factories
from tests.databases import migrated_database_url


@pytest.fixture
async def settings(tmp_path: Path) -> Settings:
    """Reporters back to back from one token: not throttled, that is not the point here."""
    return Settings(database_url=await migrated_database_url(tmp_path), rate_limit_admin=0)


SUMMARY = """query S($filter: ClusterFilter) {
  fleetSummary(filter: $filter) {
    clusters staleClusters
    clustersByProvider { key count } clustersByControllerStatus { key count }
    nodes nodesByStatus { key count } nodesWithSensor nodesWithoutSensor
    sensorVersions(first: 1000) { key count }
  }
}"""
# The summary and every cluster with its nodes, in one operation: one snapshot.
BOTH = """{
  fleetSummary { clusters staleClusters clustersByProvider { key count }
    clustersByControllerStatus { key count } nodes nodesByStatus { key count }
    nodesWithSensor nodesWithoutSensor sensorVersions(first: 1000) { key count } }
  clusters(limit: 100) { pagination { nextKey } clusters {
    provider controllerStatus controllerLastUpdated
    nodes { status sensorInstalled sensorVersion } } }
}"""
URL = "/runtime/api/v1/clusters"


def _pairs(counts: Counter[str]) -> list[dict[str, Any]]:
    return [{"key": k, "count": n} for k, n in sorted(counts.items()) if n > 0]


def expected_summary(clusters: list[dict[str, Any]], stale_before: datetime) -> dict[str, Any]:
    """The summary of clusters as REST answers them (`return_nodes`), counted here."""
    nodes = [n for c in clusters for n in c["nodes"]]
    versions = Counter(n["sensor_version"] for n in nodes if n["sensor_installed"])
    return {
        "clusters": len(clusters),
        "staleClusters": sum(
            datetime.fromisoformat(c["controller_last_updated"]) < stale_before for c in clusters
        ),
        "clustersByProvider": _pairs(Counter(c["provider"] for c in clusters)),
        "clustersByControllerStatus": _pairs(Counter(c["controller_status"] for c in clusters)),
        "nodes": len(nodes),
        "nodesByStatus": _pairs(Counter(n["status"] for n in nodes)),
        "nodesWithSensor": sum(n["sensor_installed"] for n in nodes),
        "nodesWithoutSensor": sum(not n["sensor_installed"] for n in nodes),
        "sensorVersions": [
            {"key": k, "count": n}
            for k, n in sorted(versions.items(), key=lambda kn: (-kn[1], kn[0]))
        ],
    }


def assert_adds_up(s: dict[str, Any]) -> None:
    assert sum(p["count"] for p in s["clustersByProvider"]) == s["clusters"]
    assert sum(p["count"] for p in s["clustersByControllerStatus"]) == s["clusters"]
    assert 0 <= s["staleClusters"] <= s["clusters"]
    assert sum(p["count"] for p in s["nodesByStatus"]) == s["nodes"]
    assert s["nodesWithSensor"] + s["nodesWithoutSensor"] == s["nodes"]
    assert sum(p["count"] for p in s["sensorVersions"]) == s["nodesWithSensor"]
    counts = [p["count"] for p in s["sensorVersions"]]
    assert counts == sorted(counts, reverse=True)
    assert all(p["count"] > 0 for key in s if isinstance(s[key], list) for p in s[key])


async def _rest_walk(admin: httpx.AsyncClient) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    body: dict[str, Any] = {"limit": 7, "return_nodes": True}
    while True:
        page = (await admin.post(URL, json=body)).json()
        found += page["clusters"]
        if "next_key" not in page["pagination"]:
            return found
        body["next_key"] = page["pagination"]["next_key"]


async def _graphql(admin: httpx.AsyncClient, query: str, **variables: Any) -> dict[str, Any]:
    response = await admin.post("/graphql", json={"query": query, "variables": variables})
    payload = response.json()
    assert "errors" not in payload, payload
    data: dict[str, Any] = payload["data"]
    return data


def _rest_shaped(c: dict[str, Any]) -> dict[str, Any]:
    return {
        "provider": c["provider"],
        "controller_status": c["controllerStatus"].lower(),
        "controller_last_updated": c["controllerLastUpdated"],
        "nodes": [
            {
                "status": n["status"].lower(),
                "sensor_installed": n["sensorInstalled"],
                "sensor_version": n["sensorVersion"],
            }
            for n in c["nodes"]
        ],
    }


async def _reporter(
    admin: httpx.AsyncClient,
    fleet: list[ClusterState],
    rng: random.Random,
    stop: asyncio.Event,
    sent_one: asyncio.Event | None = None,
) -> int:
    """Reports changed states of `fleet`'s clusters until `stop`; removes one now and then.
    Sets `sent_one`, if given, after each report."""
    sent = 0
    while not stop.is_set():
        i = rng.randrange(len(fleet))
        state = fleet[i]
        now = datetime.now(UTC)
        nodes = [changed(rng, n, now) if rng.random() < 0.3 else n for n in state.nodes]
        status = rng.choice(list(ControllerStatus))
        fleet[i] = ClusterState(
            state.name, rng.choice(["aws", "gcp", "azure"]), state.regions,
            state.controller_version, status, nodes,
        )  # fmt: skip
        # A report sends a prefix of the nodes; the fleet keeps them all, so however many
        # reports a run gets in, the clusters do not drain to zero nodes.
        reported = dataclasses.replace(fleet[i], nodes=nodes[: rng.randint(0, len(nodes))])
        variables = {"input": as_report(reported)}
        response = await admin.post(
            "/graphql", json={"query": documents.REPORT, "variables": variables}
        )
        assert "errors" not in response.json(), response.text
        if rng.random() < 0.1:
            cluster_id = response.json()["data"]["reportCluster"]["id"]
            await admin.post(
                "/graphql", json={"query": documents.REMOVE, "variables": {"id": cluster_id}}
            )
        sent += 1
        if sent_one is not None:
            sent_one.set()
        await asyncio.sleep(0)
    return sent


def _fleet(rng: random.Random, count: int) -> list[ClusterState]:
    now = datetime.now(UTC)
    return [plausible_cluster(rng, f"fleet-{i}", 12, now) for i in range(count)]


async def test_the_summary_equals_a_full_rest_walk_and_adds_up_while_reports_stream_in(
    admin: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    rng = random.Random(14)
    fleet = _fleet(rng, 30)
    await factories.insert(engine, fleet[:20])  # bulk inserted, the rest registered by reports
    stop = asyncio.Event()
    sent_one = asyncio.Event()
    reporter = asyncio.create_task(_reporter(admin, fleet, rng, stop, sent_one))
    try:
        for _ in range(15):
            # Reads need not yield to the reporter (SQLite's run on the loop's thread): each
            # round waits for one more report, so that reports stream in between them.
            await asyncio.wait_for(sent_one.wait(), timeout=30)
            sent_one.clear()
            both = await _graphql(admin, BOTH)
            assert both["clusters"]["pagination"]["nextKey"] is None
            shaped = [_rest_shaped(c) for c in both["clusters"]["clusters"]]
            stale_before = datetime.now(UTC) - timedelta(minutes=15)
            assert both["fleetSummary"] == expected_summary(shaped, stale_before)
            filtered = await _graphql(admin, SUMMARY, filter={"providers": ["aws", "gcp"]})
            assert_adds_up(filtered["fleetSummary"])
            assert_adds_up((await _graphql(admin, SUMMARY))["fleetSummary"])
    finally:
        stop.set()
        sent = await reporter
    assert sent > 10
    walked = await _rest_walk(admin)
    whole = (await _graphql(admin, SUMMARY))["fleetSummary"]
    assert whole == expected_summary(walked, datetime.now(UTC) - timedelta(minutes=15))
    aws = (await _graphql(admin, SUMMARY, filter={"providers": ["aws"]}))["fleetSummary"]
    assert aws == expected_summary(
        [c for c in walked if c["provider"] == "aws"], datetime.now(UTC) - timedelta(minutes=15)
    )


async def test_the_summary_rows_never_drift_from_the_rows_after_random_reports_and_removals(
    admin: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    rng = random.Random(41)
    fleet = _fleet(rng, 25)
    await factories.insert(engine, fleet[:10])
    stop = asyncio.Event()
    reporters = [
        asyncio.create_task(_reporter(admin, fleet, random.Random(k), stop)) for k in range(3)
    ]
    await asyncio.sleep(3)
    stop.set()
    assert sum(await asyncio.gather(*reporters)) > 10
    stale_before = datetime.now(UTC) - timedelta(seconds=1.5)
    cells = [  # the filters answered from the summary rows' cells
        ClusterFilter(),
        ClusterFilter(providers=("aws",)),
        ClusterFilter(providers=("azure", "gcp"), controller_statuses=("running",)),
        ClusterFilter(controller_statuses=("stopped",)),
    ]
    async with read_transaction(engine) as conn:
        for where in cells:
            kept = await summary(conn, where, stale_before)
            assert kept == await counted(conn, where, stale_before), where
        whole = await summary(conn, ClusterFilter(), stale_before)
    assert whole.clusters > 0
    assert whole.nodes > 0


async def test_sensor_versions_are_most_common_first_ties_by_key_and_cut_at_first(
    admin: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    def sensor(name: str, version: str) -> Any:
        return factories.node(name, sensor_installed=True, sensor_version=version)

    nodes = [sensor("a", "5.3"), sensor("b", "5.4"), sensor("c", "5.4"), sensor("d", "5.2")]
    nodes.append(factories.node("e"))  # no sensor: not a version
    await factories.insert(engine, [factories.cluster("c1", node_states=nodes)])
    query = "{ fleetSummary { sensorVersions(first: 2) { key count } nodesWithoutSensor } }"
    summary_ = (await _graphql(admin, query))["fleetSummary"]
    assert summary_["sensorVersions"] == [{"key": "5.4", "count": 2}, {"key": "5.2", "count": 1}]
    assert summary_["nodesWithoutSensor"] == 1
    bad = await admin.post(
        "/graphql", json={"query": "{ fleetSummary { sensorVersions(first: 0) { key } } }"}
    )
    assert bad.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "sensorVersions(first:)" in bad.json()["errors"][0]["message"]
