"""A page's nodes made straight from the driver's rows (`models.records.Rows`, completed by
`graph.execution._from_rows`), a page's clusters straight from their records' columns, and the
records' (or objects') way whenever that cannot give the stock answer.

Every case compares the product's answer with Strawberry's stock executor (which reads the same
`Rows` as records) on the awkward fleet, and says which way the product took.
"""

from __future__ import annotations

from typing import Any

import pytest

from graph import execution
from models.clusters import ROW_CODECS
from models.records import NodeRecord, Rows
from tests.graph.awkward_fleet import Seeded

ALL_FIELDS = (
    "id monitoredAt name sensorInstalled sensorLastUpdated sensorVersion region architecture "
    "hostname internalDns internalIp status"
)
PAGE = """query P($ids: [ID!]) {
  clusters(limit: 100, filter: {ids: $ids}) { clusters { name nodes { %s } } }
}"""


def of(seeded: Seeded, *names: str) -> dict[str, Any]:
    return {"ids": [seeded.fleet.id(name) for name in names]}


@pytest.fixture
def taken(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """How each list of `Rows` the product completed was made, by type: `rows` or `records`."""
    found: dict[str, list[str]] = {"Node": [], "Cluster": []}
    made_from_rows = execution._from_rows

    def spy(ex: Any, object_type: Any, *args: Any) -> Any:
        done = made_from_rows(ex, object_type, *args)
        found[object_type.name].append("records" if done is None else "rows")
        return done

    monkeypatch.setattr(execution, "_from_rows", spy)
    return found


@pytest.fixture
def ways(taken: dict[str, list[str]]) -> list[str]:
    """How each list of nodes the product completed was made: `rows` or `records`."""
    return taken["Node"]


async def test_plain_nodes_are_made_from_the_rows(seeded: Seeded, ways: list[str]) -> None:
    answer = await seeded.compare(PAGE % ALL_FIELDS, of(seeded, "alpha", "many", "far-times"))
    assert not answer.errors
    pages = answer.data["clusters"]["clusters"]
    assert sorted(len(c["nodes"]) for c in pages) == [1, 3, 60]
    assert set(ways) == {"rows"}, ways


@pytest.mark.parametrize(
    "selection",
    [
        "status name __typename",
        "a: id b: id monitoredAt",
        "...on Node { hostname } ...F",
        "name sensorLastUpdated @include(if: false) status @skip(if: true)",
    ],
)
async def test_any_selection_of_plain_fields(
    seeded: Seeded, ways: list[str], selection: str
) -> None:
    document = PAGE % selection
    if "...F" in document:
        document += " fragment F on Node { internalIp name }"
    answer = await seeded.compare(document, of(seeded, "alpha", "Bravo"))
    assert not answer.errors
    assert set(ways) == {"rows"}, ways


async def test_a_field_that_is_not_a_column_takes_the_records_way(
    seeded: Seeded, ways: list[str]
) -> None:
    answer = await seeded.compare(PAGE % "name cluster { name }", of(seeded, "alpha"))
    assert not answer.errors
    assert answer.data["clusters"]["clusters"][0]["nodes"][0]["cluster"] == {"name": "alpha"}
    assert set(ways) == {"records"}, ways


async def test_a_value_the_scalar_refuses_takes_the_records_way(
    seeded: Seeded, ways: list[str]
) -> None:
    names = ["bad-node", "sqlite-oddities"] if seeded.fleet.sqlite else ["bad-node"]
    answer = await seeded.compare(PAGE % ALL_FIELDS, of(seeded, *names))
    # the stock executor's own error (masked: a stored status no report can write), at its path
    assert any(e["path"][-3:] == ["nodes", 1, "status"] for e in answer.errors), answer.errors
    assert ways.count("records") == len(names), ways


def test_node_rows_read_as_the_records_they_hold() -> None:
    codec = ROW_CODECS["sqlite"]
    stored = "2024-12-31 11:32:10.367653"
    row = (7, 3, stored, "n", 1, None, "5.3", "r", "amd64", "h", "d", "10.0.0.1", "failed")
    rows = Rows([row, row], codec)
    record = rows[0]
    assert isinstance(record, NodeRecord)
    assert record.monitored_at.isoformat() == "2024-12-31T11:32:10.367653+00:00"
    assert record.sensor_installed is True
    assert record.sensor_last_updated is None
    assert len(rows) == 2
    assert list(rows) == [record, record] == rows[0:2]
    assert rows == [record, record]
    assert rows != [record]


CLUSTER_FIELDS = (
    "id name monitoredAt controllerVersion controllerStatus controllerLastUpdated provider "
    "regions nodesCount runningNodesCount failedNodesCount failedToInstallNodesCount "
    "disabledNodesCount __typename"
)


@pytest.mark.parametrize(
    ("selection", "way"),
    [
        (CLUSTER_FIELDS, "rows"),
        ("a: id b: id regions ... on Cluster { name }", "rows"),
        ("name stale", "records"),  # a resolver
        ("name nodes { name }", "records"),
    ],
)
async def test_a_pages_clusters_are_made_from_their_columns_when_all_are_plain(
    seeded: Seeded, taken: dict[str, list[str]], selection: str, way: str
) -> None:
    query = "query P($ids: [ID!]) { clusters(limit: 100, filter: {ids: $ids}) { clusters { "
    answer = await seeded.compare(
        query + selection + " } } }", of(seeded, "alpha", "empty", "many")
    )
    assert not answer.errors
    assert len(answer.data["clusters"]["clusters"]) == 3
    assert taken["Cluster"] == [way]


async def test_clusters_with_values_the_scalars_refuse_are_completed_as_objects(
    seeded: Seeded, taken: dict[str, list[str]]
) -> None:
    """The awkward fleet's regions and statuses fail as the stock executor fails on them, at
    the first cluster it reaches that is wrong (each made a `Cluster` only when reached)."""
    query = "query P { clusters(limit: 100) { clusters { " + CLUSTER_FIELDS + " } } }"
    answer = await seeded.compare(query, {})
    assert answer.errors
    assert taken["Cluster"] == ["records"]
