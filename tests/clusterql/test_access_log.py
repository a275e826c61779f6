"""`clusterql serve --workers 2` as an operator runs it: the scrape adds up both workers (each
its own share), serve makes and removes the metrics directory, the access lines carry their
fields, and no secret sent in a URL reaches any line of the server's log. Errors are logged
once, with their request id."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import multiprocess

from clusterql import graphql_view
from clusterql.logs import JsonFormatter
from models.tokens import REDACTED
from tests import factories
from tests.conftest import in_process
from tests.databases import migrated_database_url
from tests.live_server import STARTUP_TIMEOUT_S, running, serve_command, serve_process
from tests.scrape import grown, key, samples

LIST = "/runtime/api/v1/clusters"
SECRET_SHAPED = "cql_" + "s3cr3t" * 7 + "x"  # 43 characters after the prefix
PAGE = {"limit": 100, "return_nodes": True}
MIN_REQUESTS = 16
MAX_REQUESTS = 400


@dataclass(frozen=True)
class Served:
    url: str
    log: Path
    temp: Path  # the server's TMPDIR, where serve makes its metrics directory
    admin: str


def metrics_directories(temp: Path) -> list[Path]:
    return sorted(temp.glob("clusterql-metrics-*"))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    base = tmp_path_factory.mktemp("served")
    database_url = asyncio.run(migrated_database_url(base))
    # pages of 100 clusters with nodes: work enough that a busy worker leaves connections to the
    # other one (a worker that keeps up accepts them all)
    fleet = [factories.cluster(node_count=20) for _ in range(100)]
    admin, _ = asyncio.run(factories.admin_and_controller(database_url, fleet))
    temp = base / "tmp"
    temp.mkdir()
    env = {
        "CLUSTERQL_DATABASE_URL": database_url,
        "CLUSTERQL_RATE_LIMIT_ADMIN": "0",
        "TMPDIR": str(temp),
    }
    log = base / "server.log"
    command = serve_command("--workers", "2", "--log-level", "info")
    with running(command, env, output=log) as server:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while log.read_text().count("Application startup complete") < 2:  # both workers
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        yield Served(server.url, log, temp, admin)


def access_lines(log: Path) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("kind") == "access"]


async def scrape(served: Served) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    async with httpx.AsyncClient(base_url=served.url) as client:
        response = await client.get("/metrics", headers={"Authorization": f"Bearer {served.admin}"})
    assert response.status_code == 200
    return samples(response.text)


def per_worker(directory: Path, name: str, **labels: str) -> dict[str, float]:
    """One sample as each worker's own file holds it, by the worker's pid."""
    found = {}
    for path in directory.glob("counter_*.db"):
        merged = multiprocess.MultiProcessCollector.merge([str(path)], accumulate=False)  # type: ignore[no-untyped-call]
        values = {(s.name, frozenset(s.labels.items())): s.value for m in merged for s in m.samples}
        found[path.stem.removeprefix("counter_")] = values.get(key(name, **labels), 0.0)
    return found


async def test_the_scrape_adds_up_both_workers(served: Served) -> None:
    (directory,) = metrics_directories(served.temp)
    labels = {"route": LIST, "method": "POST", "status": "200"}
    before = await scrape(served)
    headers = {"Authorization": f"Bearer {served.admin}", "Connection": "close"}
    sent = 0
    async with httpx.AsyncClient(base_url=served.url, headers=headers) as client:
        # new connections, eight at once, until both workers have answered some (the kernel
        # hands each connection to whichever worker accepts first)
        while sent < MAX_REQUESTS:
            answers = await asyncio.gather(*(client.post(LIST, json=PAGE) for _ in range(8)))
            assert [a.status_code for a in answers] == [200] * 8
            sent += 8
            shares = per_worker(directory, "clusterql_http_requests_total", **labels)
            if sent >= MIN_REQUESTS and len([s for s in shares.values() if s]) == 2:
                break
    after = await scrape(served)
    counted = key("clusterql_http_requests_total", **labels)
    assert grown(before, after)[counted] == sent

    shares = per_worker(directory, "clusterql_http_requests_total", **labels)
    assert len(shares) == 2, shares
    assert all(share > 0 for share in shares.values()), shares
    assert sum(shares.values()) == after[counted]


async def test_an_access_line_says_who_asked_for_what(served: Served) -> None:
    headers = {
        "Authorization": f"Bearer {served.admin}",
        "User-Agent": "dashboard/2.1",
        "X-Request-ID": "access-line-check",
    }
    query = "query Dashboard { clusters(limit: 1) { totalCount } }"
    async with httpx.AsyncClient(base_url=served.url, headers=headers) as client:
        assert (await client.post("/graphql?debug=1", json={"query": query})).status_code == 200
        anonymous = {"X-Request-ID": "access-line-anonymous", "Authorization": ""}
        assert (await client.get("/runtime/api/v1/cluster/7", headers=anonymous)).status_code == 401
    await asyncio.sleep(0.2)  # the workers write their lines as they answer
    lines = {line["request_id"]: line for line in access_lines(served.log)}
    line = lines["access-line-check"]
    assert line["level"] == "info"
    assert line["logger"] == "clusterql.access"
    assert line["method"] == "POST"
    assert line["route"] == "/graphql"
    assert line["status"] == 200
    assert 0 < line["duration_ms"] < 10_000
    assert line["token"].startswith("token-")
    assert line["operation_name"] == "Dashboard"
    assert line["operation_type"] == "query"
    assert line["user_agent"] == "dashboard/2.1"
    assert line["client"] == "127.0.0.1"
    refused = lines["access-line-anonymous"]
    assert refused["route"] == "/runtime/api/v1/cluster/{id}"
    assert refused["status"] == 401
    assert "token" not in refused
    assert "operation_name" not in refused


async def test_no_secret_sent_in_a_url_reaches_the_log(served: Served) -> None:
    urls = [
        f"{LIST}?access_token={served.admin}",
        f"/graphql?access_token={SECRET_SHAPED}",
        f"/runtime/api/v1/cluster/{served.admin}",
        f"/runtime/api/v1/clusters/{SECRET_SHAPED}/",
        f"/{served.admin}",
        f"/static/vendor/{SECRET_SHAPED}.js",
        f"/metrics?token={served.admin}",
    ]
    async with httpx.AsyncClient(base_url=served.url) as client:
        for url in urls:
            await client.post(url, json={})
            await client.get(url)
            await client.get(url, headers={"Authorization": f"Bearer {SECRET_SHAPED}"})
    await asyncio.sleep(0.2)
    lines = access_lines(served.log)
    assert len(lines) >= 3 * len(urls)
    text = served.log.read_text()
    assert "cql_" not in text
    assert REDACTED not in text, "something tried to log a secret"


@pytest.mark.parametrize("workers", [1, 2])
async def test_serve_keeps_one_workers_metrics_in_memory_and_several_in_a_directory(
    tmp_path: Path, workers: int
) -> None:
    database_url = await migrated_database_url(tmp_path)
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {
        "CLUSTERQL_DATABASE_URL": database_url,
        "TMPDIR": str(temp),
        "CLUSTERQL_METRICS": "public",
    }
    log = tmp_path / "server.log"
    with serve_process(env, workers, output=log) as server:
        directories = metrics_directories(temp)
        async with httpx.AsyncClient(base_url=server.url) as client:
            for _ in range(4):  # with two workers, both are likely to answer one of them
                assert (await client.post(LIST, json={})).status_code == 401
            scraped = samples((await client.get("/metrics")).text)
        if workers == 1:  # uvicorn serves in serve's own process
            assert directories == []
        else:
            (directory,) = directories
            assert list(directory.glob("counter_*.db"))
    counted = key("clusterql_http_requests_total", route=LIST, method="POST", status="401")
    assert scraped[counted] == 4
    assert metrics_directories(temp) == []
    assert access_lines(log) == []  # at --log-level warning, no access lines


def test_the_log_formatter_redacts_what_looks_like_a_secret() -> None:
    record = logging.makeLogRecord({"msg": f"token {SECRET_SHAPED} and cql_abc", "args": ()})
    line = JsonFormatter().format(record)
    assert "cql_" not in line
    assert line.count(REDACTED) == 2


async def test_an_unexpected_error_is_logged_once_with_its_request_id(
    app: Any, admin_secret: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(graphql_view, "build_context", broken)
    caplog.set_level(logging.INFO)
    async with in_process(app, admin_secret) as admin:
        response = await admin.post("/graphql", json={"query": "{ clusters { totalCount } }"})
    assert response.status_code == 500
    request_id = response.headers["x-request-id"]
    mine = [r for r in caplog.records if getattr(r, "request_id", None) == request_id]
    errors = [r for r in mine if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert errors[0].exc_info is not None
    access = [r for r in caplog.records if r.name == "clusterql.access"]
    assert [(r.__dict__["status"], r.__dict__["route"]) for r in access] == [(500, "/graphql")]
