"""The REST answers are what `rest_shim.answers` says, strictly, and the body model accepts what
the contract accepts: the models `/openapi.json` is generated from describe the code exactly."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine

import graph.schema
from graph import execution
from models.limits import MAX_PAGE
from models.records import NodeStatus
from rest_shim import list_request
from rest_shim.answers import ClusterAnswer, ClustersPage, ErrorBody
from rest_shim.problems import RestError
from tests import factories

URL = "/runtime/api/v1/clusters"


async def _fleet(engine: AsyncEngine) -> list[int]:
    sensor = datetime(2024, 12, 31, 11, 32, 10, 367653, tzinfo=UTC)
    states = [
        factories.node("seen", NodeStatus.MONITORED_WITH_SENSOR, sensor_installed=True,
                       sensor_version="5.4.1", sensor_last_updated=sensor),
        factories.node("never-seen", NodeStatus.INSTALLATION_FAILED),
    ]  # fmt: skip
    return await factories.insert(
        engine,
        [
            factories.cluster("empty", node_count=0, regions=()),
            factories.cluster("mixed", node_states=states, regions=("b", "a")),
            factories.cluster("plain", node_count=3),
        ],
    )


def _strictly(model: type[BaseModel], response: httpx.Response) -> BaseModel:
    assert response.headers["content-type"] == "application/json"
    return model.model_validate_json(response.content, strict=True)


@pytest.mark.parametrize("body", [{}, {"return_nodes": True}, {"limit": 1}, {"limit": "2"}])
async def test_every_page_is_a_clusters_page(
    admin: httpx.AsyncClient, engine: AsyncEngine, body: dict[str, object]
) -> None:
    await _fleet(engine)
    response = await admin.post(URL, json=body)
    assert response.status_code == 200
    page = _strictly(ClustersPage, response)
    assert isinstance(page, ClustersPage)
    with_nodes = {"nodes" in c for c in response.json()["clusters"]}
    assert with_nodes == {bool(body.get("return_nodes"))}


async def test_every_cluster_is_a_cluster_answer(
    admin: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    for cluster_id in await _fleet(engine):
        response = await admin.get(f"/runtime/api/v1/cluster/{cluster_id}")
        assert response.status_code == 200
        answer = _strictly(ClusterAnswer, response)
        assert isinstance(answer, ClusterAnswer)
        assert answer.cluster.id == cluster_id


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", URL, {"limit": 0}),
        ("GET", "/runtime/api/v1/cluster/999", None),
        ("GET", URL, None),
        ("POST", "/runtime/api/v1/nowhere", None),
    ],
)
async def test_every_refusal_is_an_error_body(
    admin: httpx.AsyncClient, method: str, path: str, body: object
) -> None:
    response = await admin.request(method, path, json=body)
    assert response.status_code >= 400
    _strictly(ErrorBody, response)


def test_the_models_refuse_a_key_too_many_and_a_null_string() -> None:
    page = {"total_count": 0, "pagination": {"limit": 10}, "clusters": []}
    ClustersPage.model_validate(page, strict=True)
    with pytest.raises(ValidationError):
        ClustersPage.model_validate({**page, "extra": 1}, strict=True)
    with pytest.raises(ValidationError):
        ClustersPage.model_validate({**page, "pagination": {"limit": 10, "next_key": None}})


def test_the_documented_pattern_of_a_string_limit_is_exactly_the_accepted_strings() -> None:
    pattern = re.compile(list_request._LIMIT_TEXT)
    for n in range(1000):
        for text in (str(n), f"0{n}", f"{n:010d}"):
            accepted = bool(pattern.fullmatch(text)) and len(text) <= 10
            assert accepted == (1 <= n <= MAX_PAGE), text
            refused = None
            try:
                list_request.parse_list_request({"limit": text})
            except RestError as exc:
                refused = exc
            assert (refused is None) == accepted, text


async def test_objects_made_from_rows_and_the_others_answer_the_same(
    admin: httpx.AsyncClient, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page's objects made straight from rows come out in the REST wire's values
    (`rest_shim.operations.REST_WIRE`), by the executor or by the page's plan (a page without
    nodes: `graph.page_plan`); those made the usual way are reshaped from GraphQL's: either
    way the answer is the same."""
    ids = await _fleet(engine)
    planned = graph.schema._page_plan()

    async def plan_spy(*args: Any) -> Any:
        done = await planned(*args)
        taken.add(f"page {'from its plan' if done is not None else 'by the executor'}")
        return done

    monkeypatch.setattr(graph.schema, "_page_plan", lambda: plan_spy)

    async def answers() -> list[Any]:
        return [
            (await admin.post(URL, json={"return_nodes": True})).json(),
            (await admin.post(URL, json={})).json(),
            (await admin.get(f"/runtime/api/v1/clusters/{ids[1]}/")).json(),
        ]

    taken: set[str] = set()
    from_rows = execution._from_rows

    def spy(ex: Any, object_type: Any, *args: Any) -> Any:
        done = from_rows(ex, object_type, *args)
        taken.add(f"{object_type.name} from {'records' if done is None else 'rows'}")
        return done

    monkeypatch.setattr(execution, "_from_rows", spy)
    wired = await answers()
    # with their nodes (a resolver), clusters are made as objects
    assert taken == {
        "page by the executor",  # with nodes
        "Node from rows",
        "Cluster from records",
        "page from its plan",  # without nodes: its clusters from rows
    }
    assert wired[0]["clusters"][1]["nodes"][1]["sensor_last_updated"] == ""
    assert wired[0]["clusters"][1]["nodes"][0]["status"] == "monitored_with_sensor"
    assert [c["id"] for c in wired[0]["clusters"]] == ids
    monkeypatch.setattr(execution, "_from_rows", lambda *args: None)  # every one as objects
    monkeypatch.setattr(graph.schema, "_page_plan", lambda: None)  # by the executor
    assert await answers() == wired
